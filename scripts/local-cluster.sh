#!/usr/bin/env bash
# A cluster of tallyd members on loopback, for trying Tally out and for benchmarks.
#   scripts/local-cluster.sh start [-n NODES] [--base PORT] [--dir PARENT] [--threads N] [-- EXTRA tallyd ARGS]
#   scripts/local-cluster.sh stop  [--dir PARENT]
# Node i (from 1) serves RESP on BASE+i-1 (default 7001..), peers on BASE+10000+i-1, keeps its data in
# PARENT/node-i (default /tmp/tally-cluster) and logs to PARENT/node-i.log. `start` forms the cluster
# with tallyctl cluster create and waits until every partition has a leader.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tallyd=${TALLYD:-$root/build/host/server/tallyd}
tallyctl=${TALLYCTL:-$root/build/host/server/tallyctl}
cmd=${1:-}
shift || true
nodes=3
base=7001
parent=/tmp/tally-cluster
threads=1
extra=()
while (($#)); do
  case $1 in
    -n) nodes=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

stop() {
  local pids=()
  for f in "$parent"/node-*.pid; do
    [[ -e $f ]] || continue
    pids+=("$(cat "$f")")
    rm -f "$f"
  done
  ((${#pids[@]})) || return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "${pids[@]}" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}

case $cmd in
  stop) stop ;;
  start)
    [[ -x $tallyd ]] || { echo "no tallyd at $tallyd (make build)" >&2; exit 2; }
    stop
    mkdir -p "$parent"
    secret=$parent/secret
    [[ -s $secret ]] || head -c 32 /dev/urandom | base64 >"$secret"
    chmod 600 "$secret"
    addrs=()
    for i in $(seq 1 "$nodes"); do
      port=$((base + i - 1))
      rm -rf "$parent/node-$i"
      "$tallyd" --port "$port" --peer-port $((port + 10000)) --memcached-port 0 --admin-port 0 \
        --cluster-enabled yes --cluster-secret-file "$secret" --dir "$parent/node-$i" --threads "$threads" \
        "${extra[@]}" >"$parent/node-$i.log" 2>&1 &
      echo $! >"$parent/node-$i.pid"
      addrs+=("127.0.0.1:$port")
    done
    for a in "${addrs[@]}"; do
      for _ in $(seq 100); do
        "$tallyctl" -p "${a#*:}" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
    done
    "$tallyctl" cluster create "${addrs[@]}"
    for _ in $(seq 100); do
      missing=0
      for a in "${addrs[@]}"; do
        n=$("$tallyctl" -p "${a#*:}" info cluster | sed -n 's/^cluster_partitions_without_leader:\([0-9]*\).*/\1/p')
        [[ ${n:-1} == 0 ]] || missing=1
      done
      ((missing == 0)) && break
      sleep 0.1
    done
    echo "cluster up: ${addrs[*]} (redis-cli -c -p $base; scripts/local-cluster.sh stop)"
    ;;
  *) echo "usage: $0 start|stop [-n NODES] [--base PORT] [--dir PARENT] [--threads N]" >&2; exit 2 ;;
esac
