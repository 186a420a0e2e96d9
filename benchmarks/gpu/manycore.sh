#!/usr/bin/env bash
# tallyd with one shard per server core against redis-server and memcached (-t the same) on a machine
# with cores to spare: the servers on the first half of the cores, the clients pinned to the other
# half (taskset), so the client never takes the server's cores as it does on a 2-core VM. RESP:
# redis-benchmark SET and GET with -P 1 and -P 16; memcached protocol: memcslap set and get (it
# reports no latency percentiles). Records requests/s, p50/p99 where the client gives them, and the
# server's CPU time per request (utime+stime from /proc around each run).
#
# usage: benchmarks/gpu/manycore.sh BIN_DIR OUT_CSV [--quick]
#   BIN_DIR holds tallyd, redis-server, redis-benchmark, memcached, memcslap (the bundle's bin/).
#   --quick: tiny request counts, for the dry run on a small machine.
set -uo pipefail
bin=$(cd "$1" && pwd)
csv=$2
quick=0
[[ ${3:-} == --quick ]] && quick=1

cores=$(nproc)
half=$((cores / 2))
((half >= 1)) || half=1
server_cpus="0-$((half - 1))"
client_cpus="$half-$((cores - 1))"
((cores >= 2)) || client_cpus=0
threads=$((half < 8 ? half : 8))
client_threads=$(((cores - half) < 8 ? (cores - half) : 8))
((client_threads >= 1)) || client_threads=1
if ((quick)); then
  n_p1=2000 n_p16=20000 mc_execs=500
else
  n_p1=400000 n_p16=2000000 mc_execs=50000
fi
conns=50
tick=$(getconf CLK_TCK)
pin_server=(taskset -c "$server_cpus")
pin_client=(taskset -c "$client_cpus")
if ! command -v taskset >/dev/null; then
  echo "manycore: no taskset on this machine: servers and clients are not pinned"
  pin_server=()
  pin_client=()
fi
echo "manycore: $cores cores; servers on $server_cpus ($threads threads/shards), clients on $client_cpus ($client_threads threads)"
echo "server,protocol,test,pipeline,requests,rps,p50_ms,p99_ms,server_cpu_us_per_request" >"$csv"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
wait_port() {
  for _ in $(seq 200); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "manycore: nothing listens on port $1" >&2
  return 1
}
pid=
stop_server() {
  [[ -n $pid ]] || return 0
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}
trap stop_server EXIT

# record SERVER PROTO TEST P REQUESTS RPS P50 P99 TICKS
record() {
  local us
  us=$(awk -v t="$9" -v hz="$tick" -v n="$5" 'BEGIN { printf "%.3f", (n > 0 ? t / hz / n * 1e6 : 0) }')
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$us" >>"$csv"
  echo "result $1 $2 $3 P$4: $6 req/s, p50 $7 ms, p99 $8 ms, server $us us CPU/request"
}

resp_runs() {  # SERVER PORT
  local p n before after line t
  for p in 1 16; do
    n=$n_p1
    ((p == 16)) && n=$n_p16
    before=$(cpu_ticks "$pid")
    out=$("${pin_client[@]}" "$bin/redis-benchmark" -p "$2" -t set,get -c "$conns" -n "$n" -r 100000 \
      -P "$p" --threads "$client_threads" --csv -q 2>&1)
    after=$(cpu_ticks "$pid")
    # Both tests in one run: the server's CPU is shared out by request count (equal: n each).
    while IFS=, read -r t rps _ _ p50 _ p99 _; do
      t=${t//\"/}
      [[ $t == SET || $t == GET ]] || continue
      record "$1" resp "$t" "$p" "$n" "${rps//\"/}" "${p50//\"/}" "${p99//\"/}" $(((after - before) / 2))
    done <<<"$out"
  done
}

mc_runs() {  # SERVER PORT
  local t before after secs keys
  for t in set get; do
    before=$(cpu_ticks "$pid")
    out=$("${pin_client[@]}" "$bin/memcslap" --servers=127.0.0.1:"$2" --concurrency="$((client_threads * 4))" \
      --execute-number="$mc_execs" --test=$t 2>&1)
    after=$(cpu_ticks "$pid")
    read -r keys secs < <(sed -n "s/^Time to $t *\([0-9]*\) keys by .*: *\([0-9.]*\) seconds\./\1 \2/p" <<<"$out")
    if [[ -z ${keys:-} ]]; then
      echo "manycore: memcslap gave no result against $1:" >&2
      echo "$out" >&2
      continue
    fi
    record "$1" memcache "$t" 1 "$keys" "$(awk -v k="$keys" -v s="$secs" 'BEGIN { printf "%.0f", k / (s > 0 ? s : 1e-9) }')" \
      "" "" $((after - before))
  done
}

root_args=()
[[ $(id -u) -eq 0 ]] && root_args=(-u root)

port=$(free_port)
mc_port=$(free_port)
"${pin_server[@]}" "$bin/tallyd" --port "$port" --memcached-port "$mc_port" --admin-port 0 --threads "$threads" \
  >/dev/null 2>&1 &
pid=$!
wait_port "$port" && wait_port "$mc_port" && { resp_runs tallyd "$port"; mc_runs tallyd "$mc_port"; }
stop_server

port=$(free_port)
"${pin_server[@]}" "$bin/redis-server" --port "$port" --save "" --appendonly no >/dev/null 2>&1 &
pid=$!
wait_port "$port" && resp_runs redis-server "$port"
stop_server

port=$(free_port)
"${pin_server[@]}" "$bin/memcached" -l 127.0.0.1 -p "$port" -U 0 -m 1024 -t "$threads" "${root_args[@]}" \
  >/dev/null 2>&1 &
pid=$!
wait_port "$port" && mc_runs memcached "$port"
stop_server
rows=$(($(wc -l <"$csv") - 1))
echo "manycore: $rows rows -> $csv"
((rows == 12))
