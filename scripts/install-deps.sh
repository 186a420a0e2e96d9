#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing.
#   scripts/install-deps.sh [--bench]   --bench adds what benchmarks/e2e/vs-etcd.sh compares against
set -euo pipefail
bench=0
[[ ${1:-} == --bench ]] && bench=1
pkgs=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  liburing-dev libssl-dev libtoml11-dev libspdlog-dev libfmt-dev libxxhash-dev libisal-dev libboost-dev
  verilator yosys gnuplot-nox
  redis-server redis-tools memcached libmemcached-tools python3 python3-redis python3-pymemcache
  iproute2 procps bc
)
# etcd-server's package enables an etcd service on 127.0.0.1:2379; it is stopped and disabled below,
# the benchmark starts its own members.
((bench)) && pkgs+=(etcd-server etcd-client python3-uvloop)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
if ((bench)) && command -v systemctl >/dev/null && systemctl is-enabled etcd >/dev/null 2>&1; then
  "${sudo_cmd[@]}" systemctl disable --now etcd || true
fi
