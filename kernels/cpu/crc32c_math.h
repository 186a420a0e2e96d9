// CRC32C arithmetic for backends that cannot call ISA-L (CUDA, tests of the split algorithm): a
// byte table, GF(2) multiplication modulo the Castagnoli polynomial, and shifting a CRC by n bytes.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

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

// Slicing-by-4 tables: tables[t][i] is the CRC of byte i followed by t zero bytes.
constexpr std::array<std::array<uint32_t, 256>, 4> make_slice_tables() {
  std::array<std::array<uint32_t, 256>, 4> t{};
  t[0] = make_table();
  for (int k = 1; k < 4; ++k) {
    for (int i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}

// Raw CRC four bytes per step, loading 16 bytes at a time once the pointer is 16-byte aligned (one
// vector load per lane on a GPU). tables[t] as make_slice_tables(); may live in shared memory.
TALLY_HD inline uint32_t raw_update_slice4(uint32_t crc, const uint8_t* p, uint64_t n, const uint32_t (*tables)[256]) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 15) != 0) {
    crc = tables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    --n;
  }
  for (; n >= 16; n -= 16, p += 16) {
    uint32_t w[4];
#if defined(__CUDA_ARCH__)
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
#else
    __builtin_memcpy(w, p, 16);
#endif
    for (int k = 0; k < 4; ++k) {
      crc ^= w[k];
      crc = tables[3][crc & 0xff] ^ tables[2][(crc >> 8) & 0xff] ^ tables[1][(crc >> 16) & 0xff] ^ tables[0][crc >> 24];
    }
  }
  while (n-- > 0) crc = tables[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
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
