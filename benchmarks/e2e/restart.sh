#!/usr/bin/env bash
# Restart time, tallyd against redis-server, with the same N keys (16-byte names, 32-byte values):
#   tallyd from snapshots (after SAVE), and from its log alone (no snapshot: every write replayed);
#   redis-server from its RDB (after SAVE), and from its AOF alone (aof-use-rdb-preamble no).
# The clock runs from the process start until DBSIZE answers N (tallyd answers commands that need the
# data only once it is loaded; redis-server answers -LOADING until then). Prints seconds and keys/s.
# Usage: benchmarks/e2e/restart.sh [-n KEYS] [--dir PARENT]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
keys=1000000
parent=${TMPDIR:-/tmp}
while (($#)); do
  case $1 in
    -n) keys=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v redis-server >/dev/null || { echo "redis-server is not installed (make deps)" >&2; exit 2; }
source "$root/benchmarks/e2e/lib.sh"
data=$(mktemp -d "$parent/tally-restart-bench-XXXXXX")
trap 'cleanup; rm -rf "$data"' EXIT

/usr/bin/python3 - "$keys" >"$data/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
val = b"v" * 32
for i in range(n):
    out.write(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$32\r\n" % i + val + b"\r\n")
PY

now_ms() { date +%s%3N; }
# Starts a server (CMD...) and prints milliseconds until DBSIZE answers $keys.
timed_start() {
  local port=$1
  shift
  local t0
  t0=$(now_ms)
  start_bg restart "$@"
  local pid=$last_pid
  while true; do
    local n
    n=$(redis-cli -p "$port" dbsize 2>/dev/null || true)
    [[ $n == "$keys" ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "server exited while loading" >&2; cat "$work/restart.log" >&2; exit 1; }
    sleep 0.02
  done
  echo $(( $(now_ms) - t0 ))
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

# Loads the keys into a fresh server (CMD...), runs `finish` (a command sent before it stops), stops it.
load() {
  local port=$1 finish=$2
  shift 2
  start_bg load "$@"
  local pid=$last_pid
  wait_resp "$port"
  redis-cli -p "$port" --pipe <"$data/load.resp" >/dev/null
  [[ -n $finish ]] && redis-cli -p "$port" $finish >/dev/null
  [[ $(redis-cli -p "$port" dbsize) == "$keys" ]] || { echo "load incomplete" >&2; exit 1; }
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

echo "keys=$keys name=16 B value=32 B, data on $(df --output=source "$data" | tail -1), $(nproc) cores"
printf "%-32s %10s %14s\n" case seconds keys/s
report() { printf "%-32s %10.2f %14.0f\n" "$1" "$(echo "$2 / 1000" | bc -l)" "$(echo "$keys * 1000 / $2" | bc -l)"; }

port=$(free_port)
t="$data/tally-snap"
load "$port" SAVE "$tallyd" --port "$port" --memcached-port 0 --admin-port 0 --threads 1 --dir "$t" --durability interval
report "tallyd, snapshots (SAVE)" "$(timed_start "$port" "$tallyd" --port "$port" --memcached-port 0 --admin-port 0 --threads 1 --dir "$t")"

port=$(free_port)
t="$data/tally-log"
load "$port" "" "$tallyd" --port "$port" --memcached-port 0 --admin-port 0 --threads 1 --dir "$t" --durability interval \
  --snapshot-log-bytes 0
report "tallyd, log only" "$(timed_start "$port" "$tallyd" --port "$port" --memcached-port 0 --admin-port 0 --threads 1 --dir "$t" --snapshot-log-bytes 0)"

port=$(free_port)
r="$data/redis-rdb"
mkdir -p "$r"
load "$port" SAVE redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$r"
report "redis-server, RDB (SAVE)" "$(timed_start "$port" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$r")"

port=$(free_port)
r="$data/redis-aof"
mkdir -p "$r"
load "$port" "" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
  --aof-use-rdb-preamble no --dir "$r"
report "redis-server, AOF only" "$(timed_start "$port" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --aof-use-rdb-preamble no --dir "$r")"
