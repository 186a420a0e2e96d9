#!/usr/bin/env bash
# Replicated durable writes: 3 tallyd members against 3 etcd members, all on loopback on this one
# machine, alternating, in one run. Both fsync every acknowledged write: etcd always does, tallyd runs
# with its default --durability fsync; both acknowledge after a Raft majority has it.
# The same load generator (benchmarks/e2e/cluster_load.py, Python asyncio) drives both: C clients with
# one write outstanding each, 16-byte keys, 32-byte values; RESP SET following -MOVED for tallyd,
# HTTP/1.1 keep-alive JSON to etcd's gRPC gateway (/v3/kv/put, clients spread over the 3 members).
# A fresh cluster is started for every measurement.
#
# The load generator is one Python process, so it can be the limit rather than the servers: each row
# shows its share of one core (gen) next to the servers' cores (srv, the 3 processes summed). A row
# with gen >= 0.90 is marked "gen-bound": its writes/s is the generator's ceiling, not the server's;
# the server CPU per write is still a fair comparison. On a small machine the client and the 6
# servers share the same cores; rows where gen + srv reach the core count are marked "cpu-bound".
# A second table runs redis-benchmark --cluster (C, -t set -d 32) against tallyd alone.
# --serial adds a third store, "tally-serial": tallyd with --cluster-parallel-append no (a leader
# writes its own log before it sends), to show what sending during the leader's write gains.
#
# Usage: benchmarks/e2e/vs-etcd.sh [-c 1,50,1000] [-n 2000,20000,20000] [-r ROUNDS] [--dir PARENT]
#        [--base 7101] [--etcd-base 2379] [--no-redis-benchmark] [--serial]
#   -n gives the writes for each -c in turn (the last one repeats).
# Needs etcd (Debian etcd-server; scripts/install-deps.sh --bench), redis-benchmark, and
# scripts/local-cluster.sh; TALLYD/TALLYCTL name the binaries, LOCAL_CLUSTER another cluster script.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export TALLYD=${TALLYD:-$root/build/host/server/tallyd}
export TALLYCTL=${TALLYCTL:-$root/build/host/server/tallyctl}
cluster=${LOCAL_CLUSTER:-$root/scripts/local-cluster.sh}
clients=1,50,1000
counts=2000,20000,20000
rounds=1
parent=${TMPDIR:-/tmp}
base=7101
ebase=2379
rb=1
stores="etcd tally"
while (($#)); do
  case $1 in
    -c) clients=$2; shift 2 ;;
    -n) counts=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --etcd-base) ebase=$2; shift 2 ;;
    --no-redis-benchmark) rb=0; shift ;;
    --serial) stores="etcd tally tally-serial"; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v etcd >/dev/null || { echo "etcd is not installed (scripts/install-deps.sh --bench)" >&2; exit 2; }
[[ -x $TALLYD ]] || { echo "no tallyd at $TALLYD (make build)" >&2; exit 2; }
[[ -x $cluster ]] || { echo "no cluster script at $cluster" >&2; exit 2; }

