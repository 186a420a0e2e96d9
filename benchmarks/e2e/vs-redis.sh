#!/usr/bin/env bash
# tallyd against redis-server with identical redis-benchmark runs, alternating, in one run.
# Usage: benchmarks/e2e/vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-t TESTS] [--threads N]
# Prints requests/s and p50/p99 (ms) for both servers, per test and pipeline depth, and tally/redis.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
requests=1000000
clients=50
rounds=1
tests=set,get,incr,mset
threads=${TALLY_THREADS:-1}
source "$root/benchmarks/e2e/lib.sh"
redis_bench_options "$@"
redis_port=$(free_port)
tally_port=$(free_port)
start_bg redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work"
start_bg tally "$tallyd" --port "$tally_port" --memcached-port 0 --admin-port 0 --threads "$threads"
wait_resp "$redis_port"
wait_resp "$tally_port"

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), tallyd threads=$threads, $(nproc) cores"
echo "redis-benchmark -t $tests -c $clients -n $requests -P {1,16}, rounds=$rounds, servers alternate"
results=$work/results.csv
for pipe in 1 16; do
  for round in $(seq "$rounds"); do
    for target in redis tally; do
      port=$redis_port
      [[ $target == tally ]] && port=$tally_port
      redis-cli -p "$port" flushall >/dev/null
      redis-benchmark -p "$port" -t "$tests" -c "$clients" -n "$requests" -P "$pipe" --csv 2>/dev/null |
        tail -n +2 | tr -d '"' | while IFS=, read -r test rps avg min p50 p95 p99 max; do
          echo "$pipe,$target,$round,$test,$rps,$p50,$p99" >>"$results"
        done
    done
  done
done

/usr/bin/python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    pipe, target, rnd, test, rps, p50, p99 = line.strip().split(",")
    rows[(int(pipe), test.split()[0], target)].append((float(rps), float(p50), float(p99)))
print(f"{'P':>3} {'test':<6} {'redis rps':>12} {'p50':>6} {'p99':>6} {'tally rps':>12} {'p50':>6} {'p99':>6} {'ratio':>6}")
for pipe in (1, 16):
    for test in sorted({k[1] for k in rows if k[0] == pipe}):
        r = rows[(pipe, test, "redis")]
        t = rows[(pipe, test, "tally")]
        if not r or not t:
            continue
        med = lambda xs, i: statistics.median(x[i] for x in xs)
        ratio = med(t, 0) / med(r, 0)
        print(f"{pipe:>3} {test:<6} {med(r,0):>12.0f} {med(r,1):>6.3f} {med(r,2):>6.3f} "
              f"{med(t,0):>12.0f} {med(t,1):>6.3f} {med(t,2):>6.3f} {ratio:>6.2f}")
PY
