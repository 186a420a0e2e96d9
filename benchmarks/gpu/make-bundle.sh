#!/usr/bin/env bash
# Assembles the GPU run's bundle from a build folder: tallyd, tally-bench, the GPU tests and the
# resident benchmark (stripped), Debian's redis-server, redis-benchmark, memcached and memcslap (the
# many-core comparison's peers and clients), every shared library they need except glibc's and the
# driver's libcuda, and bin/ wrappers that point LD_LIBRARY_PATH into the bundle. The lent GPU
# machine reaches no package registry and its image has none of these libraries; its glibc is as
# new or newer than Debian 12's, which is all these binaries ask of it.
#
# usage: benchmarks/gpu/make-bundle.sh BUILD_DIR OUT_DIR   (`make gpu-bundle` runs it)
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BUILD_DIR OUT_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
out=$2
# The device tool carries at most 64 MiB with the working tree; the tree itself takes a few.
bundle_bytes_max=$((56 << 20))

ours=(host/server/tallyd benchmarks/tally-bench benchmarks/gpu-resident-bench tests/gpu/gpu_offload_test
      tests/gpu/cuda_discovery_test)
theirs=(redis-server redis-benchmark memcached memcslap)
for b in "${ours[@]}"; do
  [[ -x $build/$b ]] || { echo "make-bundle: $build/$b is missing (build it first)" >&2; exit 1; }
done
for t in "${theirs[@]}"; do
  command -v "$t" >/dev/null || { echo "make-bundle: $t is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$out/bin" "$out/libexec" "$out/lib"
out=$(cd "$out" && pwd)
for b in "${ours[@]}"; do
  cp "$build/$b" "$out/libexec/"
  strip --strip-unneeded "$out/libexec/$(basename "$b")"
done
for t in "${theirs[@]}"; do cp -L "$(command -v "$t")" "$out/libexec/"; done

source "$root/scripts/system-libs.sh"
for exe in "$out"/libexec/*; do
  while read -r name _ path _; do
    [[ -n ${path:-} && $path == /* ]] || continue
    is_system_lib "$name" && continue
    [[ -e $out/lib/$name ]] || cp -L "$path" "$out/lib/$name"
  done < <(ldd "$exe" | grep '=>')
done

for exe in "$out"/libexec/*; do
  name=$(basename "$exe")
  cat >"$out/bin/$name" <<'WRAP'
#!/bin/sh
# The bundle's libraries first, for this program only (not for the shell or Python that runs it).
here=$(cd "$(dirname "$0")/.." && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/libexec/$(basename "$0")" "$@"
WRAP
  chmod +x "$out/bin/$name"
done

# ldd-clean: every library resolves, and every one that is not glibc's resolves inside the bundle.
bad=0
for exe in "$out"/libexec/*; do
  while read -r line; do
    name=${line%% *}
    if [[ $line == *"not found"* ]]; then
      echo "make-bundle: $(basename "$exe"): $name not found" >&2
      bad=1
    elif [[ $line == *"=> /"* ]] && ! is_system_lib "$name" && [[ $line != *"=> $out/lib/"* ]]; then
      echo "make-bundle: $(basename "$exe"): $line resolves outside the bundle" >&2
      bad=1
    fi
  done < <(LD_LIBRARY_PATH="$out/lib" ldd "$exe")
done
((bad == 0)) || exit 1

bytes=$(du -sb "$out" | cut -f1)
{
  echo "commit $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n) from $build"
  grep -E '^(CMAKE_CUDA_ARCHITECTURES|CMAKE_BUILD_TYPE|CMAKE_CUDA_RUNTIME_LIBRARY)' "$build/CMakeCache.txt" || true
  echo "redis $("$out/bin/redis-server" --version | sed 's/.*v=\([^ ]*\).*/\1/'), $("$out/bin/memcached" -V)"
  echo "bytes $bytes"
  (cd "$out" && find libexec lib -type f -printf '%s %p\n' | sort -k2)
} >"$out/MANIFEST"
echo "make-bundle: $out, $((bytes >> 20)) MiB, $(ls "$out/libexec" | wc -l) programs, $(ls "$out/lib" | wc -l) libraries"
if ((bytes > bundle_bytes_max)); then
  echo "make-bundle: $bytes bytes is over the $bundle_bytes_max the device tool can carry with the tree" >&2
  exit 1
fi
