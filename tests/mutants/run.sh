#!/usr/bin/env bash
# Mutation tests: builds tally-sim (or raft_core_test) once per protocol mutant of
# tests/mutants/catalogue.txt, each with that one TALLY_MUTANT switch compiled in, runs it, and
# prints a table: mutant, caught or not, seeds until caught. Exits non-zero if any is missed.
#   tests/mutants/run.sh [--build DIR] [--jobs N] [--only NAME] [--start SEED]
# One build folder is reconfigured per mutant; only tally_raft recompiles (ccache keeps every
# variant, so a second run builds almost nothing). CUDA and the FPGA models are off.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build-mutants"
jobs="$(nproc)"
only=""
start=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --start) start="$2"; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--jobs N] [--only NAME] [--start SEED]" >&2; exit 2 ;;
  esac
done
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"

configure() {  # $1: mutant name, or empty for none
  cmake -S "$root" -B "$build" -G Ninja -DTALLY_CUDA=OFF -DTALLY_FPGA_SIM=OFF -DTALLY_TESTS=ON \
    -DTALLY_MUTANT="$1" > "$build/mutants.log" 2>&1 || { cat "$build/mutants.log"; exit 1; }
}
compile() {  # $@: targets
  cmake --build "$build" -j "$jobs" --target "$@" >> "$build/mutants.log" 2>&1 || { tail -50 "$build/mutants.log"; exit 1; }
}

mkdir -p "$build"
rows=()
missed=0
t_all=$(date +%s)
while read -r name kind bound desc; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ -n "$only" && "$name" != "$only" ]] && continue
  t0=$(date +%s)
  case "$kind" in
    sim | bug)
      if [[ "$kind" == sim ]]; then configure "$name"; else configure ""; fi
      compile tally-sim
      args=(--seeds "$bound" --start "$start" --expect-violation)
      [[ "$kind" == bug ]] && args+=(--bug "$name")
      out="$("$build/tests/sim/tally-sim" "${args[@]}" 2>/dev/null || true)"
      if seeds="$(grep -oE 'caught after [0-9]+ seeds' <<< "$out" | grep -oE '[0-9]+')"; then
        checker="$(grep -oE 'VIOLATION of [^(]+' <<< "$out" | head -1 | sed 's/VIOLATION of //; s/ *$//')"
        rows+=("$(printf '%-28s %-4s %-7s %6s / %-5s %s' "$name" "$kind" caught "$seeds" "$bound" "$checker")")
      else
        rows+=("$(printf '%-28s %-4s %-7s %6s / %-5s' "$name" "$kind" MISSED "-" "$bound")")
        missed=$((missed + 1))
      fi
      ;;
    unit)
      configure "$name"
      compile raft_core_test
      if "$build/tests/unit/raft/raft_core_test" --gtest_filter="$bound" > /dev/null 2>&1; then
        rows+=("$(printf '%-28s %-4s %-7s %6s   %-5s %s' "$name" "$kind" MISSED "-" "" "$bound passes")")
        missed=$((missed + 1))
      else
        rows+=("$(printf '%-28s %-4s %-7s %6s   %-5s %s' "$name" "$kind" caught "test" "" "$bound")")
      fi
      ;;
    *) echo "catalogue: unknown kind $kind for $name" >&2; exit 2 ;;
  esac
  echo "  $name: $(( $(date +%s) - t0 )) s" >&2
done < "$here/catalogue.txt"
configure ""  # leave the folder as a plain build

printf '%-28s %-4s %-7s %-14s %s\n' mutant kind result "seeds / bound" "caught by"
for r in "${rows[@]}"; do echo "$r"; done
echo "${#rows[@]} mutants, $missed missed, $(( $(date +%s) - t_all )) s"
[[ $missed -eq 0 ]]
