#!/usr/bin/env bash
# tallyd's memcached port against memcached with identical memcslap runs (set, then get), alternating.
# Usage: benchmarks/e2e/vs-memcached.sh [-n EXECUTIONS_PER_THREAD] [-c THREADS] [-r ROUNDS] [--threads N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
execs=20000
conc=8
rounds=3
threads=${TALLY_THREADS:-1}
while (($#)); do
  case $1 in
    -n) execs=$2; shift 2 ;;
    -c) conc=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v memcached >/dev/null || { echo "memcached is not installed (make deps)" >&2; exit 2; }
command -v memcslap >/dev/null || { echo "memcslap is not installed (libmemcached-tools)" >&2; exit 2; }
[[ -x $tallyd ]] || { echo "no tallyd at $tallyd (make build)" >&2; exit 2; }

source "$root/benchmarks/e2e/lib.sh"
mc_port=$(free_port)
tally_port=$(free_port)
tally_mc_port=$(free_port)
user_args=()
[[ $(id -u) -eq 0 ]] && user_args=(-u root)
start_bg memcached memcached -l 127.0.0.1 -p "$mc_port" -U 0 -m 1024 -t "$threads" "${user_args[@]}"
start_bg tally "$tallyd" --port "$tally_port" --memcached-port "$tally_mc_port" --admin-port 0 --threads "$threads"
wait_resp "$tally_port"
for p in "$mc_port" "$tally_mc_port"; do
  for _ in $(seq 100); do memcping --servers=127.0.0.1:$p >/dev/null 2>&1 && break; sleep 0.1; done
done
echo "memcached $(memcached -V | cut -d' ' -f2) -t $threads, tallyd threads=$threads, $(nproc) cores"
echo "memcslap --concurrency=$conc --execute-number=$execs --test={set,get}, rounds=$rounds, servers alternate"
results=$work/results.txt
for round in $(seq "$rounds"); do
  for target in memcached tally; do
    port=$mc_port
    [[ $target == tally ]] && port=$tally_mc_port
    for test in set get; do
      memcslap --servers=127.0.0.1:$port --concurrency="$conc" --execute-number="$execs" --test=$test 2>&1 |
        sed -n "s/^Time to $test *\([0-9]*\) keys by .*: *\([0-9.]*\) seconds\./$target $test \1 \2/p" >>"$results"
    done
  done
done
/usr/bin/python3 - "$results" <<'PY'
import collections, statistics, sys
ops = collections.defaultdict(list)
for line in open(sys.argv[1]):
    target, test, keys, secs = line.split()
    ops[(test, target)].append(int(keys) / max(float(secs), 1e-9))
print(f"{'test':<5} {'memcached ops/s':>16} {'tally ops/s':>12} {'ratio':>6}")
for test in ("set", "get"):
    m, t = ops[(test, "memcached")], ops[(test, "tally")]
    if m and t:
        print(f"{test:<5} {statistics.median(m):>16.0f} {statistics.median(t):>12.0f} "
              f"{statistics.median(t) / statistics.median(m):>6.2f}")
PY
