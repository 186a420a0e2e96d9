#!/usr/bin/env bash
# Durable writes: tallyd against redis-server, both writing their logs to the same disk, alternating,
# in one run. Two pairings:
#   always:   tallyd --durability fsync    vs  redis-server --appendonly yes --appendfsync always
#   everysec: tallyd --durability interval vs  redis-server --appendonly yes --appendfsync everysec
# Usage: benchmarks/e2e/vs-redis-durable.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-t TESTS]
#        [--modes always,everysec] [--dir PARENT]
# Prints writes/s, p50/p99 (ms) and server CPU per request for both, tally/redis, and tallyd's log
# figures (records per batch, fdatasync latency) from INFO persistence.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
requests=500000
clients=50
rounds=1
tests=set,incr
modes=always,everysec
parent=${TMPDIR:-/tmp}
while (($#)); do
  case $1 in
    -n) requests=$2; shift 2 ;;
    -c) clients=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -t) tests=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v redis-server >/dev/null || { echo "redis-server is not installed (make deps)" >&2; exit 2; }
[[ -x $tallyd ]] || { echo "no tallyd at $tallyd (make build)" >&2; exit 2; }

source "$root/benchmarks/e2e/lib.sh"
data=$(mktemp -d "$parent/tally-durable-bench-XXXXXX")
trap 'cleanup; rm -rf "$data"' EXIT

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), tallyd threads=1, $(nproc) cores, data on $(df --output=source "$data" | tail -1)"
echo "redis-benchmark -t $tests -c $clients -n $requests -P {1,16}, rounds=$rounds, servers alternate"
results=$work/results.csv
for mode in ${modes//,/ }; do
  if [[ $mode == always ]]; then
    tally_mode=(--durability fsync); redis_mode=(--appendfsync always)
  else
    tally_mode=(--durability interval --fsync-interval-ms 1000); redis_mode=(--appendfsync everysec)
  fi
  for pipe in 1 16; do
    for round in $(seq "$rounds"); do
      for target in redis tally; do
        rm -rf "$data/$target"
        mkdir -p "$data/$target"
        port=$(free_port)
        if [[ $target == redis ]]; then
          start_bg "redis-$mode" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes \
            "${redis_mode[@]}" --dir "$data/$target"
        else
          start_bg "tally-$mode" "$tallyd" --port "$port" --memcached-port 0 --admin-port 0 --threads 1 \
            --dir "$data/$target" "${tally_mode[@]}"
        fi
        pid=$last_pid
        wait_resp "$port"
        for t in ${tests//,/ }; do
          c0=$(cpu_ticks "$pid")
          line=$(redis-benchmark -p "$port" -t "$t" -c "$clients" -n "$requests" -P "$pipe" --csv 2>/dev/null |
                 tail -n +2 | tr -d '"')
          c1=$(cpu_ticks "$pid")
          IFS=, read -r test rps avg min p50 p95 p99 max <<<"$line"
          cpu_us=$(awk -v a="$c0" -v b="$c1" -v n="$requests" -v t="$tck" 'BEGIN { printf "%.2f", (b - a) * 1e6 / t / n }')
          extra=""
          if [[ $target == tally ]]; then
            extra=$(redis-cli -p "$port" info persistence | tr -d '\r' |
                    awk -F: '/^wal_records_per_batch|^wal_sync_avg_us|^wal_sync_max_us/ {printf "%s=%s ", $1, $2}')
          fi
          echo "$mode,$pipe,$target,$round,${test%% *},$rps,$p50,$p99,$cpu_us,$extra" >>"$results"
        done
        kill "$pid"
        wait "$pid" 2>/dev/null || true
      done
    done
  done
done

/usr/bin/python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
extra = {}
for line in open(sys.argv[1]):
    mode, pipe, target, rnd, test, rps, p50, p99, cpu, wal = line.rstrip("\n").split(",", 9)
    rows[(mode, int(pipe), test, target)].append((float(rps), float(p50), float(p99), float(cpu)))
    if target == "tally":
        extra[(mode, int(pipe), test)] = wal
print(f"{'mode':<9} {'P':>3} {'test':<5} {'redis w/s':>10} {'p50':>6} {'p99':>7} {'us/req':>6} "
      f"{'tally w/s':>10} {'p50':>6} {'p99':>7} {'us/req':>6} {'ratio':>6}  tallyd log")
for key in sorted({k[:3] for k in rows}):
    r, t = rows[key + ("redis",)], rows[key + ("tally",)]
    if not r or not t:
        continue
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    print(f"{key[0]:<9} {key[1]:>3} {key[2]:<5} {med(r,0):>10.0f} {med(r,1):>6.2f} {med(r,2):>7.2f} {med(r,3):>6.2f} "
          f"{med(t,0):>10.0f} {med(t,1):>6.2f} {med(t,2):>7.2f} {med(t,3):>6.2f} {med(t,0)/med(r,0):>6.2f}  {extra[key]}")
PY
