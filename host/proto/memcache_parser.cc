#include "host/proto/memcache_parser.h"

#include <algorithm>
#include <cstring>

#include "host/common/assert.h"

namespace tally::proto {
namespace {

constexpr const char* kErrUnknown = "ERROR";
constexpr const char* kErrFormat = "CLIENT_ERROR bad command line format";
constexpr const char* kErrDataChunk = "CLIENT_ERROR bad data chunk";
constexpr const char* kErrTooLarge = "SERVER_ERROR object too large for cache";
constexpr const char* kErrLineTooLong = "CLIENT_ERROR line too long";
constexpr const char* kErrExptime = "CLIENT_ERROR invalid exptime argument";
constexpr const char* kErrDelta = "CLIENT_ERROR invalid numeric delta argument";
constexpr const char* kErrFlag = "CLIENT_ERROR invalid flag";
constexpr const char* kErrDuplicateFlag = "CLIENT_ERROR duplicate flag";
constexpr const char* kErrOpaque = "CLIENT_ERROR opaque token too long";
constexpr const char* kErrDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
// memcached reads a data length into an int and adds 2 for the CRLF.
constexpr int64_t kDataBytesMax = INT32_MAX - 2;
constexpr size_t kUint64DigitsMax = 20;

bool parse_u64(std::string_view s, uint64_t& v) {
  if (s.empty() || s.size() > kUint64DigitsMax) return false;
  uint64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  v = x;
  return true;
}

bool parse_u32(std::string_view s, uint32_t& v) {
  uint64_t x = 0;
  if (!parse_u64(s, x) || x > UINT32_MAX) return false;
  v = static_cast<uint32_t>(x);
  return true;
}

bool parse_i64(std::string_view s, int64_t& v) {
  const bool negative = !s.empty() && s[0] == '-';
  uint64_t x = 0;
  if (!parse_u64(negative ? s.substr(1) : s, x)) return false;
  if (x > (negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1)) return false;
  v = negative ? static_cast<int64_t>(0 - x) : static_cast<int64_t>(x);
  return true;
}

bool is_retrieval_line(std::string_view line) {
  return line.starts_with("get ") || line.starts_with("gets ") || line.starts_with("gat ") ||
         line.starts_with("gats ");
}

bool is_flag_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Bit of a flag letter in a 52-bit set, for spotting duplicates without allocating.
uint64_t flag_bit(char c) {
  TALLY_ASSERT(is_flag_letter(c));
  return uint64_t{1} << (c >= 'a' ? c - 'a' : 26 + (c - 'A'));
}

bool is_base64_text(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  size_t padding = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '=') {
      if (i + 2 < s.size()) return false;
      ++padding;
      continue;
    }
    if (padding > 0) return false;
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const McMetaFlag* McRequest::find_flag(char f) const {
  for (const auto& m : meta_flags) {
    if (m.flag == f) return &m;
  }
  return nullptr;
}

void McRequest::clear() {
  op = McOp::kNone;
  keys.clear();
  client_flags = 0;
  exptime = 0;
  value_bytes = 0;
  cas_unique = 0;
  delta = 0;
  verbosity = 0;
  noreply = false;
  value = {};
  meta_flags.clear();
  opaque = {};
  quiet = false;
  key_base64 = false;
}

McParser::McParser(McLimits limits) : limits_(limits) {
  TALLY_ASSERT(limits_.max_key_bytes > 0 && limits_.max_keys_per_get > 0);
  TALLY_ASSERT(limits_.max_line_bytes >= 64 && limits_.max_get_line_bytes >= limits_.max_line_bytes);
}

void McParser::reset() {
  scan_from_ = 0;
  waiting_total_ = 0;
  data_bytes_ = 0;
  swallow_after_error_ = 0;
}

McParser::LineResult McParser::line_error(const char* text, bool closes) {
  error_.assign(text);
  error_closes_ = closes;
  return LineResult::kError;
}

bool McParser::tokenize(std::string_view line) {
  // A retrieval names up to max_keys_per_get keys; a meta command has a key, a length and its flags.
  const size_t tokens_max = std::max(limits_.max_keys_per_get + 2, limits_.max_meta_flags + 3);
  tokens_.clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) break;
    const size_t start = i;
    const void* sp = std::memchr(line.data() + i, ' ', line.size() - i);
    i = sp == nullptr ? line.size() : static_cast<size_t>(static_cast<const char*>(sp) - line.data());
    if (tokens_.size() >= tokens_max) return false;
    tokens_.push_back(line.substr(start, i - start));
  }
  TALLY_ASSERT(tokens_.size() <= tokens_max);
  return true;
}

