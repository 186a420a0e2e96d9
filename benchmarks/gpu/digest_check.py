#!/usr/bin/env python3
"""The offload engine inside tallyd on a GPU machine: loads the same keys into a cpu-only tallyd and
into one offered cpu,cuda, times TALLY DIGEST on each, checks the digests agree and prints each
server's INFO offload (which backend ran the checksum, partition and merkle batches).

usage: digest_check.py TALLYD CALIBRATION [KEYS]
Standard library only (the lent machine may have no redis client)."""
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b"-", b":"):
        return line[:-2].decode()
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind in (b"*", b"%", b"~"):
        return [read_reply(f) for _ in range(int(rest))]
    if kind == b"=":
        return f.read(int(rest) + 2)[4:-2].decode()
    raise RuntimeError("unexpected reply %r" % line)


class Server:
    def __init__(self, tallyd, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([tallyd, "--port", str(self.port), "--memcached-port", "0", "--admin-port", "0",
                                      "--threads", "4"] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        for _ in range(200):
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.sock.makefile("rb")

    def call(self, *args):
        self.sock.sendall(command(*args))
        return read_reply(self.f)

    def load(self, keys):
        batch = 10000
        for first in range(0, keys, batch):
            n = min(batch, keys - first)
            self.sock.sendall(b"".join(command("SET", "key:%012d" % i, "v" * 32) for i in range(first, first + n)))
            for _ in range(n):
                read_reply(self.f)

    def stop(self):
        self.sock.sendall(command("SHUTDOWN", "NOSAVE"))  # no reply: the server closes the connection
        out, _ = self.proc.communicate(timeout=30)
        return out


def main():
    tallyd, calibration = sys.argv[1], sys.argv[2]
    keys = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    results = {}
    for name, args in (("cpu", ["--offload-backends", "cpu"]),
                       ("cpu,cuda", ["--offload-backends", "cpu,cuda", "--offload-calibration", calibration])):
        srv = Server(tallyd, *args)
        srv.load(keys)
        times = []
        for _ in range(3):
            t0 = time.time()
            digest = srv.call("TALLY", "DIGEST")
            times.append(time.time() - t0)
        info = srv.call("INFO", "offload")
        log = srv.stop()
        results[name] = digest
        print("== %s: %d keys, digest %s, TALLY DIGEST %s s" % (name, keys, digest,
                                                               ", ".join("%.3f" % t for t in times)))
        print(info.replace("\r\n", "\n").strip())
        print("\n".join(l for l in log.splitlines() if "offload" in l))
    same = results["cpu"] == results["cpu,cuda"]
    print("digests agree: %s" % same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
