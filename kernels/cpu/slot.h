// Key slots as Redis Cluster computes them: CRC16/XMODEM of the key (or of its {hash tag}) mod 16384.
// Header-only so the server's router and the `partition` reference share one definition.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tally::kernels {

inline constexpr uint32_t kSlotCount = 16384;

namespace detail {
constexpr std::array<uint16_t, 256> make_crc16_table() {
  std::array<uint16_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
    t[i] = crc;
  }
  return t;
}
inline constexpr std::array<uint16_t, 256> kCrc16Table = make_crc16_table();

// Slicing by 8: kCrc16Slices[k][b] is the CRC of byte b followed by k zero bytes, so eight bytes fold
// into the 16-bit state with eight independent lookups instead of eight dependent ones.
constexpr std::array<std::array<uint16_t, 256>, 8> make_crc16_slices() {
  std::array<std::array<uint16_t, 256>, 8> t{};
  t[0] = make_crc16_table();
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      const uint16_t prev = t[k - 1][b];
      t[k][b] = static_cast<uint16_t>((prev << 8) ^ t[0][prev >> 8]);
    }
  }
  return t;
}
inline constexpr std::array<std::array<uint16_t, 256>, 8> kCrc16Slices = make_crc16_slices();
}  // namespace detail

// CRC16/XMODEM (poly 0x1021, init 0, no reflection), one byte at a time (the reference).
constexpr uint16_t crc16_xmodem_bytewise(const char* data, size_t n) {
  uint16_t crc = 0;
  for (size_t i = 0; i < n; ++i) {
    crc = static_cast<uint16_t>((crc << 8) ^
                                detail::kCrc16Table[((crc >> 8) ^ static_cast<uint8_t>(data[i])) & 0xff]);
  }
  return crc;
}

// The same CRC, eight bytes per step (every key is hashed on every command: this is a hot path).
constexpr uint16_t crc16_xmodem(const char* data, size_t n) {
  const auto& t = detail::kCrc16Slices;
  uint16_t crc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(data[i + k]); };
    crc = static_cast<uint16_t>(t[7][(crc >> 8) ^ b(0)] ^ t[6][(crc & 0xff) ^ b(1)] ^ t[5][b(2)] ^ t[4][b(3)] ^
                                t[3][b(4)] ^ t[2][b(5)] ^ t[1][b(6)] ^ t[0][b(7)]);
  }
  for (; i < n; ++i) {
    crc = static_cast<uint16_t>((crc << 8) ^ t[0][((crc >> 8) ^ static_cast<uint8_t>(data[i])) & 0xff]);
  }
  return crc;
}

// The part of the key that is hashed: the first non-empty {...} section, else the whole key.
constexpr std::string_view hash_tag(std::string_view key) {
  size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  size_t close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

constexpr uint32_t key_slot(std::string_view key) {
  std::string_view h = hash_tag(key);
  return crc16_xmodem(h.data(), h.size()) & (kSlotCount - 1);
}

}  // namespace tally::kernels
