#!/usr/bin/env bash
# Installs the packages the build and tests need, only those missing.
#   scripts/install-deps.sh [--bench] [--build-only] [--dry-run] [--distro ID-VERSION]
#     --bench       adds what benchmarks/e2e/vs-etcd.sh compares against
#     --build-only  only what building tallyd and tallyctl needs (the GPU image's build stage)
#     --dry-run     prints the package names for the distribution, one per line, and installs nothing
#     --distro      debian-12 or ubuntu-24.04 (default: this machine's /etc/os-release)
# The two distributions name a few packages differently (the clang runtime follows each one's clang);
# an unknown distribution is refused rather than guessed at.
set -euo pipefail
bench=0 build_only=0 dry_run=0 distro=
while (($#)); do
  case $1 in
    --bench) bench=1; shift ;;
    --build-only) build_only=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --distro) distro=$2; shift 2 ;;
    *) echo "install-deps: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z $distro ]]; then
  # shellcheck disable=SC1091
  distro=$(. /etc/os-release && echo "${ID}-${VERSION_ID}")
fi
case $distro in
  debian-12) clang_rt=libclang-rt-14-dev ;;
  ubuntu-24.04) clang_rt=libclang-rt-18-dev ;;
  *) echo "install-deps: no package list for $distro (known: debian-12, ubuntu-24.04)" >&2; exit 2 ;;
esac

pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  liburing-dev libssl-dev libtoml11-dev libspdlog-dev libfmt-dev libxxhash-dev libisal-dev libboost-dev
)
if ((!build_only)); then
  pkgs+=(
    clang "$clang_rt"
    libgtest-dev libgmock-dev libbenchmark-dev
    verilator yosys gnuplot-nox
    redis-server redis-tools memcached libmemcached-tools python3 python3-redis python3-pymemcache
    openssl python3-cryptography
    prometheus
    iproute2 procps bc
  )
fi
# etcd-server's package enables an etcd service on 127.0.0.1:2379; it is stopped and disabled below,
# the benchmark starts its own members.
((bench)) && pkgs+=(etcd-server etcd-client python3-uvloop)
if ((dry_run)); then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi
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
# Packages that start their own service where systemd runs (the tests and benchmarks start their own,
# on loopback): etcd on 2379, prometheus on 9090.
if command -v systemctl >/dev/null; then
  for svc in etcd prometheus; do
    if systemctl is-enabled "$svc" >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now "$svc" || true; fi
  done
fi
