#!/usr/bin/env bash
# What replication costs: SET throughput of a 3-member tallyd cluster (every write on three nodes'
# disks, fsync'ed by a majority before it is acknowledged) against one unreplicated, unpersisted
# redis-server (--save "" --appendonly no), the same load generator, the same machine, alternating.
# On one machine the cluster does three times the work of one node, so 0.33x is the bound to reach.
# Usage: benchmarks/e2e/cluster-vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-P PIPELINE] [-r ROUNDS]
# Prints requests/s, p50 and server CPU per request (the cluster's summed over its 3 processes).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
requests=500000
clients=50
pipeline=16
rounds=1
while (($#)); do
  case $1 in
    -n) requests=$2; shift 2 ;;
    -c) clients=$2; shift 2 ;;
    -P) pipeline=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v redis-server >/dev/null || { echo "redis-server is not installed (make deps)" >&2; exit 2; }
source "$root/benchmarks/e2e/lib.sh"
cluster_dir=$work/cluster
# A base port whose client and peer ports (base..base+2, base+10000..) are all free.
base=$(/usr/bin/python3 - <<'PY'
import random, socket
def free(p):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p)); return True
        except OSError:
            return False
while True:
    b = random.randrange(20000, 30000)
    if all(free(b + i + o) for i in range(3) for o in (0, 10000)):
        print(b); break
PY
)
trap 'TALLYD=${TALLYD:-} "$root/scripts/local-cluster.sh" stop --dir "$cluster_dir" >/dev/null 2>&1 || true; cleanup' EXIT

rport=$(free_port)
start_bg redis redis-server --port "$rport" --save "" --appendonly no
redis_pid=$last_pid
wait_resp "$rport"
"$root/scripts/local-cluster.sh" start -n 3 --base "$base" --dir "$cluster_dir" >"$work/cluster-start.log" || { cat "$work/cluster-start.log" >&2; exit 1; }
tally_pids=($(cat "$cluster_dir"/node-*.pid))

echo "redis-benchmark -t set -n $requests -c $clients -P $pipeline; tallyd: 3 members (--durability fsync, --threads 1); redis-server: one, no persistence; $(nproc) cores"
printf '%-6s %-8s %10s %8s %9s\n' round server "req/s" "p50 ms" "us/req"
for r in $(seq 1 "$rounds"); do
  for s in redis tally; do
    if [[ $s == redis ]]; then
      args=(-p "$rport"); watch=("$redis_pid")
    else
      args=(--cluster -p "$base"); watch=("${tally_pids[@]}")
    fi
    c0=$(cpu_ticks "${watch[@]}")
    out=$(redis-benchmark "${args[@]}" -t set -n "$requests" -c "$clients" -P "$pipeline" -r 1000000 -q 2>/dev/null | tr '\r' '\n' | grep -E "^SET: [0-9.]+ requests per second" | tail -1)
    c1=$(cpu_ticks "${watch[@]}")
    rps=$(sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*p50=\([0-9.]*\) msec.*/\1/p' <<<"$out")
    us=$(awk -v t=$((c1 - c0)) -v hz="$tck" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    printf '%-6s %-8s %10s %8s %9s\n' "$r" "$s" "$rps" "$p50" "$us"
    eval "rps_$s=\$rps"
  done
  awk -v a="$rps_tally" -v b="$rps_redis" 'BEGIN { printf "round ratio cluster/redis: %.2f\n", a / b }'
done
