#!/usr/bin/env bash
# One run on a lent GPU machine, inside one 600 s command, from the bundle `make gpu-bundle` built at
# the commit being measured: nothing is built or installed there. Steps, each bounded and all under
# one overall deadline: probe (nvidia-smi, driver and runtime) -> GPU tests -> device-resident
# benchmark -> calibration -> a reduced sweep -> tallyd's digest check -> the many-core comparison
# with redis-server and memcached. $OUT gets summary.txt (each step's status, time and headline
# figures), run.log and results.tar.gz (every step's output), rewritten after each step, so a step
# that crashes or is killed keeps what the earlier ones wrote. Plots are made afterwards, here:
# `tally-bench plot --csv offload-gpu.csv`.
#
# usage: BUNDLE=gpu-bundle benchmarks/gpu/run.sh [--dry-run]
#   --dry-run: on a machine without a GPU (CI): small sizes, GPU steps end as "no-device" instead of
#   failing (TALLY_REQUIRE_GPU is not set). Without it TALLY_REQUIRE_GPU=1: no GPU is a failure.
#   DEADLINE_S (default 480) bounds the whole run; OUT defaults to ./gpu-results.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dry=0
if [[ ${1:-} == --dry-run ]]; then
  dry=1
elif [[ $# -gt 0 ]]; then
  echo "usage: BUNDLE=DIR $0 [--dry-run]" >&2
  exit 2
fi
bundle=${BUNDLE:-gpu-bundle}
[[ -x $bundle/bin/tallyd ]] || { echo "run.sh: no bundle at '$bundle' (make gpu-bundle)" >&2; exit 2; }
bundle=$(cd "$bundle" && pwd)
B=$bundle/bin
out=${OUT:-$root/gpu-results}
mkdir -p "$out"
out=$(cd "$out" && pwd)
deadline_s=${DEADLINE_S:-480}
if ((dry)); then
  unset TALLY_REQUIRE_GPU
else
  export TALLY_REQUIRE_GPU=1
fi
work=$(mktemp -d /tmp/tally-gpu-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
summary=$out/summary.txt
exec > >(tee "$out/run.log") 2>&1

{
  echo "tally GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) cores, deadline ${deadline_s}s$( ((dry)) && echo ', dry run')"
  head -3 "$bundle/MANIFEST"
  printf '%-10s %-10s %4s %7s %9s  %s\n' step status rc seconds bytes headline
} >"$summary"
cp "$bundle/MANIFEST" "$work/MANIFEST"

# Packs every step's output into results.tar.gz (through a temporary name, so the tarball is always
# whole): at most three files ever sit in $OUT, well under the device tool's eight.
pack() {
  tar czf "$out/results.tar.gz.tmp" -C "$work" . && mv -f "$out/results.tar.gz.tmp" "$out/results.tar.gz"
}

# step NAME BUDGET_S HEADLINE_FN CMD...: runs CMD with output in $work/NAME.log (and on the console),
# bounded by BUDGET_S and by what is left of the deadline; CMD may write more under $work/NAME/.
# Status: ok, no-device (exit 77: no usable GPU and none required), timeout, fail, or skipped.
step() {
  local name=$1 budget=$2 headline_fn=$3
  shift 3
  local left=$((deadline_s - ($(date +%s) - start)))
  mkdir -p "$work/$name"
  if ((left < 10)); then
    printf '%-10s %-10s %4s %7s %9s  %s\n' "$name" skipped - 0 0 "deadline reached" >>"$summary"
    return
  fi
  ((budget > left)) && budget=$left
  echo "== $name (at most ${budget}s)"
  local t0 t1 rc status bytes
  t0=$(date +%s.%N)
  # stdbuf: the programs' output reaches the log line by line, also when the step is killed.
  timeout -k 5 "$budget" stdbuf -oL -eL "$@" 2>&1 | tee "$work/$name.log"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  case $rc in
    0) status=ok ;;
    77) status=no-device ;;
    124 | 137) status=timeout ;;
    *) status=fail ;;
  esac
  bytes=$(find "$work/$name.log" "$work/$name" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  printf '%-10s %-10s %4s %7.1f %9s  %s\n' "$name" "$status" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$bytes" \
    "$("$headline_fn" "$work/$name.log" "$work/$name" | tr '\n' ';' | cut -c1-400)" >>"$summary"
  pack
}

