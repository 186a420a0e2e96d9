#!/usr/bin/env python3
"""The offload engine inside tallyd on a GPU machine: loads the same keys into a cpu-only tallyd and
into one offered cpu,cuda, times TALLY DIGEST on each, checks the digests agree, and checks from
INFO offload that the cpu,cuda server really ran batches on the cuda backend (equal digests alone
would also hold if every batch had quietly run on the CPU).

usage: digest_check.py TALLYD CALIBRATION [KEYS] [THREADS]
Exit 0: digests agree and cuda ran batches; 77: digests agree, but the cuda backend is absent on this
machine (tallyd says why) and TALLY_REQUIRE_GPU is not 1; 1: anything else.
Standard library only (the lent machine may have no redis client)."""
import os
import re
import socket
import subprocess
import sys
import time

NO_DEVICE_EXIT = 77
# Both servers build batches of up to 262,144 items and 8 MiB (the cuda driver's half slot), where a
# GPU has a chance against the CPU; at the default 4,096 items a calibrated scheduler may rightly
# keep every batch on the CPU, and the check would prove nothing about the cuda path.
BATCH_ARGS = ["--offload-batch-items", "262144", "--offload-batch-bytes", "8mb"]


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
    def __init__(self, tallyd, threads, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([tallyd, "--port", str(self.port), "--memcached-port", "0", "--admin-port", "0",
                                      "--threads", str(threads)] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.sock = None
        for _ in range(400):
            if self.proc.poll() is not None:
                out, _ = self.proc.communicate()
                raise RuntimeError("tallyd %s exited with %d:\n%s" % (" ".join(args), self.proc.returncode, out))
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        if self.sock is None:
            self.proc.kill()
            raise RuntimeError("tallyd %s did not accept connections in 20 s" % " ".join(args))
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


def cuda_batches(info):
    """Batches the cuda backend completed, summed over ops, from INFO offload's counter lines."""
    return sum(int(m.group(1)) for m in re.finditer(r"^offload_\w+?_cuda:batches=(\d+)", info, re.M))


def main():
    tallyd, calibration = sys.argv[1], sys.argv[2]
    keys = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    required = os.environ.get("TALLY_REQUIRE_GPU") == "1"
    results = {}
    infos = {}
    for name, args in (("cpu", BATCH_ARGS + ["--offload-backends", "cpu"]),
                       ("cpu,cuda", BATCH_ARGS + ["--offload-backends", "cpu,cuda", "--offload-calibration", calibration])):
        try:
            srv = Server(tallyd, threads, *args)
        except RuntimeError as e:
            print("== %s: %s" % (name, e))
            return 1
        t0 = time.time()
        srv.load(keys)
        print("== %s: loaded %d keys in %.1f s" % (name, keys, time.time() - t0))
        times = []
        for _ in range(3):
            t0 = time.time()
            digest = srv.call("TALLY", "DIGEST")
            times.append(time.time() - t0)
        info = srv.call("INFO", "offload")
        log = srv.stop()
        results[name] = digest
        infos[name] = info.replace("\r\n", "\n")
        print("== %s: %d keys, digest %s, TALLY DIGEST %s s" % (name, keys, digest,
                                                               ", ".join("%.3f" % t for t in times)))
        print(infos[name].strip())
        print("\n".join(l for l in log.splitlines() if "offload" in l))
    same = results["cpu"] == results["cpu,cuda"]
    batches = cuda_batches(infos["cpu,cuda"])
    print("digests agree: %s" % same)
    print("cuda batches: %d" % batches)
    if not same:
        return 1
    if batches > 0:
        return 0
    absent = re.search(r"^offload_absent:(.*cuda.*)$", infos["cpu,cuda"], re.M)
    if absent and not required:
        print("no device: %s" % absent.group(1).strip())
        return NO_DEVICE_EXIT
    print("FAIL: the cpu,cuda server ran no batch on cuda%s" % (" (%s)" % absent.group(1).strip() if absent else ""))
    return 1


if __name__ == "__main__":
    sys.exit(main())
