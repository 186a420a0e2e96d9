#!/bin/bash
# Transport ceiling of the reactor: tally_net_pong (io_uring and epoll, one reactor each) against
# redis-server with redis-benchmark PING (multibulk), without and with pipelining; best of N rounds.
# usage: host/net/bench_pong.sh [build-dir] [rounds]
set -u
BUILD=${1:-build}
ROUNDS=${2:-3}
PONG=$BUILD/host/net/tally_net_pong
[ -x "$PONG" ] || { echo "build $PONG first (cmake --build $BUILD --target tally_net_pong)"; exit 1; }
redis-server --port 7380 --save "" --appendonly no >/dev/null 2>&1 & RPID=$!
"$PONG" --port=7379 --threads=1 --io=uring >/dev/null 2>&1 & UPID=$!
"$PONG" --port=7381 --threads=1 --io=epoll >/dev/null 2>&1 & EPID=$!
trap 'kill $RPID $UPID $EPID 2>/dev/null; wait' EXIT
sleep 1
name() { case $1 in 7380) echo redis-server;; 7379) echo pong-io_uring;; 7381) echo pong-epoll;; esac; }
for P in 1 16; do
  for r in $(seq "$ROUNDS"); do
    for port in 7380 7379 7381; do  # interleaved, so load changes hit every server alike
      v=$(redis-benchmark -p $port -t ping_mbulk -n 100000 -c 50 -P $P -q 2>/dev/null | tr '\r' '\n' |
          grep -oE '[0-9.]+ requests per second' | cut -d' ' -f1)
      echo "P=$P $(name $port) ${v:-0}"
    done
  done
done | awk '{k=$1" "$2; if ($3 > best[k]) best[k] = $3} END {for (k in best) printf "%s best %.0f req/s\n", k, best[k]}' | sort