ParseStatus McParser::parse(std::string_view buf, McRequest& out) {
  consumed_ = 0;
  needed_hint_ = 0;
  error_closes_ = false;
  size_t base = 0;
  if (swallow_left_ > 0) {
    const uint64_t n = std::min<uint64_t>(buf.size(), swallow_left_);
    swallow_left_ -= n;
    base = static_cast<size_t>(n);
    if (swallow_left_ > 0) {
      consumed_ = base;
      needed_hint_ = static_cast<size_t>(std::min<uint64_t>(swallow_left_, SIZE_MAX - 1)) + 1;
      return ParseStatus::kIncomplete;
    }
    scan_from_ = 0;
  }
  TALLY_ASSERT(base <= buf.size());
  const std::string_view rest = buf.substr(base);
  if (waiting_total_ > 0 && rest.size() < waiting_total_) {
    TALLY_ASSERT(base == 0);  // no swallow can be pending while a data block is awaited
    needed_hint_ = waiting_total_;
    return ParseStatus::kIncomplete;
  }
  const size_t limit = is_retrieval_line(rest) ? limits_.max_get_line_bytes : limits_.max_line_bytes;
  const size_t from = std::min(scan_from_, rest.size());
  const void* nl = from < rest.size() ? std::memchr(rest.data() + from, '\n', rest.size() - from) : nullptr;
  if (nl == nullptr) {
    scan_from_ = rest.size();
    // One byte over the bound is allowed while waiting: it may be the '\r' before the '\n'.
    if (rest.size() > limit + 1) {
      error_.assign(kErrLineTooLong);
      error_closes_ = true;
      consumed_ = base;
      return ParseStatus::kError;
    }
    consumed_ = base;
    needed_hint_ = rest.size() + 1;
    return ParseStatus::kIncomplete;
  }
  const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - rest.data());
  const size_t content_end = (end > 0 && rest[end - 1] == '\r') ? end - 1 : end;
  if (content_end > limit) {
    error_.assign(kErrLineTooLong);
    error_closes_ = true;
    consumed_ = base;
    return ParseStatus::kError;
  }
  const size_t line_bytes = end + 1;
  out.clear();
  const LineResult lr = parse_line(rest.substr(0, content_end), out);
  if (lr == LineResult::kError) {
    consumed_ = base + line_bytes;
    if (!error_closes_) swallow_left_ = swallow_after_error_;
    reset();
    return ParseStatus::kError;
  }
  if (lr == LineResult::kRequest) {
    consumed_ = base + line_bytes;
    reset();
    return ParseStatus::kOk;
  }
  TALLY_ASSERT(data_bytes_ <= static_cast<uint64_t>(kDataBytesMax));
  const size_t total = line_bytes + static_cast<size_t>(data_bytes_) + 2;
  if (rest.size() < total) {
    scan_from_ = end;  // the line is parsed again, once, when the data block is complete
    waiting_total_ = total;
    consumed_ = base;
    needed_hint_ = total;
    return ParseStatus::kIncomplete;
  }
  consumed_ = base + total;
  const size_t data_end = line_bytes + static_cast<size_t>(data_bytes_);
  if (rest[data_end] != '\r' || rest[data_end + 1] != '\n') {
    // memcached consumes the announced bytes and reports the chunk; the stream goes on from there.
    error_.assign(kErrDataChunk);
    error_closes_ = false;
    reset();
    return ParseStatus::kError;
  }
  out.value = rest.substr(line_bytes, static_cast<size_t>(data_bytes_));
  out.value_bytes = data_bytes_;
  reset();
  return ParseStatus::kOk;
}

