#include "host/proto/memcache_writer.h"

#include <charconv>
#include <cstring>

#include "host/common/assert.h"

namespace tally::proto {
namespace {

// Digits of a 64-bit number, with a sign.
constexpr size_t kNumberCharsMax = 21;

void append_u64(std::string& out, uint64_t v) {
  char buf[kNumberCharsMax];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  TALLY_ASSERT(ec == std::errc());
  out.append(buf, static_cast<size_t>(p - buf));
}

void value_header(std::string& out, std::string_view key, uint32_t client_flags, size_t bytes) {
  out.append("VALUE ", 6);
  out.append(key);
  out.push_back(' ');
  append_u64(out, client_flags);
  out.push_back(' ');
  append_u64(out, bytes);
}

const char* meta_code_text(McMetaCode code) {
  switch (code) {
    case McMetaCode::kHD: return "HD";
    case McMetaCode::kEN: return "EN";
    case McMetaCode::kNF: return "NF";
    case McMetaCode::kNS: return "NS";
    case McMetaCode::kEX: return "EX";
    case McMetaCode::kMN: return "MN";
  }
  TALLY_UNREACHABLE();
}

}  // namespace

void mc_status(std::string& out, McStatus status) {
  switch (status) {
    case McStatus::kStored: out.append("STORED\r\n"); return;
    case McStatus::kNotStored: out.append("NOT_STORED\r\n"); return;
    case McStatus::kExists: out.append("EXISTS\r\n"); return;
    case McStatus::kNotFound: out.append("NOT_FOUND\r\n"); return;
    case McStatus::kDeleted: out.append("DELETED\r\n"); return;
    case McStatus::kTouched: out.append("TOUCHED\r\n"); return;
    case McStatus::kOk: out.append("OK\r\n"); return;
    case McStatus::kEnd: out.append("END\r\n"); return;
  }
  TALLY_UNREACHABLE();
}

void mc_value(std::string& out, std::string_view key, uint32_t client_flags, std::string_view data) {
  TALLY_ASSERT(!key.empty());
  value_header(out, key, client_flags, data.size());
  out.append("\r\n", 2);
  out.append(data);
  out.append("\r\n", 2);
}

void mc_value_cas(std::string& out, std::string_view key, uint32_t client_flags, std::string_view data,
                  uint64_t cas_unique) {
  TALLY_ASSERT(!key.empty());
  value_header(out, key, client_flags, data.size());
  out.push_back(' ');
  append_u64(out, cas_unique);
  out.append("\r\n", 2);
  out.append(data);
  out.append("\r\n", 2);
}

void mc_end(std::string& out) { out.append("END\r\n", 5); }

void mc_number(std::string& out, uint64_t value) {
  append_u64(out, value);
  out.append("\r\n", 2);
}

void mc_error(std::string& out, std::string_view text) {
  TALLY_ASSERT(!text.empty());
  // A reply line cannot carry CR or LF: they would split it and desynchronise the client.
  for (char c : text) out.push_back((c == '\r' || c == '\n') ? ' ' : c);
  out.append("\r\n", 2);
}

void mc_stat(std::string& out, std::string_view name, std::string_view value) {
  TALLY_ASSERT(!name.empty());
  out.append("STAT ", 5);
  out.append(name);
  out.push_back(' ');
  out.append(value);
  out.append("\r\n", 2);
}

void mc_stat(std::string& out, std::string_view name, uint64_t value) {
  char buf[kNumberCharsMax];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  TALLY_ASSERT(ec == std::errc());
  mc_stat(out, name, std::string_view(buf, static_cast<size_t>(p - buf)));
}

void mc_version(std::string& out, std::string_view version) {
  out.append("VERSION ", 8);
  out.append(version);
  out.append("\r\n", 2);
}

bool McMetaFlags::add(char flag) { return add(flag, std::string_view()); }

bool McMetaFlags::add(char flag, std::string_view token) {
  TALLY_ASSERT((flag >= 'a' && flag <= 'z') || (flag >= 'A' && flag <= 'Z'));
  if (len_ + 2 + token.size() > kBytesMax || token.find_first_of(" \r\n") != std::string_view::npos) {
    ok_ = false;
    return false;
  }
  buf_[len_++] = ' ';
  buf_[len_++] = flag;
  if (!token.empty()) std::memcpy(buf_ + len_, token.data(), token.size());
  len_ += token.size();
  TALLY_ASSERT(len_ <= kBytesMax);
  return true;
}

bool McMetaFlags::add(char flag, uint64_t value) {
  char buf[kNumberCharsMax];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  TALLY_ASSERT(ec == std::errc());
  return add(flag, std::string_view(buf, static_cast<size_t>(p - buf)));
}

bool McMetaFlags::add_signed(char flag, int64_t value) {
  char buf[kNumberCharsMax];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  TALLY_ASSERT(ec == std::errc());
  return add(flag, std::string_view(buf, static_cast<size_t>(p - buf)));
}

void mc_meta_status(std::string& out, McMetaCode code, const McMetaFlags& flags) {
  out.append(meta_code_text(code), 2);
  if (code != McMetaCode::kMN) out.append(flags.str());
  out.append("\r\n", 2);
}

void mc_meta_value(std::string& out, std::string_view data, const McMetaFlags& flags) {
  out.append("VA ", 3);
  append_u64(out, data.size());
  out.append(flags.str());
  out.append("\r\n", 2);
  out.append(data);
  out.append("\r\n", 2);
}

}  // namespace tally::proto
