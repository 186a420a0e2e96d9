"""TLS for clients: redis-py with ssl=True, redis-cli --tls, client certificates (valid, expired, from
another CA, none), plaintext and garbage on the TLS port before and after the handshake, large
pipelines through the filter, on both reactor backends."""
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

import redis

from harness import Raw, Tallyd, free_port, resp
from tls_certs import make_certs


class TlsBase(unittest.TestCase):
    auth_clients = "yes"
    io = "auto"

    @classmethod
    def setUpClass(cls):
        cls.certs = make_certs(tempfile.mkdtemp(prefix="tally-tls-"))
        cls.tls_port = free_port()
        cls.server = Tallyd("--tls-port", str(cls.tls_port), "--tls-cert-file", cls.cert("server.crt"),
                            "--tls-key-file", cls.cert("server.key"), "--tls-ca-cert-file", cls.cert("ca.crt"),
                            "--tls-auth-clients", cls.auth_clients, "--io", cls.io, threads=2)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.certs, ignore_errors=True)

    @classmethod
    def cert(cls, name):
        return os.path.join(cls.certs, name)

    def tls_client(self, who="client", **kw):
        args = dict(port=self.tls_port, ssl=True, ssl_ca_certs=self.cert("ca.crt"), ssl_cert_reqs="required",
                    decode_responses=True, socket_timeout=10)
        if who is not None:
            args.update(ssl_certfile=self.cert(who + ".crt"), ssl_keyfile=self.cert(who + ".key"))
        args.update(kw)
        return redis.Redis(**args)

    def raw_tls(self, who="client"):
        ctx = ssl.create_default_context(cafile=self.cert("ca.crt"))
        if who is not None:
            ctx.load_cert_chain(self.cert(who + ".crt"), self.cert(who + ".key"))
        sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
        return ctx.wrap_socket(sock, server_hostname="localhost")

    def assert_serving(self):
        self.assertTrue(redis.Redis(port=self.server.port).ping())
        self.assertTrue(self.tls_client().ping())


class LargePipeline:
    def test_resp3_hello_and_a_large_pipeline(self):
        s = self.raw_tls()
        s.sendall(resp("HELLO", "3"))
        got = b""
        while b"modules" not in got:
            got += s.recv(65536)
        value = os.urandom(50000).hex()  # 100 kB values: many TLS records each way
        n = 300
        s.sendall(b"".join(resp("SET", "big:%d" % i, value) for i in range(n)))
        s.sendall(b"".join(resp("GET", "big:%d" % i) for i in range(n)))
        want = b"+OK\r\n" * n + (b"$%d\r\n%s\r\n" % (len(value), value.encode())) * n
        got = b""
        while len(got) < len(want):
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, "server closed early")
            got += chunk
        self.assertEqual(got, want)
        s.close()


