#!/usr/bin/env bash
# Copies tallyd and tallyctl from a build folder into PREFIX/bin with every shared library they need in
# PREFIX/lib, except glibc's (which must match the loader of the machine that runs them) and the GPU
# driver's libcuda (which belongs to the host's driver). The GPU image's runtime stage copies PREFIX
# alone. Fails if a library does not resolve.
#   scripts/stage-runtime.sh BUILD_DIR PREFIX
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BUILD_DIR PREFIX" >&2; exit 2; }
build=$1 prefix=$2
mkdir -p "$prefix/bin" "$prefix/lib"
source "$(dirname "$0")/system-libs.sh"
for b in host/server/tallyd host/server/tallyctl; do
  [[ -x $build/$b ]] || { echo "stage-runtime: $build/$b is missing (build it first)" >&2; exit 1; }
  install -m 0755 "$build/$b" "$prefix/bin/"
  strip --strip-unneeded "$prefix/bin/$(basename "$b")"
  while read -r line; do
    [[ $line == *"not found"* ]] && { echo "stage-runtime: $b: $line" >&2; exit 1; }
    name=${line%% *}
    path=$(awk '{print $3}' <<<"$line")
    [[ $path == /* ]] || continue
    is_system_lib "$name" && continue
    [[ -e $prefix/lib/$name ]] || cp -L "$path" "$prefix/lib/$name"
  done < <(ldd "$build/$b" | grep '=>')
done
