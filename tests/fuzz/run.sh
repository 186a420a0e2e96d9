#!/usr/bin/env bash
# Runs each parser fuzz harness built under BUILD_DIR/tests/fuzz for SECONDS seconds.
# Seeds come from tests/fuzz/corpus/<name>/ (read-only); new inputs go to BUILD_DIR/fuzz-corpus/<name>/.
# With a third argument "require" (the CTest smoke), a harness that was not built is a failure.
set -euo pipefail

build_dir=${1:?usage: tests/fuzz/run.sh BUILD_DIR SECONDS}
seconds=${2:-60}
require=${3:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build_dir=$(cd "$build_dir" && pwd)
fuzz_dir=$build_dir/tests/fuzz

ran=0
for entry in resp_parser:resp memcache_parser:memcache raft_wire:raft_wire; do
  name=${entry%%:*}
  seeds=$here/corpus/${entry##*:}
  bin=$fuzz_dir/fuzz_$name
  if [[ ! -x $bin ]]; then
    if [[ $require == require ]]; then
      echo "fuzz: $bin not built (cmake --build $build_dir --target fuzz_targets)" >&2
      exit 1
    fi
    echo "fuzz: $bin not built (clang++ or libFuzzer missing): skipped"
    continue
  fi
  corpus=$build_dir/fuzz-corpus/$name
  mkdir -p "$corpus"
  echo "fuzz: $name for ${seconds}s"
  # Inputs up to 4 KiB reach every parser state; the split checks make bigger inputs slow.
  "$bin" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fuzz_dir/crash-$name-" "$corpus" "$seeds"
  ran=$((ran + 1))
done
echo "fuzz: $ran harness(es) ran"
