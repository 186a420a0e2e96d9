"""Starts a real tallyd on free loopback ports for integration tests and stops it cleanly.

The binary comes from $TALLYD (CTest sets it). Every test checks, when the server stops, that it exited
with status 0 and printed no assertion or sanitizer report.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import redis

TALLYD = os.environ.get("TALLYD", "build/host/server/tallyd")
START_TIMEOUT_S = 20


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIVE = set()  # servers started and not stopped: a failed test must not leave them running


@atexit.register
def _kill_survivors():
    for srv in list(_LIVE):
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


class Tallyd:
    def __init__(self, *extra_args, threads=2, memcached=True, admin=False):
        self.port = free_port()
        self.mc_port = free_port() if memcached else 0
        self.admin_port = free_port() if admin else 0
        self.args = [TALLYD, "--port", str(self.port), "--memcached-port", str(self.mc_port),
                     "--admin-port", str(self.admin_port), "--threads", str(threads)] + list(extra_args)
        self.log = tempfile.NamedTemporaryFile(prefix="tallyd-", suffix=".log", delete=False)
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        _LIVE.add(self)
        try:
            self._wait_ready()
        except BaseException:
            # A server that never became ready must not outlive the test.
            self.proc.kill()
            self.proc.wait()
            raise

    def _wait_ready(self):
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("tallyd exited at start:\n" + self.output())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("tallyd did not answer PING:\n" + self.output())

    def output(self):
        self.log.flush()
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("tallyd did not stop within 20 s of SIGTERM")
        rc = self.proc.returncode
        out = self.output()
        self.proc = None
        _LIVE.discard(self)
        os.unlink(self.log.name)
        bad = re.search(r"TALLY_ASSERT|AddressSanitizer|LeakSanitizer|runtime error:", out)
        if rc != 0 or bad:
            raise AssertionError(f"tallyd exited with {rc}; log:\n{out[-8000:]}")


class RedisServer:
    """A redis-server in memory on a free loopback port, for side-by-side checks: start() waits until it
    answers PING; stop() ends it."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + START_TIMEOUT_S
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return self
            except redis.exceptions.ConnectionError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not answer PING")
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None


class AgainstRedisCase(unittest.TestCase):
    """A tallyd and a redis-server side by side for the whole class: `t` and `r` are redis-py clients
    of each, for tests that run the same commands on both."""

    @classmethod
    def setUpClass(cls):
        cls.redis_server = RedisServer().start()
        cls.tally = Tallyd(threads=2)
        cls.tally.start()
        cls.r = redis.Redis(port=cls.redis_server.port)
        cls.t = redis.Redis(port=cls.tally.port)

    @classmethod
    def tearDownClass(cls):
        cls.tally.stop()
        cls.redis_server.stop()


class ServerCase(unittest.TestCase):
    """One tallyd for the whole class, in a fresh directory: `extra` holds the class's own flags (a
    subclass changes them, e.g. to run the same tests durable), `client()` a redis-py client."""
    extra = ("--durability", "none")
    threads = 2

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tally-%s-" % cls.__name__.lower())
        cls.server = Tallyd("--dir", cls.dir, *cls.extra, threads=cls.threads)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self):
        return redis.Redis(port=self.server.port, decode_responses=True, socket_timeout=20)


class Raw:
    """A plain socket for byte-exact protocol tests."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_until(self, marker, limit=1 << 24):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; have %r" % self.buf[:200])
            self.buf += chunk
            if len(self.buf) > limit:
                raise AssertionError("reply too long")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; have %r" % self.buf[:200])
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed_by_peer(self, timeout=5):
        """True when the server closes the connection (after any pending bytes)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out
