#!/usr/bin/env python3
"""Change-stream throughput and lag: a producer writes SETs into one partition at a fixed rate while 1
(then 10) consumers tail that partition's change stream with XREAD BLOCK. Each value is the
producer's send time (ns), so a consumer's lag for an entry is the time from the producer sending the
write to the consumer holding its change: commit, apply and delivery together (an upper bound on
commit-to-consumer lag). Prints, per run: writes/s committed, changes/s tailed per consumer, lag p50,
p99 and max (ms), and tallyd's CPU time per write.

Consumers parse with hiredis when it is importable (Debian: python3-hiredis), else with a small
parser here; with 10 consumers the client side needs the faster one to keep up on a small machine.

    benchmarks/e2e/change-stream-lag.py [--rate 50000] [--seconds 10] [--consumers 1,10] [--durable]
"""
import argparse
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALLYD = os.environ.get("TALLYD", os.path.join(ROOT, "build", "host", "server", "tallyd"))
TAG = "{cs}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    """A RESP connection: hiredis's reader when present, else a minimal one (bulk, array, int, errors)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            import hiredis
            self.reader = hiredis.Reader()
        except ImportError:
            self.reader = None
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed")
        if self.reader is not None:
            self.reader.feed(chunk)
        else:
            self.buf += chunk

    def reply(self):
        if self.reader is not None:
            while True:
                r = self.reader.gets()
                if r is not False:
                    return r
                self._fill()
        while True:
            r, used = self._parse(0)
            if used:
                self.buf = self.buf[used:]
                return r
            self._fill()

    def _parse(self, at):
        eol = self.buf.find(b"\r\n", at)
        if eol < 0:
            return None, 0
        t, head = self.buf[at:at + 1], self.buf[at + 1:eol]
        if t in (b"+", b"-"):
            return head, eol + 2
        if t == b":":
            return int(head), eol + 2
        n = int(head)
        if t == b"$":
            if n < 0:
                return None, eol + 2
            end = eol + 2 + n
            return (self.buf[eol + 2:end], end + 2) if len(self.buf) >= end + 2 else (None, 0)
        if n < 0:
            return None, eol + 2
        items, p = [], eol + 2
        for _ in range(n):
            v, q = self._parse(p)
            if not q:
                return None, 0
            items.append(v)
            p = q
        return items, p


def producer(port, rate, seconds, out):
    c = Conn(port)
    tick = 0.001
    per_tick = max(1, int(rate * tick))
    sent = 0
    start = time.monotonic()
    end = start + seconds
    i = 0
    while time.monotonic() < end:
        batch = []
        for _ in range(per_tick):
            batch.append(resp("SET", "%sk%d" % (TAG, i % 100000), time.time_ns()))
            i += 1
        c.send(b"".join(batch))
        for _ in range(per_tick):
            c.reply()
        sent += per_tick
        behind = start + sent / rate - time.monotonic()
        if behind > 0:
            time.sleep(behind)
    out.put(("producer", sent, time.monotonic() - start))


def consumer(port, stream, seconds, ready, out):
    c = Conn(port)
    last = b"$"
    lags = []
    got = 0
    ready.set()
    deadline = time.monotonic() + seconds + 3
    t0 = None
    while time.monotonic() < deadline:
        c.send(resp("XREAD", "COUNT", "5000", "BLOCK", "500", "STREAMS", stream, last))
        r = c.reply()
        if isinstance(r, (bytes, Exception)):
            raise RuntimeError("XREAD answered %r" % (r,))
        if not r:
            if got and t0 is not None and time.monotonic() - t0 > seconds + 1:
                break
            continue
        now = time.time_ns()
        if t0 is None:
            t0 = time.monotonic()
        entries = r[0][1]
        for eid, fields in entries:
            # fields: time (the write's time at the server, ms), op, partition, [index], key, type,
            # ttl_ms, value (the producer's send time, ns), ...
            i = fields.index(b"value")
            lags.append(((now - int(fields[i + 1])) / 1e6, now / 1e6 - int(fields[1])))
        got += len(entries)
        last = entries[-1][0]
    out.put(("consumer", got, lags))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def percentile(v, q):
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def run(args, consumers):
    work = tempfile.mkdtemp(prefix="tally-cs-bench-")
    port = free_port()
    cmd = [TALLYD, "--port", str(port), "--memcached-port", "0", "--admin-port", "0", "--threads", str(args.threads),
           "--dir", work, "--change-stream", "yes", "--change-stream-max-entries", "100000"]
    cmd += ["--durability", "fsync"] if args.durable else ["--durability", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        c = Conn(port)
        c.send(resp("SET", TAG + "warm", time.time_ns()))
        c.reply()
        c.send(resp("TALLY", "CHANGES"))
        rows = c.reply()
        from_slot = None
        c.send(resp("XRANGE", rows[0][1], "-", "+", "COUNT", "1"))
        c.reply()
        # The stream of the partition holding TAG: the one the warm-up write landed in.
        for _, stream, first, last in rows:
            c.send(resp("XLEN", stream))
            if c.reply() > 0:
                from_slot = stream
        out = mp.Queue()
        readies = [mp.Event() for _ in range(consumers)]
        cons = [mp.Process(target=consumer, args=(port, from_slot, args.seconds, readies[i], out)) for i in range(consumers)]
        for p in cons:
            p.start()
        for e in readies:
            e.wait()
        time.sleep(0.3)
        cpu0 = cpu_seconds(proc.pid)
        prod = mp.Process(target=producer, args=(port, args.rate, args.seconds, out))
        prod.start()
        results = [out.get() for _ in range(consumers + 1)]
        cpu1 = cpu_seconds(proc.pid)
        prod.join()
        for p in cons:
            p.join()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    sent, took = next((r[1], r[2]) for r in results if r[0] == "producer")
    lags = sorted(x[0] for r in results if r[0] == "consumer" for x in r[2])
    from_commit = sorted(x[1] for r in results if r[0] == "consumer" for x in r[2])
    per_consumer = [r[1] for r in results if r[0] == "consumer"]
    print("%-7s consumers=%-2d writes/s=%6.0f tailed/s per consumer=%6.0f (all seen: %s) lag from send ms p50=%5.2f "
          "p99=%6.2f max=%6.2f; from the server's write time (1 ms steps) p50=%5.2f p99=%6.2f; server CPU/write=%5.1f us" % (
              "durable" if args.durable else "memory", consumers, sent / took, min(per_consumer) / took,
              all(n >= sent for n in per_consumer), percentile(lags, 0.5), percentile(lags, 0.99),
              lags[-1] if lags else float("nan"), percentile(from_commit, 0.5), percentile(from_commit, 0.99),
              (cpu1 - cpu0) / max(sent, 1) * 1e6))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--consumers", default="1,10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--durable", action="store_true")
    args = ap.parse_args()
    for n in [int(x) for x in args.consumers.split(",")]:
        run(args, n)


if __name__ == "__main__":
    main()