# Headline figures of each step, from its log (one line each; the summary joins them with ';').
headline_probe() { grep -E '^(device[0-9]|devices,|cuda_|nvidia-smi:|name,)' "$1" | head -6; grep -A1 '^name,' "$1" | tail -1; }
headline_tests() { grep -E '^(\[  PASSED  \]|\[  FAILED  \] [0-9]|\[  SKIPPED \] [0-9]|== )' "$1"; }
headline_resident() { grep -E '^(device,|copy_d2d|checksum,|resolve|merkle|gpu-resident-bench:)' "$1"; }
headline_calibrate() { grep -E '^(checksum|partition|resolve|tally|merkle)\.cuda|^absent|^wrote|^tally-bench' "$1"; }
headline_sweep() {
  local csv=$2/offload-gpu.csv
  [[ -f $csv ]] && echo "$(($(wc -l <"$csv") - 1)) points, $(grep -c ',cuda,' "$csv") on cuda"
  grep -E '^(absent|tally-bench)' "$1"
}
headline_digest() { grep -E '^(== .*(DIGEST|exited|did not)|digests agree|cuda batches|no device|FAIL)' "$1"; }
headline_manycore() { grep -E '^(manycore:|result .* P(1|16):)' "$1" | sed 's/ us CPU\/request/us/'; }

probe() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm \
      --format=csv
    nvidia-smi
  else
    echo "nvidia-smi: not on this machine"
  fi
  "$B/gpu-resident-bench" --probe
}

gpu_tests() {
  local rc_offload rc_discovery
  echo "== cuda_discovery_test"
  "$B/cuda_discovery_test" --gtest_output=xml:"$work/tests/cuda_discovery_test.xml"
  rc_discovery=$?
  echo "== gpu_offload_test"
  "$B/gpu_offload_test" --gtest_output=xml:"$work/tests/gpu_offload_test.xml"
  rc_offload=$?
  ((rc_discovery == 0)) || return 1
  return $rc_offload
}

# timeout runs programs, not shell functions: the two steps that are functions run in a child bash.
export B work
export -f probe gpu_tests

if ((dry)); then
  sweep_args=(--max-items 4096 --item-bytes 64,4096 --seconds-per-point 0.002)
  digest_keys=20000
else
  sweep_args=(--max-items 1048576 --item-bytes 64,4096 --seconds-per-point 0.01)
  digest_keys=1000000
fi
calibration=$work/calibrate/calibration.toml

# Budgets add up to the deadline: 20 + 75 + 60 + 45 + 110 + 75 + 90 = 475 s.
step probe 20 headline_probe bash -c probe
step tests 75 headline_tests bash -c gpu_tests
step resident 60 headline_resident "$B/gpu-resident-bench"
step calibrate 45 headline_calibrate "$B/tally-bench" calibrate --backends cpu,cuda --out "$calibration"
step sweep 110 headline_sweep "$B/tally-bench" offload --backends cpu,cuda,isal,auto "${sweep_args[@]}" \
  --calibration "$calibration" --csv "$work/sweep/offload-gpu.csv" --no-plots
step digest 75 headline_digest python3 -u benchmarks/gpu/digest_check.py "$B/tallyd" "$calibration" "$digest_keys" 4
step manycore 90 headline_manycore benchmarks/gpu/manycore.sh "$B" "$work/manycore/manycore.csv" \
  $( ((dry)) && echo --quick)

echo "total $(($(date +%s) - start)) s" | tee -a "$summary"
cp "$summary" "$work/summary.txt"
pack
echo "== summary"
cat "$summary"
# The run's own exit code: 0 only when no step failed, timed out or was skipped.
! grep -qE '^[a-z]+ +(fail|timeout|skipped) ' "$summary"
