#include "host/server/command_codec.h"

#include <cstring>

#include "host/common/assert.h"

namespace tally::server {

namespace {

void put32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only (x86-64, aarch64)
  out.append(b, 4);
}

void put64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}

template <typename T>
bool get(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
}

}  // namespace

std::string encode_command(uint64_t request_id, uint64_t now_ms, std::span<const std::string_view> argv) {
  TALLY_ASSERT(!argv.empty() && argv.size() <= kCommandArgsMax);
  size_t bytes = 8 + 8 + 4 + 4 * argv.size();
  for (std::string_view a : argv) bytes += a.size();
  std::string out;
  out.reserve(bytes);
  put64(out, request_id);
  put64(out, now_ms);
  put32(out, static_cast<uint32_t>(argv.size()));
  for (std::string_view a : argv) {
    TALLY_ASSERT(a.size() <= UINT32_MAX);
    put32(out, static_cast<uint32_t>(a.size()));
  }
  for (std::string_view a : argv) out.append(a);
  TALLY_ASSERT(out.size() == bytes);
  return out;
}

bool decode_command(std::string_view bytes, DecodedCommand& out) {
  uint32_t argc = 0;
  if (!get(bytes, out.request_id) || !get(bytes, out.now_ms) || !get(bytes, argc)) return false;
  if (argc == 0 || argc > kCommandArgsMax || bytes.size() < uint64_t{argc} * 4) return false;
  std::string_view lens = bytes.substr(0, uint64_t{argc} * 4);
  std::string_view data = bytes.substr(uint64_t{argc} * 4);
  out.argv.clear();
  for (uint32_t i = 0; i < argc; ++i) {
    uint32_t len = 0;
    get(lens, len);
    if (len > data.size()) return false;
    out.argv.push_back(data.substr(0, len));
    data.remove_prefix(len);
  }
  return data.empty();
}

}  // namespace tally::server