McParser::LineResult McParser::parse_line(std::string_view line, McRequest& out) {
  swallow_after_error_ = 0;
  data_bytes_ = 0;
  if (!tokenize(line)) {
    // Too many words: a retrieval has no data block to lose; anything else might, so close.
    return line_error(kErrFormat, !is_retrieval_line(line));
  }
  if (tokens_.empty()) return line_error(kErrUnknown, false);
  const std::string_view cmd = tokens_[0];
  const size_t n = tokens_.size();
  const bool last_is_noreply = n > 1 && tokens_[n - 1] == "noreply";

  if (cmd == "get" || cmd == "gets" || cmd == "gat" || cmd == "gats") {
    const bool touch = cmd[1] == 'a';
    const size_t first_key = touch ? 2 : 1;
    if (n <= first_key) return line_error(kErrUnknown, false);
    out.op = cmd == "get" ? McOp::kGet : cmd == "gets" ? McOp::kGets : cmd == "gat" ? McOp::kGat : McOp::kGats;
    if (touch && !parse_i64(tokens_[1], out.exptime)) return line_error(kErrExptime, false);
    if (n - first_key > limits_.max_keys_per_get) return line_error(kErrFormat, false);
    for (size_t i = first_key; i < n; ++i) {
      if (tokens_[i].size() > limits_.max_key_bytes) return line_error(kErrFormat, false);
      out.keys.push_back(tokens_[i]);
    }
    return LineResult::kRequest;
  }
  if (cmd == "set" || cmd == "add" || cmd == "replace" || cmd == "append" || cmd == "prepend" ||
      cmd == "cas") {
    return parse_storage(out);
  }
  if (cmd == "delete") {
    if (n < 2) return line_error(kErrUnknown, false);
    out.op = McOp::kDelete;
    out.noreply = n > 2 && last_is_noreply;
    const size_t extra = n - 2 - (out.noreply ? 1 : 0);
    // "delete <key> 0" is the one form of the old delete-with-time that memcached still accepts.
    if (extra > 1 || (extra == 1 && tokens_[2] != "0")) return line_error(kErrDeleteUsage, false);
    if (tokens_[1].size() > limits_.max_key_bytes) return line_error(kErrFormat, false);
    out.keys.push_back(tokens_[1]);
    return LineResult::kRequest;
  }
  if (cmd == "incr" || cmd == "decr") {
    if (n != 3 && !(n == 4 && last_is_noreply)) return line_error(kErrUnknown, false);
    out.op = cmd == "incr" ? McOp::kIncr : McOp::kDecr;
    out.noreply = last_is_noreply;
    if (tokens_[1].size() > limits_.max_key_bytes) return line_error(kErrFormat, false);
    if (!parse_u64(tokens_[2], out.delta)) return line_error(kErrDelta, false);
    out.keys.push_back(tokens_[1]);
    return LineResult::kRequest;
  }
  if (cmd == "touch") {
    if (n != 3 && !(n == 4 && last_is_noreply)) return line_error(kErrUnknown, false);
    out.op = McOp::kTouch;
    out.noreply = last_is_noreply;
    if (tokens_[1].size() > limits_.max_key_bytes) return line_error(kErrFormat, false);
    if (!parse_i64(tokens_[2], out.exptime)) return line_error(kErrExptime, false);
    out.keys.push_back(tokens_[1]);
    return LineResult::kRequest;
  }
  if (cmd == "flush_all") {
    const size_t args = n - 1 - (last_is_noreply ? 1 : 0);
    if (args > 1) return line_error(kErrUnknown, false);
    out.op = McOp::kFlushAll;
    out.noreply = last_is_noreply;
    if (args == 1 && !parse_i64(tokens_[1], out.exptime)) return line_error(kErrFormat, false);
    return LineResult::kRequest;
  }
  if (cmd == "verbosity") {
    if (n != 2 && !(n == 3 && last_is_noreply)) return line_error(kErrUnknown, false);
    out.op = McOp::kVerbosity;
    out.noreply = last_is_noreply;
    if (!parse_u32(tokens_[1], out.verbosity)) return line_error(kErrFormat, false);
    return LineResult::kRequest;
  }
  if (cmd == "stats") {
    out.op = McOp::kStats;
    for (size_t i = 1; i < n; ++i) out.keys.push_back(tokens_[i]);
    return LineResult::kRequest;
  }
  if (cmd == "version" || cmd == "quit" || cmd == "mn") {
    // memcached ignores words after these (memcached 1.6.18 answers "version 2" with VERSION).
    out.op = cmd == "version" ? McOp::kVersion : cmd == "quit" ? McOp::kQuit : McOp::kMetaNoop;
    return LineResult::kRequest;
  }
  if (cmd == "mg" || cmd == "md" || cmd == "ma") {
    out.op = cmd == "mg" ? McOp::kMetaGet : cmd == "md" ? McOp::kMetaDelete : McOp::kMetaArithmetic;
    return parse_meta(out, 2);
  }
  if (cmd == "ms") {
    out.op = McOp::kMetaSet;
    if (n < 3) return line_error(kErrFormat, false);
    int64_t bytes = 0;
    if (!parse_i64(tokens_[2], bytes) || bytes < 0 || bytes > kDataBytesMax) {
      return line_error(kErrFormat, true);  // memcached's text; it reads on, Tally closes
    }
    swallow_after_error_ = static_cast<uint64_t>(bytes) + 2;
    const LineResult lr = parse_meta(out, 3);
    if (lr != LineResult::kRequest) return lr;
    if (static_cast<uint64_t>(bytes) > limits_.max_value_bytes) return line_error(kErrTooLarge, false);
    data_bytes_ = static_cast<uint64_t>(bytes);
    return LineResult::kNeedsData;
  }
  return line_error(kErrUnknown, false);
}

