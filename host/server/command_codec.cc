#include "host/server/command_codec.h"

#include <cstring>

#include "host/common/assert.h"

namespace tally::server {

namespace {

// Little-endian hosts only (x86-64, aarch64): the layout is the memory layout.
void put32(char* at, uint32_t v) { std::memcpy(at, &v, 4); }
void put64(char* at, uint64_t v) { std::memcpy(at, &v, 8); }

template <typename T>
bool get(std::string_view& in, T& v) {
  if (in.size() < sizeof(T)) return false;
  std::memcpy(&v, in.data(), sizeof(T));
  in.remove_prefix(sizeof(T));
  return true;
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

}  // namespace

void append_command(std::string& entry, uint64_t request_id, uint64_t now_ms, std::span<const std::string_view> argv) {
  TALLY_ASSERT(!argv.empty() && argv.size() <= kCommandArgsMax);
  size_t bytes = 8 + 8 + 4 + 4 * argv.size();
  for (std::string_view a : argv) bytes += a.size();
  TALLY_ASSERT(bytes <= UINT32_MAX);
  // One resize and plain copies: this runs for every write.
  const size_t at = entry.size();
  entry.resize(at + 4 + bytes);
  char* p = entry.data() + at;
  put32(p, static_cast<uint32_t>(bytes));
  p += 4;
  put64(p, request_id);
  put64(p + 8, now_ms);
  put32(p + 16, static_cast<uint32_t>(argv.size()));
  p += 20;
  for (std::string_view a : argv) {
    put32(p, static_cast<uint32_t>(a.size()));
    p += 4;
  }
  for (std::string_view a : argv) {
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
  }
  TALLY_ASSERT(p == entry.data() + entry.size());
}

bool CommandReader::next(DecodedCommand& out) {
  if (rest_.empty() || malformed_) return false;
  uint32_t len = 0;
  if (!get(rest_, len) || len > rest_.size() || !decode_command(rest_.substr(0, len), out)) {
    malformed_ = true;
    return false;
  }
  rest_.remove_prefix(len);
  return true;
}

}  // namespace tally::server
