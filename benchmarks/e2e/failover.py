#!/usr/bin/python3
"""Failover trials against a running local cluster (scripts/local-cluster.sh, its --dir given here).

Each trial: a writer on plain sockets writes keys of one partition ({fN} hash tag, a new one each
trial), one write outstanding, following -MOVED itself, retrying -TRYAGAIN, refused connections and
resets on the next node; every write acknowledged with +OK is recorded. After --steady seconds the
node leading that partition (the one acknowledging) is killed with SIGKILL; the failover time is
from the kill to the first write acknowledged by another node. The writer goes on for --after
seconds, then the killed node is started again with its own command line and the next trial waits
until it answers and every partition has a leader. At the end every acknowledged key is read back
through the partitions' leaders and compared with the value acknowledged."""
import argparse
import binascii
import glob
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def slot_of(key):
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return binascii.crc_hqx(key, 0) & 16383


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Client:
    """Plain connections to the nodes, following MOVED; retries until acknowledged or deadline."""

    def __init__(self, nodes, timeout=0.5):
        self.nodes = nodes
        self.timeout = timeout
        self.socks = {}
        self.owner = {}
        self.errors = {}

    def _sock(self, addr):
        s = self.socks.get(addr)
        if s is None:
            host, port = addr.rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks[addr] = (s, s.makefile("rb"))
            s = self.socks[addr]
        return s

    def _drop(self, addr):
        s = self.socks.pop(addr, None)
        if s:
            s[0].close()

    def _reply(self, f):
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if line[:1] == b"$":
            n = int(line[1:-2])
            return b"$", (None if n < 0 else f.read(n + 2)[:-2])
        return line[:1], line[1:-2]

    def call(self, key, *args, deadline=None):
        """Sends args for key until a reply that is not MOVED/TRYAGAIN/a connection error.
        Returns (addr, kind, body)."""
        slot = slot_of(key)
        tried = 0
        while True:
            addr = self.owner.get(slot) or self.nodes[tried % len(self.nodes)]
            try:
                s, f = self._sock(addr)
                s.sendall(command(*args))
                kind, body = self._reply(f)
            except (OSError, ConnectionError) as e:
                self._drop(addr)
                self.owner.pop(slot, None)
                self.errors[type(e).__name__] = self.errors.get(type(e).__name__, 0) + 1
                tried += 1
                if deadline and time.monotonic() > deadline:
                    return addr, b"!", str(e).encode()
                time.sleep(0.002)
                continue
            if kind == b"-" and body.startswith(b"MOVED "):
                self.owner[slot] = body.split()[2].decode()
                self.errors["MOVED"] = self.errors.get("MOVED", 0) + 1
                continue
            if kind == b"-" and body.startswith(b"TRYAGAIN"):
                self.errors["TRYAGAIN"] = self.errors.get("TRYAGAIN", 0) + 1
                self.owner.pop(slot, None)
                tried += 1
                time.sleep(0.002)
                continue
            self.owner[slot] = addr
            return addr, kind, body


class Writer(threading.Thread):
    def __init__(self, nodes, tag, acked):
        super().__init__(daemon=True)
        self.c = Client(nodes)
        self.tag, self.acked = tag, acked
        self.stop = False
        self.acks = []  # (monotonic time of the ack, node that acknowledged)
        self.other = []  # replies other than +OK

    def run(self):
        seq = 0
        while not self.stop:
            key = b"fo:{%s}:%08d" % (self.tag, seq)
            val = b"%s-%08d-%s" % (self.tag, seq, b"x" * 16)
            addr, kind, body = self.c.call(key, b"SET", key, val)
            if kind == b"+" and body == b"OK":
                self.acked[key] = val
                self.acks.append((time.monotonic(), addr))
                seq += 1
            else:
                self.other.append((addr, kind + body))
                time.sleep(0.002)


def info_field(addr, field):
    try:
        host, port = addr.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=1.0)
        s.sendall(command(b"INFO", b"cluster"))
        f = s.makefile("rb")
        head = f.readline()
        body = f.read(int(head[1:-2]) + 2).decode()
        s.close()
        for line in body.split("\r\n"):
            if line.startswith(field + ":"):
                return line.split(":", 1)[1]
    except OSError:
        return None
    return None


def proc_state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def reap(pid, leader, trial):
    try:
        os.waitpid(pid, 0)  # the nodes this script started again are its children
    except ChildProcessError:
        pass


