#!/usr/bin/python3
"""One write load generator for replicated stores: the same client loop drives a tallyd cluster
(RESP SET, following -MOVED to the partition's leader, retrying -TRYAGAIN) and an etcd cluster
(HTTP/1.1 keep-alive POST of JSON to the v3 gRPC gateway, /v3/kv/put, members taken in turn).

  cluster_load.py tally --nodes 127.0.0.1:7101,... -c CLIENTS -n REQUESTS [--pids P,P,P]
  cluster_load.py etcd  --nodes 127.0.0.1:2379,... -c CLIENTS -n REQUESTS [--pids P,P,P]

Each of CLIENTS keeps one request outstanding (no pipelining). Keys are 16 bytes ("key:" and 12
digits, drawn from --keyspace), values 32 bytes. Prints one line of JSON: writes/s, p50/p99 (ms)
of the time from sending a write to its acknowledgement (retries included), the servers' CPU time
(utime+stime of --pids, summed) per write, and the generator's own CPU time per write and share
of one core, so a run where the generator and not the servers is the limit shows as such."""
import argparse
import asyncio
import base64
import binascii
import json
import os
import random
import resource
import sys
import time

try:
    import uvloop
except ImportError:
    uvloop = None

TCK = os.sysconf("SC_CLK_TCK")
VALUE = b"v" * 32


