#!/usr/bin/env bash
# Memory per key, tallyd against redis-server: N keys of 16-byte names and 32-byte values, loaded the
# same way into both; prints INFO used_memory and the process RSS growth per key.
# Usage: benchmarks/e2e/memory-per-key.sh [-n KEYS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
keys=1000000
[[ ${1:-} == -n ]] && keys=$2
source "$root/benchmarks/e2e/lib.sh"
redis_port=$(free_port)
tally_port=$(free_port)
start_bg redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work"
redis_pid=$last_pid
start_bg tally "$tallyd" --port "$tally_port" --memcached-port 0 --admin-port 0 --threads 1
tally_pid=$last_pid
wait_resp "$redis_port"
wait_resp "$tally_port"
# key:%012d is 16 bytes; the value is 32 bytes.
/usr/bin/python3 - "$keys" >"$work/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 32
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\n" + k + b"\r\n$32\r\n" + val + b"\r\n")
PY
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "keys=$keys name=16 B value=32 B"
printf "%-8s %14s %14s %16s %16s\n" server used_memory bytes/key rss_growth_MiB rss_bytes/key
for target in redis tally; do
  port=$redis_port pid=$redis_pid
  [[ $target == tally ]] && port=$tally_port pid=$tally_pid
  before=$(rss_kb "$pid")
  redis-cli -p "$port" --pipe <"$work/load.resp" >/dev/null
  after=$(rss_kb "$pid")
  used=$(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
  dbsize=$(redis-cli -p "$port" dbsize)
  [[ $dbsize -eq $keys ]] || { echo "$target holds $dbsize keys, expected $keys" >&2; exit 1; }
  printf "%-8s %14d %14.1f %16.1f %16.1f\n" "$target" "$used" "$(echo "$used / $keys" | bc -l)" \
    "$(echo "($after - $before) / 1024" | bc -l)" "$(echo "($after - $before) * 1024 / $keys" | bc -l)"
done
