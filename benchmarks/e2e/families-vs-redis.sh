#!/usr/bin/env bash
# tallyd against redis-server on list, sorted-set and stream workloads (redis-benchmark tests, ZRANGE/ZRANK
# as custom commands on a 1000-member sorted set, XADD with MAXLEN ~ 10000 and XREVRANGE COUNT 10 on a
# stream), one test at a time, servers alternating, in one run.
# Each line: requests/s, p50 (ms) and the server CPU time per request (us, user+system from /proc), and
# tally/redis.
# Usage: benchmarks/e2e/families-vs-redis.sh [-n REQUESTS] [-c CLIENTS] [-r ROUNDS] [-t TESTS] [--threads N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
requests=300000
clients=50
rounds=1
tests=lpush,rpush,lpop,rpop,zadd,lrange_100,zrange_100,zrank,xadd,xrange_10
threads=${TALLY_THREADS:-1}
source "$root/benchmarks/e2e/lib.sh"
redis_bench_options "$@"
redis_port=$(free_port)
tally_port=$(free_port)
start_bg redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work"
redis_pid=$last_pid
start_bg tally "$tallyd" --port "$tally_port" --memcached-port 0 --admin-port 0 --threads "$threads"
tally_pid=$last_pid
wait_resp "$redis_port"
wait_resp "$tally_port"

# A test redis-benchmark has (-t name), or one of ours as a custom command against a filled key.
run_test() {  # port test pipeline -> "rps p50"
  local port=$1 test=$2 pipe=$3 out
  case $test in
    zrange_100)
      out=$(redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipe" --csv zrange myzset 0 99 2>/dev/null | tail -1) ;;
    zrank)
      out=$(redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipe" --csv zrank myzset member:500 2>/dev/null | tail -1) ;;
    xadd)  # an automatic id each time, trimmed to about 10000 entries as a bounded event log is
      out=$(redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipe" --csv xadd mystream MAXLEN '~' 10000 '*' field value 2>/dev/null | tail -1) ;;
    xrange_10)
      out=$(redis-benchmark -p "$port" -c "$clients" -n "$requests" -P "$pipe" --csv xrevrange mystream + - COUNT 10 2>/dev/null | tail -1) ;;
    *)
      out=$(redis-benchmark -p "$port" -t "$test" -c "$clients" -n "$requests" -P "$pipe" --csv 2>/dev/null | tail -1) ;;
  esac
  tr -d '"' <<<"$out" | awk -F, '{print $2, $5}'
}

# The sorted set the custom tests read: 1000 members with distinct scores.
fill() {
  local port=$1
  redis-cli -p "$port" flushall >/dev/null
  for i in $(seq 0 999); do echo "ZADD myzset $i member:$i"; done | redis-cli -p "$port" >/dev/null
  # lrange_100 reads the list lpush filled; give it one of 600 elements.
  for i in $(seq 0 5); do echo "LPUSH mylist $(seq -s ' ' 1 100)"; done | redis-cli -p "$port" >/dev/null
  # xrange_10 reads the newest 10 of 1000 entries.
  for i in $(seq 0 999); do echo "XADD mystream * n $i"; done | redis-cli -p "$port" >/dev/null
}

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), tallyd threads=$threads, $(nproc) cores"
echo "redis-benchmark -c $clients -n $requests -P {1,16} per test, rounds=$rounds, servers alternate"
results=$work/results.csv
IFS=, read -ra test_list <<<"$tests"
for pipe in 1 16; do
  for round in $(seq "$rounds"); do
    for test in "${test_list[@]}"; do
      for target in redis tally; do
        port=$redis_port pid=$redis_pid
        [[ $target == tally ]] && port=$tally_port pid=$tally_pid
        fill "$port"
        c0=$(cpu_ticks "$pid")
        read -r rps p50 < <(run_test "$port" "$test" "$pipe")
        c1=$(cpu_ticks "$pid")
        us=$(awk -v t=$((c1 - c0)) -v hz="$tck" -v n="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
        echo "$pipe,$target,$round,$test,$rps,$p50,$us" >>"$results"
      done
    done
  done
done

ratio_table "$results"
