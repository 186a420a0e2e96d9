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
}  // namespace detail

// CRC16/XMODEM (poly 0x1021, init 0, no reflection).
constexpr uint16_t crc16_xmodem(const char* data, size_t n) {
  uint16_t crc = 0;
  for (size_t i = 0; i < n; ++i) {
    crc = static_cast<uint16_t>((crc << 8) ^
                                detail::kCrc16Table[((crc >> 8) ^ static_cast<uint8_t>(data[i])) & 0xff]);
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