def cpu_seconds(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TCK


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def slot_of(key):
    # Redis Cluster's key slot: CRC16/XMODEM of the key (or of its {hash tag}) mod 16384.
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            key = key[s + 1:e]
    return binascii.crc_hqx(key, 0) & 16383


class Conn:
    def __init__(self, reader, writer):
        self.r, self.w = reader, writer


async def connect(addr):
    host, port = addr.rsplit(":", 1)
    r, w = await asyncio.open_connection(host, int(port), limit=1 << 16)
    return Conn(r, w)


class Tally:
    """Slot map from CLUSTER SLOTS, corrected by every -MOVED; one connection per node per client."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.owner = [nodes[0]] * 16384
        self.moved = self.tryagain = 0

    async def setup(self):
        c = await connect(self.nodes[0])
        c.w.write(b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n")
        ranges = await read_resp(c.r)
        for r in ranges:
            lo, hi, leader = r[0], r[1], r[2]
            addr = f"{leader[0].decode()}:{leader[1]}"
            for s in range(lo, hi + 1):
                self.owner[s] = addr
        c.w.close()

    def client(self):
        return TallyClient(self)


async def read_resp(r):
    line = await r.readline()
    if not line:
        raise ConnectionError("closed")
    t, body = line[:1], line[1:-2]
    if t == b"+":
        return body
    if t == b"-":
        return Exception(body.decode())
    if t == b":":
        return int(body)
    if t == b"$":
        n = int(body)
        if n < 0:
            return None
        return (await r.readexactly(n + 2))[:-2]
    if t == b"*":
        return [await read_resp(r) for _ in range(int(body))]
    raise ValueError(f"unexpected reply {line!r}")


class TallyClient:
    def __init__(self, cluster):
        self.c = cluster
        self.conns = {}

    async def conn(self, addr):
        c = self.conns.get(addr)
        if c is None:
            c = self.conns[addr] = await connect(addr)
        return c

    async def put(self, key, value):
        slot = slot_of(key)
        req = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value)
        while True:
            addr = self.c.owner[slot]
            c = await self.conn(addr)
            c.w.write(req)
            line = await c.r.readline()
            if line == b"+OK\r\n":
                return
            if line.startswith(b"-MOVED "):
                self.c.moved += 1
                self.c.owner[slot] = line.split()[2].decode()
            elif line.startswith(b"-TRYAGAIN"):
                self.c.tryagain += 1
                await asyncio.sleep(0.005)
            else:
                raise RuntimeError(f"{addr}: {line!r}")


class Etcd:
    def __init__(self, nodes):
        self.nodes = nodes
        self.next = 0

    async def setup(self):
        pass

    def client(self):
        addr = self.nodes[self.next % len(self.nodes)]
        self.next += 1
        return EtcdClient(addr)


class EtcdClient:
    def __init__(self, addr):
        self.addr = addr
        self.c = None
        self.head = (f"POST /v3/kv/put HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n").encode()

    async def put(self, key, value):
        if self.c is None:
            self.c = await connect(self.addr)
        body = b'{"key":"%s","value":"%s"}' % (base64.b64encode(key), base64.b64encode(value))
        self.c.w.write(self.head % len(body) + body)
        status = await self.c.r.readline()
        length = 0
        while True:
            h = await self.c.r.readline()
            if h == b"\r\n":
                break
            if h[:15].lower() == b"content-length:":
                length = int(h[15:])
        reply = await self.c.r.readexactly(length)
        if not status.startswith(b"HTTP/1.1 200") or b'"revision"' not in reply:
            raise RuntimeError(f"{self.addr}: {status!r} {reply[:200]!r}")


async def main(a):
    nodes = a.nodes.split(",")
    pids = [int(p) for p in a.pids.split(",")] if a.pids else []
    store = Tally(nodes) if a.store == "tally" else Etcd(nodes)
    await store.setup()
    clients = [store.client() for _ in range(a.clients)]
    rnd = random.Random(1)
    # Warm up: every client makes its connections and writes once before the clock starts.
    await asyncio.gather(*(c.put(b"key:%012d" % rnd.randrange(a.keyspace), VALUE) for c in clients))
    if isinstance(store, Tally):
        for c in clients:
            for addr in nodes:
                await c.conn(addr)
    # What the servers burn with no load (heartbeats, ticks), to read the per-write figure against.
    i0 = cpu_seconds(pids)
    await asyncio.sleep(a.idle)
    idle_cores = (cpu_seconds(pids) - i0) / a.idle if a.idle > 0 else None
    lat = []
    left = a.requests
    errors = 0

    async def run(c):
        nonlocal left, errors
        r = random.Random(id(c))
        while left > 0:
            left -= 1
            key = b"key:%012d" % r.randrange(a.keyspace)
            t = time.perf_counter()
            try:
                await c.put(key, VALUE)
            except Exception as e:  # counted, and the run goes on
                errors += 1
                if errors <= 5:
                    print(f"error: {e}", file=sys.stderr)
                if isinstance(c, EtcdClient):
                    c.c = None
                else:
                    c.conns.clear()
                continue
            lat.append(time.perf_counter() - t)

    s0, g0, t0 = cpu_seconds(pids), self_cpu(), time.perf_counter()
    await asyncio.gather(*(run(c) for c in clients))
    s1, g1, t1 = cpu_seconds(pids), self_cpu(), time.perf_counter()
    lat.sort()
    n = len(lat)
    wall = t1 - t0
    out = {
        "store": a.store, "clients": a.clients, "writes": n, "errors": errors,
        "wall_s": round(wall, 3), "writes_per_s": round(n / wall, 1),
        "p50_ms": round(lat[n // 2] * 1e3, 3) if n else None,
        "p99_ms": round(lat[min(n - 1, n * 99 // 100)] * 1e3, 3) if n else None,
        "server_cpu_us_per_write": round((s1 - s0) * 1e6 / max(n, 1), 1),
        "server_cores": round((s1 - s0) / wall, 2),
        "server_idle_cores": round(idle_cores, 2) if idle_cores is not None else None,
        "gen_cpu_us_per_write": round((g1 - g0) * 1e6 / max(n, 1), 1),
        "gen_core_share": round((g1 - g0) / wall, 2),
        "loop": "uvloop" if uvloop else "asyncio",
    }
    if isinstance(store, Tally):
        out["moved"], out["tryagain"] = store.moved, store.tryagain
    print(json.dumps(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("store", choices=["tally", "etcd"])
    p.add_argument("--nodes", required=True)
    p.add_argument("-c", "--clients", type=int, default=50)
    p.add_argument("-n", "--requests", type=int, default=20000)
    p.add_argument("--keyspace", type=int, default=1000000)
    p.add_argument("--pids", default="")
    p.add_argument("--idle", type=float, default=1.0, help="seconds of no load measured first")
    a = p.parse_args()
    resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536)) if resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 65536 else None
    if uvloop:
        uvloop.install()
    asyncio.run(main(a))
