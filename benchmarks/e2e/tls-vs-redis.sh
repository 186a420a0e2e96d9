#!/usr/bin/env bash
# tallyd's TLS port against redis-server's own TLS (Debian's redis-server is built with TLS), same
# certificates (a throwaway CA and server certificate, no client certificates), identical
# `redis-benchmark --tls` runs, servers alternating, in one run.
# Each line: requests/s, p50 (ms), the server CPU time per request (us, user+system from /proc), tally/redis.
# Usage: benchmarks/e2e/tls-vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-t TESTS] [--threads N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
requests=300000
clients=50
rounds=1
tests=set,get
threads=${TALLY_THREADS:-1}
source "$root/benchmarks/e2e/lib.sh"
redis_bench_options "$@"
/usr/bin/python3 "$root/tests/integration/tls_certs.py" "$work"
tls=(--tls-cert-file "$work/server.crt" --tls-key-file "$work/server.key" --tls-ca-cert-file "$work/ca.crt"
     --tls-auth-clients no)
redis_port=$(free_port)
redis_tls=$(free_port)
tally_port=$(free_port)
tally_tls=$(free_port)
start_bg redis redis-server --port "$redis_port" --tls-port "$redis_tls" "${tls[@]}" --bind 127.0.0.1 --save "" \
  --appendonly no --dir "$work"
redis_pid=$last_pid
start_bg tally "$tallyd" --port "$tally_port" --tls-port "$tally_tls" "${tls[@]}" --memcached-port 0 --admin-port 0 \
  --threads "$threads"
tally_pid=$last_pid
wait_resp "$redis_port"
wait_resp "$tally_port"

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (TLS), tallyd threads=$threads, $(nproc) cores"
echo "redis-benchmark --tls -t $tests -c $clients -n $requests -P {1,16}, rounds=$rounds, servers alternate"
results=$work/results.csv
IFS=, read -ra test_list <<<"$tests"
for pipe in 1 16; do
  for round in $(seq "$rounds"); do
    for test in "${test_list[@]}"; do
      for target in redis tally; do
        port=$redis_tls pid=$redis_pid
        [[ $target == tally ]] && port=$tally_tls pid=$tally_pid
        c0=$(cpu_ticks "$pid")
        out=$(redis-benchmark --tls --cacert "$work/ca.crt" -p "$port" -t "$test" -c "$clients" -n "$requests" \
          -P "$pipe" --csv 2>/dev/null | tail -1)
        c1=$(cpu_ticks "$pid")
        read -r rps p50 < <(tr -d '"' <<<"$out" | awk -F, '{print $2, $5}')
        us=$(awk -v t=$((c1 - c0)) -v hz="$tck" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        echo "$pipe,$target,$round,$test,$rps,$p50,$us" >>"$results"
      done
    done
  done
done

ratio_table "$results"
