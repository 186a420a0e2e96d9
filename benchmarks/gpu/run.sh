#!/usr/bin/env bash
# One run on a lent GPU machine (about 5 minutes on an H100 with 16 cores): build the CUDA backend,
# run the gpu-labelled tests, calibrate, sweep cpu/cuda/isal/auto, time tallyd's TALLY DIGEST with and
# without the cuda backend, and leave CSV, plots and logs in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-results}
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1

echo "== device"; nvidia-smi --query-gpu=name,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv || true
echo "== build"
start=$(date +%s)
cmake -S . -B "$BUILD" -G Ninja -DTALLY_CUDA=ON -DTALLY_FPGA_SIM=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target gpu_offload_test tally-bench gpu-resident-bench offload_thrust_omp_test offload_scheduler_test \
  tallyd
echo "build: $(( $(date +%s) - start )) s"

echo "== tests"
ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 240 | tee "$OUT/ctest-gpu.txt" || true
ctest --test-dir "$BUILD" -R 'offload_(thrust_omp|scheduler)_test' --output-on-failure | tee -a "$OUT/ctest-gpu.txt" || true

echo "== device-resident kernels"
timeout 120 "$BUILD/benchmarks/gpu-resident-bench" | tee "$OUT/resident.csv" || true

echo "== calibrate"
timeout 120 "$BUILD/benchmarks/tally-bench" calibrate --backends cpu,cuda --out "$OUT/calibration.toml" || true

echo "== sweep"
timeout 240 "$BUILD/benchmarks/tally-bench" offload --backends cpu,cuda,isal,auto --max-items 1048576 \
  --seconds-per-point 0.02 --calibration "$OUT/calibration.toml" --csv "$OUT/offload-gpu.csv" || true

echo "== tallyd: TALLY DIGEST of 1M keys, cpu only and cpu,cuda with this calibration"
timeout 180 python3 benchmarks/gpu/digest_check.py "$BUILD/host/server/tallyd" "$OUT/calibration.toml" 1000000 \
  | tee "$OUT/digest.txt" || true
echo "total: $(( $(date +%s) - start )) s"