data=$(mktemp -d "$parent/tally-vs-etcd-XXXXXX")
etcd_pids=()
stop_etcd() {
  ((${#etcd_pids[@]})) || return 0
  kill "${etcd_pids[@]}" 2>/dev/null || true
  # A leader whose peers are gone keeps campaigning for a while; do not wait on it forever.
  for _ in $(seq 50); do kill -0 "${etcd_pids[@]}" 2>/dev/null || break; sleep 0.1; done
  kill -9 "${etcd_pids[@]}" 2>/dev/null || true
  wait "${etcd_pids[@]}" 2>/dev/null || true
  etcd_pids=()
}
stop_tally() { "$cluster" stop --dir "$data/tally" >/dev/null 2>&1 || true; }
trap 'stop_etcd; stop_tally; rm -rf "$data"' EXIT

tally_nodes=127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))
etcd_nodes=127.0.0.1:$ebase,127.0.0.1:$((ebase + 2)),127.0.0.1:$((ebase + 4))

start_etcd() {
  rm -rf "$data/etcd"
  mkdir -p "$data/etcd"
  local initial="" i
  for i in 1 2 3; do initial+="e$i=http://127.0.0.1:$((ebase + 2 * i - 1)),"; done
  for i in 1 2 3; do
    local cp=$((ebase + 2 * i - 2)) pp=$((ebase + 2 * i - 1))
    etcd --name "e$i" --data-dir "$data/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
      --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
      --initial-cluster "${initial%,}" --initial-cluster-state new --initial-cluster-token tally-bench \
      >"$data/etcd/e$i.log" 2>&1 &
    etcd_pids+=($!)
  done
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "$etcd_nodes" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "etcd did not come up; $data/etcd/e1.log:" >&2
  tail "$data/etcd/e1.log" >&2
  return 1
}
start_tally() { "$cluster" start -n 3 --base "$base" --dir "$data/tally" -- "$@" >/dev/null; }
tally_pids() { cat "$data"/tally/node-*.pid | paste -sd,; }

IFS=, read -ra cs <<<"$clients"
IFS=, read -ra ns <<<"$counts"
count_for() { local i=$1; ((i < ${#ns[@]})) || i=$((${#ns[@]} - 1)); echo "${ns[$i]}"; }
loop=$(/usr/bin/python3 -c 'import uvloop' 2>/dev/null && echo uvloop || echo asyncio)
echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p') (3 members), tallyd 3 members (--threads 1, --durability fsync)," \
  "$(nproc) cores, data on $(df --output=source "$data" | tail -1)"
echo "load: cluster_load.py ($loop), SET/put of 16-byte keys and 32-byte values, clients ${clients}," \
  "writes ${counts}, rounds=$rounds, stores alternate, a fresh cluster each"
results=$data/results.jsonl
for i in "${!cs[@]}"; do
  c=${cs[$i]}
  n=$(count_for "$i")
  for round in $(seq "$rounds"); do
    for store in $stores; do
      if [[ $store == etcd ]]; then
        start_etcd
        pids=$(IFS=,; echo "${etcd_pids[*]}")
        nodes=$etcd_nodes
      elif [[ $store == tally-serial ]]; then
        start_tally --cluster-parallel-append no
        pids=$(tally_pids)
        nodes=$tally_nodes
      else
        start_tally
        pids=$(tally_pids)
        nodes=$tally_nodes
      fi
      # The generator speaks RESP to both tally stores; the row keeps the store's own name.
      /usr/bin/python3 "$root/benchmarks/e2e/cluster_load.py" "${store%-serial}" --nodes "$nodes" -c "$c" -n "$n" \
        --pids "$pids" | sed "s/\"store\": \"tally\"/\"store\": \"$store\"/" >>"$results" ||
        echo "{\"store\": \"$store\", \"clients\": $c, \"failed\": true}" >>"$results"
      if [[ $store == etcd ]]; then stop_etcd; else stop_tally; fi
    done
  done
done

/usr/bin/python3 - "$results" "$(nproc)" <<'PY'
import collections, json, statistics, sys
cores = int(sys.argv[2])
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[(r["clients"], r["store"])].append(r)
print(f"{'clients':>7} {'store':<12} {'writes/s':>9} {'p50 ms':>7} {'p99 ms':>8} {'srv us/w':>8} "
      f"{'srv':>5} {'idle':>5} {'gen us/w':>8} {'gen':>5} {'errors':>6}  note")
for key in sorted(rows):
    rs = [r for r in rows[key] if not r.get("failed")]
    if not rs:
        print(f"{key[0]:>7} {key[1]:<12} failed")
        continue
    med = lambda f: statistics.median(r[f] for r in rs)
    note = []
    if med("gen_core_share") >= 0.9:
        note.append("gen-bound")
    if med("gen_core_share") + med("server_cores") >= 0.9 * cores:
        note.append("cpu-bound")
    if key[1].startswith("tally") and (sum(r.get("moved", 0) for r in rs) or sum(r.get("tryagain", 0) for r in rs)):
        note.append(f"moved={sum(r['moved'] for r in rs)} tryagain={sum(r['tryagain'] for r in rs)}")
    print(f"{key[0]:>7} {key[1]:<12} {med('writes_per_s'):>9.0f} {med('p50_ms'):>7.2f} {med('p99_ms'):>8.2f} "
          f"{med('server_cpu_us_per_write'):>8.1f} {med('server_cores'):>5.2f} {med('server_idle_cores'):>5.2f} {med('gen_cpu_us_per_write'):>8.1f} "
          f"{med('gen_core_share'):>5.2f} {sum(r['errors'] for r in rs):>6}  {' '.join(note)}")
print("srv: cores the 3 servers used together under load; idle: the same over 1 s with no load;")
print("gen: share of one core the load generator used")
PY

if ((rb)); then
  echo
  echo "tallyd alone, redis-benchmark --cluster -t set -d 32 -r 1000000 (C client; keys key:{tag}:NNNNNNNNNNNN)"
  tck=$(getconf CLK_TCK)
  sum_ticks() { local t=0 p; for p in "${tp[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
  printf '%7s %9s %7s %8s %8s %5s\n' clients writes/s 'p50 ms' 'p99 ms' 'srv us/w' srv
  for i in "${!cs[@]}"; do
    c=${cs[$i]}
    n=$(count_for "$i")
    start_tally
    read -ra tp <<<"$(tally_pids | tr , ' ')"
    c0=$(sum_ticks)
    t0=$(date +%s.%N)
    line=$(redis-benchmark --cluster -p "$base" -t set -d 32 -r 1000000 -c "$c" -n "$n" --csv 2>/dev/null |
           grep '^"SET' | tr -d '"')
    t1=$(date +%s.%N)
    c1=$(sum_ticks)
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$line"
    awk -v c="$c" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v a="$c0" -v b="$c1" -v n="$n" -v t="$tck" \
        -v w0="$t0" -v w1="$t1" 'BEGIN { printf "%7d %9.0f %7.2f %8.2f %8.1f %5.2f\n", c, rps, p50, p99,
        (b - a) * 1e6 / t / n, (b - a) / t / (w1 - w0) }'
    stop_tally
  done
  echo "srv us/w here counts the whole redis-benchmark run (its cluster discovery included)"
fi
echo "reproduce: TALLYD=$TALLYD TALLYCTL=$TALLYCTL benchmarks/e2e/vs-etcd.sh -c $clients -n $counts -r $rounds" \
  "$([[ $stores == *serial* ]] && echo --serial)"
