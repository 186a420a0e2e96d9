#!/usr/bin/env bash
# The GPU tests' skip rule, end to end: PROBE is skip_rule_probe built with the GPU tests' main.
# Exit 77 (CTest: skipped) only when every test skipped; a failure beside a skip is a failure; and
# TALLY_REQUIRE_GPU=1 turns skips into failures.
set -uo pipefail
probe=$1
bad=0
expect() {  # expect RC ENV... : runs the probe with ENV and compares its exit code
  local want=$1
  shift
  env "$@" "$probe" >/dev/null 2>&1
  local got=$?
  if [[ $got != "$want" ]]; then
    echo "FAIL: $* -> exit $got, want $want"
    bad=1
  else
    echo "ok: $* -> exit $got"
  fi
}
expect 77 TALLY_PROBE=skip,skip TALLY_REQUIRE_GPU=0
expect 1 TALLY_PROBE=fail,skip TALLY_REQUIRE_GPU=0
expect 1 TALLY_PROBE=skip,fail TALLY_REQUIRE_GPU=0
expect 0 TALLY_PROBE=pass,skip TALLY_REQUIRE_GPU=0
expect 0 TALLY_PROBE=pass,pass TALLY_REQUIRE_GPU=0
expect 1 TALLY_PROBE=skip,skip TALLY_REQUIRE_GPU=1
expect 1 TALLY_PROBE=pass,skip TALLY_REQUIRE_GPU=1
exit $bad
