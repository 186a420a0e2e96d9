#!/usr/bin/env bash
# CI's check of the GPU run, without a GPU: builds a bundle from this build's binaries (no second CUDA
# compile), runs run.sh --dry-run against it, and checks what the device tool would bring back: at
# most 8 files, a summary listing every step, every step ended ok or no-device and wrote something,
# the tarball holds each step's log, and the whole run stayed within its time bound.
#
# usage: benchmarks/gpu/dryrun_test.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$1
steps=(probe tests resident calibrate sweep digest manycore)
files_max=8
seconds_max=120
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

"$root/benchmarks/gpu/make-bundle.sh" "$build" "$tmp/bundle"
t0=$(date +%s)
BUNDLE=$tmp/bundle OUT=$tmp/out DEADLINE_S=$seconds_max "$root/benchmarks/gpu/run.sh" --dry-run >"$tmp/console.log" 2>&1 ||
  { cat "$tmp/console.log"; fail "run.sh --dry-run exited $?"; }
seconds=$(($(date +%s) - t0))
cat "$tmp/out/summary.txt"

files=$(find "$tmp/out" -type f | wc -l)
((files <= files_max)) || fail "$files files under OUT, the device tool brings back $files_max"
[[ -f $tmp/out/summary.txt && -f $tmp/out/results.tar.gz ]] || fail "summary.txt or results.tar.gz missing"
tar tzf "$tmp/out/results.tar.gz" >"$tmp/listing"
for s in "${steps[@]}"; do
  line=$(grep -E "^$s " "$tmp/out/summary.txt") || fail "step $s is not in summary.txt"
  read -r _ status _ _ bytes _ <<<"$line"
  [[ $status == ok || $status == no-device ]] || fail "step $s ended '$status' in a dry run"
  ((bytes > 0)) || fail "step $s wrote nothing"
  grep -qx "./$s.log" "$tmp/listing" || fail "results.tar.gz has no $s.log"
done
grep -q '^./sweep/offload-gpu.csv$' "$tmp/listing" || fail "results.tar.gz has no sweep CSV"
grep -q '^./manycore/manycore.csv$' "$tmp/listing" || fail "results.tar.gz has no many-core CSV"
((seconds <= seconds_max)) || fail "the dry run took ${seconds}s, over ${seconds_max}s"
echo "dry run ok: ${seconds}s, $files files"