class TlsTest(TlsBase, LargePipeline):
    def test_redis_py_over_tls(self):
        c = self.tls_client()
        self.assertTrue(c.set("tls:k", "v"))
        self.assertEqual(c.get("tls:k"), "v")
        # The same keyspace as the plaintext port.
        self.assertEqual(redis.Redis(port=self.server.port, decode_responses=True).get("tls:k"), "v")

    def test_redis_cli_tls(self):
        if not shutil.which("redis-cli"):
            self.skipTest("redis-cli not installed")
        base = ["redis-cli", "--tls", "--cacert", self.cert("ca.crt"), "--cert", self.cert("client.crt"),
                "--key", self.cert("client.key"), "-p", str(self.tls_port)]
        out = subprocess.run(base + ["SET", "cli:k", "hello"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.stdout.strip(), "OK", out.stderr)
        out = subprocess.run(base + ["GET", "cli:k"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.stdout.strip(), "hello", out.stderr)

    def test_client_certificates_that_must_be_refused(self):
        for who in (None, "expired", "stranger"):
            with self.assertRaises((redis.exceptions.ConnectionError, ssl.SSLError, OSError), msg=who):
                self.tls_client(who).ping()
        self.assert_serving()

    def test_plaintext_on_the_tls_port_is_refused(self):
        raw = Raw(self.tls_port)
        raw.send(b"PING\r\n")
        self.assertTrue(raw.closed_by_peer())
        raw = Raw(self.tls_port)
        raw.send(resp("SET", "plain", "x"))
        self.assertTrue(raw.closed_by_peer())
        self.assertIsNone(redis.Redis(port=self.server.port).get("plain"))
        self.assert_serving()

    def test_garbage_before_and_after_the_handshake(self):
        rng = random.Random(5)
        for size in (5, 100, 5000, 70000):  # (fewer than 5 bytes are a record header still to come)
            raw = Raw(self.tls_port)
            raw.send(bytes(rng.getrandbits(8) for _ in range(size)))
            self.assertTrue(raw.closed_by_peer())
        # A TLS record header announcing a huge record, then nothing.
        raw = Raw(self.tls_port)
        raw.send(b"\x16\x03\x01\xff\xff" + b"\x01" * 100)
        raw.close()
        # After a good handshake: raw bytes under the TLS layer are a bad record; the connection closes.
        for size in (64, 5000):
            ctx = ssl.create_default_context(cafile=self.cert("ca.crt"))
            ctx.load_cert_chain(self.cert("client.crt"), self.cert("client.key"))
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
            sock = socket.create_connection(("127.0.0.1", self.tls_port), timeout=10)
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(outgoing.read())
                    data = sock.recv(65536)
                    self.assertTrue(data)
                    incoming.write(data)
            sock.sendall(outgoing.read())
            obj.write(resp("PING"))
            sock.sendall(outgoing.read())
            sock.sendall(bytes(rng.getrandbits(8) for _ in range(size)))
            sock.settimeout(5)
            closed = False
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        closed = True
                        break
            except ConnectionResetError:
                closed = True
            self.assertTrue(closed)
            sock.close()
        self.assert_serving()

    def test_a_client_that_closes_with_close_notify(self):
        s = self.raw_tls()
        s.sendall(resp("PING"))
        self.assertEqual(s.recv(100), b"+PONG\r\n")
        s.unwrap()  # close_notify both ways
        s.close()
        self.assert_serving()


class TlsOptionalTest(TlsBase):
    auth_clients = "optional"

    def test_certificate_optional_but_checked_when_given(self):
        self.assertTrue(self.tls_client(None).ping())
        self.assertTrue(self.tls_client("client").ping())
        with self.assertRaises((redis.exceptions.ConnectionError, ssl.SSLError, OSError)):
            self.tls_client("stranger").ping()


class TlsEpollTest(TlsBase, LargePipeline):
    auth_clients = "no"
    io = "epoll"

    def test_epoll_backend_serves_tls(self):
        c = self.tls_client(None)
        p = c.pipeline(transaction=False)
        for i in range(2000):
            p.set("e:%d" % i, "x" * 1000)
        self.assertEqual(len(p.execute()), 2000)
        self.assertEqual(len(c.mget(["e:%d" % i for i in range(2000)])), 2000)


class TlsConfigTest(unittest.TestCase):
    def run_tallyd(self, *args):
        port = free_port()
        return subprocess.run([os.environ.get("TALLYD", "tallyd"), "--port", str(port), "--memcached-port", "0",
                               "--admin-port", "0", *args], capture_output=True, text=True, timeout=30)

    def test_bad_tls_settings_stop_the_start_clearly(self):
        d = make_certs(tempfile.mkdtemp(prefix="tally-tls-"))
        try:
            p = self.run_tallyd("--tls-port", str(free_port()))
            self.assertIn("tls_port needs tls_cert_file and tls_key_file", p.stdout + p.stderr)
            p = self.run_tallyd("--tls-port", str(free_port()), "--tls-cert-file", os.path.join(d, "server.crt"),
                                "--tls-key-file", os.path.join(d, "client.key"), "--tls-auth-clients", "no")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("tls-key-file", p.stdout + p.stderr)
            p = self.run_tallyd("--tls-port", str(free_port()), "--tls-cert-file", os.path.join(d, "server.crt"),
                                "--tls-key-file", os.path.join(d, "server.key"))
            self.assertIn("needs tls_ca_cert_file", p.stdout + p.stderr)
            p = self.run_tallyd("--tls-port", str(free_port()), "--tls-cert-file", os.path.join(d, "missing.crt"),
                                "--tls-key-file", os.path.join(d, "server.key"), "--tls-auth-clients", "no")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("tls-cert-file", p.stdout + p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