def gone(pid, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc_state(pid) in ("gone", "Z"):
            return True
        time.sleep(0.01)
    return False


def wait_ready(nodes, limit=30.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if all(info_field(a, "cluster_partitions_without_leader") == "0" for a in nodes):
            return True
        time.sleep(0.05)
    return False


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="the local-cluster.sh --dir of a running cluster")
    p.add_argument("--base", type=int, default=7101)
    p.add_argument("-n", "--nodes", type=int, default=3)
    p.add_argument("-t", "--trials", type=int, default=20)
    p.add_argument("--steady", type=float, default=1.0)
    p.add_argument("--after", type=float, default=0.5)
    p.add_argument("--give-up", type=float, default=30.0, help="seconds without an ack before a trial fails")
    a = p.parse_args()
    nodes = [f"127.0.0.1:{a.base + i}" for i in range(a.nodes)]
    pidfile = {f"127.0.0.1:{a.base + i - 1}": f"{a.dir}/node-{i}.pid" for i in range(1, a.nodes + 1)}
    # Every node's command line, taken once from the members as started, to start them again with.
    argvs = {}
    for addr, f in pidfile.items():
        pid = int(open(f).read())
        argvs[addr] = open(f"/proc/{pid}/cmdline", "rb").read().rstrip(b"\0").split(b"\0")
    acked = {}
    times, failed, other_replies = [], 0, 0
    errors = {}
    for trial in range(a.trials):
        tag = b"f%d" % trial
        w = Writer(nodes, tag, acked)
        w.start()
        time.sleep(a.steady)
        if not w.acks:
            print(f"trial {trial}: no write acknowledged before the kill", file=sys.stderr)
            w.stop = True
            w.join()
            failed += 1
            continue
        leader = w.acks[-1][1]
        pid = int(open(pidfile[leader]).read())
        t_kill = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        threading.Thread(target=reap, args=(pid, leader, trial), daemon=True).start()
        end = t_kill + a.give_up
        first = None
        while first is None and time.monotonic() < end:
            for t, addr in reversed(w.acks):
                if t <= t_kill:
                    break
                if addr != leader:
                    first = t
            time.sleep(0.001)
        time.sleep(a.after)
        w.stop = True
        w.join()
        gone(pid, 10.0) or print(f"trial {trial}: pid {pid} ({leader}) still there 10 s after SIGKILL: "
                                 f"{proc_state(pid)}", file=sys.stderr)
        for k, v in w.c.errors.items():
            errors[k] = errors.get(k, 0) + v
        other_replies += len(w.other)
        if first is None:
            failed += 1
            print(f"trial {trial}: no ack within {a.give_up}s of killing {leader}", file=sys.stderr)
        else:
            new = next(addr for t, addr in w.acks if t == first)
            times.append(first - t_kill)
            print(f"trial {trial:2}: slot {slot_of(b'{' + tag + b'}'):5} leader {leader} (pid {pid}) killed, "
                  f"{new} acknowledged after {(first - t_kill) * 1e3:7.1f} ms; {len(w.acks)} acks")
        # The killed node comes back with its own command line, its log appended to.
        i = list(pidfile).index(leader) + 1
        log = open(f"{a.dir}/node-{i}.log", "ab")
        proc = subprocess.Popen([x.decode() for x in argvs[leader]], stdout=log, stderr=log, start_new_session=True)
        with open(pidfile[leader], "w") as f:
            f.write(f"{proc.pid}\n")
        if not wait_ready(nodes):
            print(f"trial {trial}: cluster not ready after restarting {leader}", file=sys.stderr)
    ms = sorted(t * 1e3 for t in times)
    if ms:
        p99 = ms[min(len(ms) - 1, (len(ms) * 99 + 99) // 100 - 1)]
        print(f"failover over {len(ms)} trials ({failed} failed): p50 {statistics.median(ms):.1f} ms, "
              f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms, min {ms[0]:.1f} ms")
    print("writer retries: " + ", ".join(f"{k}={v}" for k, v in sorted(errors.items())) +
          f"; other replies {other_replies}")
    # Read every acknowledged key back through the leaders.
    c = Client(nodes, timeout=2.0)
    missing, wrong = [], []
    for key, val in acked.items():
        _, kind, body = c.call(key, b"GET", key, deadline=time.monotonic() + 10)
        if kind != b"$" or body is None:
            missing.append(key)
        elif body != val:
            wrong.append((key, body))
    print(f"acknowledged writes: {len(acked)}; read back: {len(acked) - len(missing) - len(wrong)}; "
          f"missing: {len(missing)}; wrong value: {len(wrong)}")
    for k in missing[:10]:
        print(f"  missing {k.decode()} (slot {slot_of(k)})")
    for k, v in wrong[:10]:
        print(f"  wrong {k.decode()}: {v!r}")
    sys.exit(1 if missing or wrong or failed else 0)


if __name__ == "__main__":
    main()
