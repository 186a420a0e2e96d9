#!/usr/bin/env bash
# Failover time of a 3-member tallyd cluster on loopback, and whether acknowledged writes survive it.
# Starts the cluster (scripts/local-cluster.sh), then runs TRIALS trials of benchmarks/e2e/failover.py:
# a writer on plain connections (following MOVED, retrying errors) writes one partition's keys and
# records every acknowledged write; the partition's leader is killed with SIGKILL; the time from the
# kill to the first write acknowledged by another node is the failover time; the killed node is
# started again and rejoins before the next trial. Prints each trial, p50/p99/max, and at the end
# reads every acknowledged key back through the leaders: the count read back and any missing.
# Usage: benchmarks/e2e/failover.sh [-t TRIALS] [--base 7101] [--dir PARENT] [--keep] [-- EXTRA tallyd ARGS]
#   --keep leaves the cluster's folder (data and node logs) for reading; the servers are stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export TALLYD=${TALLYD:-$root/build/host/server/tallyd}
export TALLYCTL=${TALLYCTL:-$root/build/host/server/tallyctl}
cluster=${LOCAL_CLUSTER:-$root/scripts/local-cluster.sh}
trials=20
base=7101
parent=${TMPDIR:-/tmp}
keep=0
extra=()
while (($#)); do
  case $1 in
    -t) trials=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --dir) parent=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -x $TALLYD ]] || { echo "no tallyd at $TALLYD (make build)" >&2; exit 2; }
[[ -x $cluster ]] || { echo "no cluster script at $cluster" >&2; exit 2; }
data=$(mktemp -d "$parent/tally-failover-XXXXXX")
finish() {
  "$cluster" stop --dir "$data" >/dev/null 2>&1 || true
  if ((keep)); then echo "cluster folder kept: $data"; else rm -rf "$data"; fi
}
trap finish EXIT
echo "tallyd 3 members (--threads 1, --durability fsync) on loopback, $(nproc) cores, data on $(df --output=source "$data" | tail -1)"
"$cluster" start -n 3 --base "$base" --dir "$data" ${extra[@]+-- "${extra[@]}"} >/dev/null
rc=0
/usr/bin/python3 "$root/benchmarks/e2e/failover.py" --dir "$data" --base "$base" -t "$trials" || rc=$?
echo "reproduce: TALLYD=$TALLYD TALLYCTL=$TALLYCTL benchmarks/e2e/failover.sh -t $trials"
exit $rc
