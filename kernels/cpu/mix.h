// 64-bit mixing functions of the merkle op, shared bit-for-bit by the CPU reference, CUDA and RTL.
// Header-only and free of library calls so that host, device and hardware compute the same hashes.
#pragma once

#include <cstdint>

#include "kernels/cpu/hd.h"

namespace tally::kernels {

// A bijective finalizer (the splitmix64 constants): every input bit reaches every output bit.
TALLY_HD inline constexpr uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// Rotations keep (k, v) and (v, k) apart; the odd constant keeps (0, 0) from hashing to 0.
TALLY_HD inline constexpr uint64_t merkle_leaf(uint64_t key_hash, uint64_t version_hash) {
  return mix64(key_hash ^ ((version_hash << 23) | (version_hash >> 41)) ^ 0x9e3779b97f4a7c15ull);
}

TALLY_HD inline constexpr uint64_t merkle_node(uint64_t left, uint64_t right) {
  return mix64(mix64(left ^ 0x243f6a8885a308d3ull) + right);
}

}  // namespace tally::kernels
