// CRC32C arithmetic for backends that cannot call ISA-L (CUDA, tests of the split algorithm): a
// byte table, GF(2) multiplication modulo the Castagnoli polynomial, and shifting a CRC by n bytes.
#pragma once

#include <array>
#include <cstdint>

#include "kernels/cpu/hd.h"

namespace tally::kernels::crc32c_math {

// Reflected Castagnoli polynomial. In the reflected form bit 31 is the coefficient of x^0.
inline constexpr uint32_t kPoly = 0x82F63B78u;

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
inline constexpr std::array<uint32_t, 256> kTable = make_table();

// A CRC register without the initial and final inversion ("raw"): linear in the message, so the raw
// CRC of A||B is raw(A) * x^(8|B|) + raw(B). `table` may live in shared memory on a device.
TALLY_HD inline uint32_t raw_update(uint32_t crc, const uint8_t* p, uint64_t n, const uint32_t* table) {
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

// a * b mod P, both in reflected form: walk a's coefficients from x^0 up, multiplying b by x each step.
TALLY_HD constexpr uint32_t multiply(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    if ((a >> (31 - i)) & 1u) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return product;
}

// x^(2^k) mod P for k = 0..63, by repeated squaring from x^1 (bit 30 in reflected form).
constexpr std::array<uint32_t, 64> make_powers() {
  std::array<uint32_t, 64> p{};
  p[0] = 0x40000000u;
  for (int k = 1; k < 64; ++k) p[k] = multiply(p[k - 1], p[k - 1]);
  return p;
}
inline constexpr std::array<uint32_t, 64> kPowers = make_powers();

// crc * x^(8 * bytes) mod P: the raw CRC of a prefix moved past `bytes` further bytes.
TALLY_HD inline uint32_t shift(uint32_t crc, uint64_t bytes, const uint32_t* powers) {
  uint64_t bits = bytes * 8;
  for (int k = 0; bits != 0 && k < 64; ++k, bits >>= 1) {
    if (bits & 1u) crc = multiply(powers[k], crc);
  }
  return crc;
}

// Standard CRC32C from the raw CRC of the whole message: the ~0 seed contributes ~0 * x^(8n).
TALLY_HD inline uint32_t finish(uint32_t raw, uint64_t bytes, const uint32_t* powers) {
  return ~(raw ^ shift(0xffffffffu, bytes, powers));
}

}  // namespace tally::kernels::crc32c_math
