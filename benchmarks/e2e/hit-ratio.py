#!/usr/bin/env python3
"""Cache hit ratio on a Zipf(0.99) trace at a fixed memory limit: tallyd against redis-server, each
with the same maxmemory and policy, fed the same trace (GET, then SET on a miss) in the same run.

Usage: /usr/bin/python3 benchmarks/e2e/hit-ratio.py [--keys N] [--requests N] [--maxmemory 8mb]
                                                    [--policy allkeys-lru] [--tally-policy P]
Memory is as each server accounts it (INFO used_memory), so per-key overhead counts against each.
"""
import argparse
import bisect
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zipf_trace(keys, requests, s, seed):
    weights = [1.0 / (i + 1) ** s for i in range(keys)]
    cum, total = [], 0.0
    for w in weights:
        total += w
        cum.append(total)
    rng = random.Random(seed)
    # Rank r is key perm[r], so popularity is not tied to key names.
    perm = list(range(keys))
    rng.shuffle(perm)
    return [perm[bisect.bisect_left(cum, rng.random() * total)] for _ in range(requests)]


def run(port, trace, value, batch=200):
    r = redis.Redis(port=port)
    r.flushall()
    hits = 0
    for i in range(0, len(trace), batch):
        chunk = trace[i:i + batch]
        p = r.pipeline(transaction=False)
        for k in chunk:
            p.get(b"key:%d" % k)
        got = p.execute()
        p = r.pipeline(transaction=False)
        for k, v in zip(chunk, got):
            if v is None:
                p.set(b"key:%d" % k, value)
            else:
                hits += 1
        p.execute()
    info = r.info()
    return hits / len(trace), info["used_memory"], info.get("evicted_keys", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--requests", type=int, default=300000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--maxmemory", default="4mb")
    ap.add_argument("--policy", default="allkeys-lru")
    ap.add_argument("--tally-policy", default=None, help="tallyd's policy (default: the same as --policy)")
    ap.add_argument("--zipf", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    tallyd = os.environ.get("TALLYD", os.path.join(ROOT, "build/host/server/tallyd"))
    if not shutil.which("redis-server") or not os.path.exists(tallyd):
        sys.exit("needs redis-server and a built tallyd")
    trace = zipf_trace(args.keys, args.requests, args.zipf, args.seed)
    value = b"v" * args.value_bytes
    work = tempfile.mkdtemp()
    rport, tport = free_port(), free_port()
    procs = [
        subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", work, "--maxmemory", args.maxmemory,
                          "--maxmemory-policy", args.policy], stdout=subprocess.DEVNULL),
        subprocess.Popen([tallyd, "--port", str(tport), "--memcached-port", "0", "--admin-port", "0",
                          "--threads", "1", "--maxmemory", args.maxmemory, "--maxmemory-policy",
                          args.tally_policy or args.policy], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        for port in (rport, tport):
            for _ in range(100):
                try:
                    redis.Redis(port=port).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.1)
        print(f"Zipf({args.zipf}) over {args.keys} keys, {args.requests} requests, {args.value_bytes}-byte values, "
              f"maxmemory {args.maxmemory}, seed {args.seed}")
        print(f"{'server':<8} {'policy':<14} {'hit ratio':>9} {'used_memory':>12} {'evicted':>8}")
        for name, port, pol in (("redis", rport, args.policy), ("tally", tport, args.tally_policy or args.policy)):
            ratio, used, evicted = run(port, trace, value)
            print(f"{name:<8} {pol:<14} {ratio:>9.4f} {used:>12} {evicted:>8}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