McParser::LineResult McParser::parse_storage(McRequest& out) {
  const std::string_view cmd = tokens_[0];
  const bool cas = cmd == "cas";
  const size_t n = tokens_.size();
  const size_t expected = cas ? 6 : 5;
  // Too few words: memcached answers ERROR and reads on; the data block, if any, follows as lines.
  if (n < expected) return line_error(kErrUnknown, false);
  out.op = cmd == "set"       ? McOp::kSet
           : cmd == "add"     ? McOp::kAdd
           : cmd == "replace" ? McOp::kReplace
           : cmd == "append"  ? McOp::kAppend
           : cmd == "prepend" ? McOp::kPrepend
                              : McOp::kCas;
  int64_t bytes = 0;
  if (!parse_i64(tokens_[4], bytes) || bytes < 0 || bytes > kDataBytesMax) {
    return line_error(kErrFormat, true);  // the data block cannot be found: give up the stream
  }
  // From here on the data block's size is known: on an error it is swallowed, as memcached does.
  swallow_after_error_ = static_cast<uint64_t>(bytes) + 2;
  // One extra word is "noreply" or ignored, as memcached does; more is not a storage command.
  out.noreply = n == expected + 1 && tokens_[n - 1] == "noreply";
  if (n > expected + 1) return line_error(kErrUnknown, false);
  if (tokens_[1].size() > limits_.max_key_bytes) return line_error(kErrFormat, false);
  if (!parse_u32(tokens_[2], out.client_flags)) return line_error(kErrFormat, false);
  if (!parse_i64(tokens_[3], out.exptime)) return line_error(kErrFormat, false);
  if (cas && !parse_u64(tokens_[5], out.cas_unique)) return line_error(kErrFormat, false);
  if (static_cast<uint64_t>(bytes) > limits_.max_value_bytes) return line_error(kErrTooLarge, false);
  out.keys.push_back(tokens_[1]);
  out.value_bytes = static_cast<uint64_t>(bytes);
  data_bytes_ = static_cast<uint64_t>(bytes);
  TALLY_ASSERT(out.keys.size() == 1);
  return LineResult::kNeedsData;
}

McParser::LineResult McParser::parse_meta(McRequest& out, size_t first_flag) {
  TALLY_ASSERT(first_flag >= 2);
  if (tokens_.size() < 2) return line_error(kErrFormat, false);
  uint64_t seen = 0;
  for (size_t i = first_flag; i < tokens_.size(); ++i) {
    const std::string_view t = tokens_[i];
    if (out.meta_flags.size() >= limits_.max_meta_flags) return line_error(kErrFormat, false);
    if (!is_flag_letter(t[0])) return line_error(kErrFlag, false);
    const uint64_t bit = flag_bit(t[0]);
    if ((seen & bit) != 0) return line_error(kErrDuplicateFlag, false);
    seen |= bit;
    const McMetaFlag flag{t[0], t.substr(1)};
    out.meta_flags.push_back(flag);
    if (flag.flag == 'O') {
      if (flag.token.size() > limits_.max_opaque_bytes) return line_error(kErrOpaque, false);
      out.opaque = flag.token;
    }
    if (flag.flag == 'q') out.quiet = true;
    if (flag.flag == 'b') out.key_base64 = true;
  }
  const std::string_view key = tokens_[1];
  // Base64 of a max-length key takes 4 characters per 3 bytes.
  const size_t key_max = out.key_base64 ? (limits_.max_key_bytes + 2) / 3 * 4 : limits_.max_key_bytes;
  if (key.size() > key_max || (out.key_base64 && !is_base64_text(key))) {
    return line_error(kErrFormat, false);
  }
  out.keys.push_back(key);
  TALLY_ASSERT(out.meta_flags.size() <= limits_.max_meta_flags);
  return LineResult::kRequest;
}

}  // namespace tally::proto
