#include "host/proto/resp_parser.h"

#include <algorithm>
#include <cstring>

#include "host/common/assert.h"

namespace tally::proto {
namespace {

// The smallest encoding of one more argument, "$0\r\n\r\n": used for bytes_needed_hint's lower bound.
constexpr size_t kMinArgBytes = 6;
// Slots reserved up front for a multibulk's argument list: a huge announced count must not make the
// server allocate before the arguments themselves have arrived (Redis caps its argv the same way).
constexpr size_t kSpansReserveMax = 1024;
// string2ll accepts at most this many characters: 20 digits of a 64-bit value or sign + 19.
constexpr size_t kInt64CharsMax = 20;

constexpr const char* kErrMultibulkLen = "ERR Protocol error: invalid multibulk length";
constexpr const char* kErrBulkLen = "ERR Protocol error: invalid bulk length";
// Redis 7 reports a length that only the pre-authentication bound refuses with its own texts.
constexpr const char* kErrUnauthMultibulkLen = "ERR Protocol error: unauthenticated multibulk length";
constexpr const char* kErrUnauthBulkLen = "ERR Protocol error: unauthenticated bulk length";
constexpr const char* kErrMbulkTooBig = "ERR Protocol error: too big mbulk count string";
constexpr const char* kErrBulkTooBig = "ERR Protocol error: too big bulk count string";
constexpr const char* kErrInlineTooBig = "ERR Protocol error: too big inline request";
constexpr const char* kErrUnbalanced = "ERR Protocol error: unbalanced quotes in request";
// Redis skips the two bytes after a bulk without looking; Tally checks them so a misframed stream
// fails here instead of being read as commands.
constexpr const char* kErrBulkCrlf = "ERR Protocol error: expected CRLF after bulk data";

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  TALLY_ASSERT(is_hex_digit(c));
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// isspace() in the C locale, which is what sdssplitargs skips between arguments.
bool is_inline_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f';
}

// The characters that end an unquoted argument (sdssplitargs' set; NUL is an ordinary byte here).
bool ends_bare_arg(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

bool parse_strict_int64(std::string_view s, int64_t& value) {
  if (s.empty() || s.size() > kInt64CharsMax) return false;
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) i = 1;
  if (i == s.size()) return false;
  if (s[i] == '0') {
    // Only "0" itself may start with a zero; "-0" and "007" are not numbers to Redis.
    if (s.size() == 1) {
      value = 0;
      return true;
    }
    return false;
  }
  uint64_t magnitude = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (magnitude > limit) return false;
  value = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

SplitResult split_inline_args(std::string_view line, std::string& scratch,
                              std::vector<std::string_view>& argv, size_t max_args) {
  TALLY_ASSERT(scratch.capacity() - scratch.size() >= line.size() || line.find_first_of("\"'") ==
                                                                          std::string_view::npos);
  const size_t n = line.size();
  size_t i = 0;
  // Each pass of the outer loop consumes at least one byte, so it ends within n passes.
  while (true) {
    while (i < n && is_inline_space(line[i])) ++i;
    if (i >= n) return SplitResult::kOk;
    if (argv.size() >= max_args) return SplitResult::kTooManyArgs;
    const size_t start = i;
    while (i < n && !ends_bare_arg(line[i]) && line[i] != '"' && line[i] != '\'') ++i;
    if (i >= n || ends_bare_arg(line[i])) {
      argv.push_back(line.substr(start, i - start));
      continue;
    }
    // The argument holds quotes: it is rebuilt unescaped in scratch, after its bare prefix.
    const size_t out_start = scratch.size();
    const char* const scratch_base = scratch.data();
    scratch.append(line.data() + start, i - start);
    bool done = false;
    while (!done) {
      if (i >= n) return SplitResult::kUnbalancedQuotes;
      const char c = line[i];
      if (c == '"') {
        ++i;
        while (true) {
          if (i >= n) return SplitResult::kUnbalancedQuotes;
          const char q = line[i];
          if (q == '\\' && i + 3 < n && line[i + 1] == 'x' && is_hex_digit(line[i + 2]) &&
              is_hex_digit(line[i + 3])) {
            scratch.push_back(static_cast<char>(hex_value(line[i + 2]) * 16 + hex_value(line[i + 3])));
            i += 4;
          } else if (q == '\\' && i + 1 < n) {
            const char e = line[i + 1];
            char decoded = e;
            if (e == 'n') decoded = '\n';
            if (e == 'r') decoded = '\r';
            if (e == 't') decoded = '\t';
            if (e == 'b') decoded = '\b';
            if (e == 'a') decoded = '\a';
            scratch.push_back(decoded);
            i += 2;
          } else if (q == '"') {
            ++i;
            // A closing quote must be followed by a space or the end of the line.
            if (i < n && !is_inline_space(line[i])) return SplitResult::kUnbalancedQuotes;
            done = true;
            break;
          } else {
            scratch.push_back(q);
            ++i;
          }
        }
      } else if (c == '\'') {
        ++i;
        while (true) {
          if (i >= n) return SplitResult::kUnbalancedQuotes;
          const char q = line[i];
          if (q == '\\' && i + 1 < n && line[i + 1] == '\'') {
            scratch.push_back('\'');
            i += 2;
          } else if (q == '\'') {
            ++i;
            if (i < n && !is_inline_space(line[i])) return SplitResult::kUnbalancedQuotes;
            done = true;
            break;
          } else {
            scratch.push_back(q);
            ++i;
          }
        }
      } else if (ends_bare_arg(c)) {
        done = true;
      } else {
        scratch.push_back(c);
        ++i;
      }
    }
    // The reserve made by the caller guarantees no reallocation moved earlier views.
    TALLY_ASSERT(scratch.data() == scratch_base);
    argv.emplace_back(scratch.data() + out_start, scratch.size() - out_start);
  }
}

RespParser::RespParser(RespLimits limits) : limits_(limits) {
  TALLY_ASSERT(limits_.max_inline_bytes > 0 && limits_.max_multibulk > 0);
  TALLY_ASSERT(limits_.unauth_max_multibulk <= limits_.max_multibulk &&
               limits_.unauth_max_bulk_bytes <= limits_.max_bulk_bytes);
}

void RespParser::reset() {
  mode_ = Mode::kStart;
  pos_ = 0;
  scan_from_ = 0;
  skipped_ = 0;
  args_left_ = 0;
  bulk_bytes_ = -1;
  spans_.clear();
}

size_t RespParser::max_multibulk() const {
  return authenticated_ ? limits_.max_multibulk : limits_.unauth_max_multibulk;
}

size_t RespParser::max_bulk_bytes() const {
  return authenticated_ ? limits_.max_bulk_bytes : limits_.unauth_max_bulk_bytes;
}

ParseStatus RespParser::fail(const char* text) {
  error_.assign(text);
  mode_ = Mode::kDone;
  consumed_ = 0;
  return ParseStatus::kError;
}

ParseStatus RespParser::fail_expected_dollar(char got) {
  error_.assign("ERR Protocol error: expected '$', got '");
  error_.push_back(got);
  error_.push_back('\'');
  mode_ = Mode::kDone;
  consumed_ = 0;
  return ParseStatus::kError;
}

ParseStatus RespParser::parse(std::string_view buf, Command& out) {
  if (mode_ == Mode::kDone) reset();
  TALLY_ASSERT(pos_ <= buf.size());
  consumed_ = 0;
  needed_hint_ = 0;
  skipped_ = 0;
  // Each pass either returns or skips one empty command of at least one byte.
  for (size_t passes = 0; passes <= buf.size(); ++passes) {
    ParseStatus st;
    if (mode_ == Mode::kStart) {
      if (pos_ >= buf.size()) {
        st = ParseStatus::kIncomplete;
        needed_hint_ = buf.size() + 1;
      } else if (buf[pos_] == '*') {
        mode_ = Mode::kCount;
        st = parse_multibulk(buf, out);
      } else {
        mode_ = Mode::kInline;
        st = parse_inline(buf, out);
      }
    } else if (mode_ == Mode::kInline) {
      st = parse_inline(buf, out);
    } else {
      st = parse_multibulk(buf, out);
    }
    if (st == ParseStatus::kOk && mode_ == Mode::kStart) {
      skipped_ = pos_;  // an empty command was skipped: everything so far may be dropped
      continue;
    }
    if (st == ParseStatus::kIncomplete && skipped_ > 0) {
      // Hand the skipped prefix back; offsets of the partial command would shift when it is dropped.
      const size_t skipped = skipped_;
      reset();
      consumed_ = skipped;
      needed_hint_ = needed_hint_ > skipped ? needed_hint_ - skipped : 1;
    }
    return st;
  }
  TALLY_UNREACHABLE();
}

RespParser::LineResult RespParser::find_line_end(std::string_view buf, const char* too_big_error,
                                                 const char* bad_error, size_t& end) {
  TALLY_ASSERT(pos_ < buf.size());
  const size_t from = std::max(scan_from_, pos_);
  const void* cr = from < buf.size() ? std::memchr(buf.data() + from, '\r', buf.size() - from) : nullptr;
  if (cr == nullptr) {
    scan_from_ = buf.size();
    if (buf.size() - pos_ > limits_.max_inline_bytes) {
      fail(too_big_error);
      return LineResult::kError;
    }
    needed_hint_ = buf.size() + 1;
    return LineResult::kIncomplete;
  }
  end = static_cast<size_t>(static_cast<const char*>(cr) - buf.data());
  scan_from_ = end;
  // The same bound applies whether or not the terminator arrived with the line, so the outcome does
  // not depend on how the input was split into reads.
  if (end - pos_ > limits_.max_inline_bytes) {
    fail(too_big_error);
    return LineResult::kError;
  }
  if (end + 1 >= buf.size()) {
    needed_hint_ = end + 2;
    return LineResult::kIncomplete;
  }
  if (buf[end + 1] != '\n') {
    fail(bad_error);
    return LineResult::kError;
  }
  return LineResult::kFound;
}

bool RespParser::short_line_end(std::string_view buf, size_t& end) const {
  // Header lines are nearly always a few digits: reading them directly beats a memchr call. Whatever
  // this accepts, find_line_end would accept the same way (no '\r' before `end`, within the bound).
  const size_t limit = std::min(buf.size(), pos_ + 1 + kInt64CharsMax);
  size_t i = pos_ + 1;
  if (i < limit && buf[i] == '-') ++i;
  while (i < limit && buf[i] >= '0' && buf[i] <= '9') ++i;
  if (i + 1 >= buf.size() || buf[i] != '\r' || buf[i + 1] != '\n') return false;
  if (i - pos_ > limits_.max_inline_bytes) return false;
  end = i;
  return true;
}

ParseStatus RespParser::parse_multibulk(std::string_view buf, Command& out) {
  // Each pass reads one header line or one bulk; a command has at most max_multibulk() bulks.
  while (true) {
    if (mode_ == Mode::kCount) {
      size_t end = 0;
      if (!short_line_end(buf, end)) {
        const LineResult lr = find_line_end(buf, kErrMbulkTooBig, kErrMultibulkLen, end);
        if (lr == LineResult::kError) return ParseStatus::kError;
        if (lr == LineResult::kIncomplete) return ParseStatus::kIncomplete;
      }
      int64_t count = 0;
      if (!parse_strict_int64(buf.substr(pos_ + 1, end - pos_ - 1), count) ||
          count > static_cast<int64_t>(limits_.max_multibulk)) {
        return fail(kErrMultibulkLen);
      }
      if (count > static_cast<int64_t>(max_multibulk())) return fail(kErrUnauthMultibulkLen);
      pos_ = end + 2;
      scan_from_ = pos_;
      if (count <= 0) {
        mode_ = Mode::kStart;  // *0 and *-1 carry no command
        return ParseStatus::kOk;
      }
      args_left_ = static_cast<size_t>(count);
      spans_.clear();
      spans_.reserve(std::min(args_left_, kSpansReserveMax));
      mode_ = Mode::kBulkHeader;
    } else if (mode_ == Mode::kBulkHeader) {
      TALLY_ASSERT(args_left_ > 0);
      if (pos_ >= buf.size()) {
        needed_hint_ = pos_ + kMinArgBytes * args_left_;
        return ParseStatus::kIncomplete;
      }
      if (buf[pos_] != '$') return fail_expected_dollar(buf[pos_]);
      size_t end = 0;
      if (!short_line_end(buf, end)) {
        const LineResult lr = find_line_end(buf, kErrBulkTooBig, kErrBulkLen, end);
        if (lr == LineResult::kError) return ParseStatus::kError;
        if (lr == LineResult::kIncomplete) {
          needed_hint_ = std::max(needed_hint_, pos_ + kMinArgBytes * args_left_);
          return ParseStatus::kIncomplete;
        }
      }
      int64_t len = 0;
      if (!parse_strict_int64(buf.substr(pos_ + 1, end - pos_ - 1), len) || len < 0 ||
          static_cast<uint64_t>(len) > limits_.max_bulk_bytes) {
        return fail(kErrBulkLen);
      }
      if (static_cast<uint64_t>(len) > max_bulk_bytes()) return fail(kErrUnauthBulkLen);
      pos_ = end + 2;
      bulk_bytes_ = len;
      mode_ = Mode::kBulkData;
    } else {
      TALLY_ASSERT(mode_ == Mode::kBulkData && bulk_bytes_ >= 0);
      const size_t len = static_cast<size_t>(bulk_bytes_);
      const size_t need = pos_ + len + 2;
      if (buf.size() < need) {
        needed_hint_ = need + kMinArgBytes * (args_left_ - 1);
        return ParseStatus::kIncomplete;
      }
      if (buf[pos_ + len] != '\r' || buf[pos_ + len + 1] != '\n') return fail(kErrBulkCrlf);
      spans_.push_back({pos_, len});
      pos_ = need;
      scan_from_ = pos_;
      bulk_bytes_ = -1;
      --args_left_;
      if (args_left_ > 0) {
        mode_ = Mode::kBulkHeader;
        continue;
      }
      out.argv.resize(spans_.size());
      for (size_t i = 0; i < spans_.size(); ++i) {
        out.argv[i] = buf.substr(spans_[i].offset, spans_[i].length);
      }
      out.inline_form = false;
      consumed_ = pos_;
      mode_ = Mode::kDone;
      return ParseStatus::kOk;
    }
  }
}

ParseStatus RespParser::parse_inline(std::string_view buf, Command& out) {
  TALLY_ASSERT(mode_ == Mode::kInline && pos_ < buf.size());
  const size_t from = std::max(scan_from_, pos_);
  const void* nl = from < buf.size() ? std::memchr(buf.data() + from, '\n', buf.size() - from) : nullptr;
  if (nl == nullptr) {
    scan_from_ = buf.size();
    // One more byte than the bound is allowed while waiting: it may be the '\r' of the terminator.
    if (buf.size() - pos_ > limits_.max_inline_bytes + 1) return fail(kErrInlineTooBig);
    needed_hint_ = buf.size() + 1;
    return ParseStatus::kIncomplete;
  }
  const size_t end = static_cast<size_t>(static_cast<const char*>(nl) - buf.data());
  size_t content_end = end;
  if (content_end > pos_ && buf[content_end - 1] == '\r') --content_end;
  if (content_end - pos_ > limits_.max_inline_bytes) return fail(kErrInlineTooBig);
  const std::string_view line = buf.substr(pos_, content_end - pos_);
  pos_ = end + 1;
  scan_from_ = pos_;
  if (line.find_first_of("\"'") != std::string_view::npos) {
    scratch_.clear();
    scratch_.reserve(line.size());
  }
  out.argv.clear();
  const size_t max_args = max_multibulk();
  const SplitResult sr = split_inline_args(line, scratch_, out.argv, max_args);
  if (sr == SplitResult::kUnbalancedQuotes) return fail(kErrUnbalanced);
  // Inline requests obey the same argument bound as multibulk ones, with the same error texts.
  if (sr == SplitResult::kTooManyArgs) return fail(authenticated_ ? kErrMultibulkLen : kErrUnauthMultibulkLen);
  if (out.argv.empty()) {
    mode_ = Mode::kStart;  // blank line: nothing to run
    return ParseStatus::kOk;
  }
  TALLY_ASSERT(out.argv.size() <= max_args);
  out.inline_form = true;
  consumed_ = pos_;
  mode_ = Mode::kDone;
  return ParseStatus::kOk;
}

}  // namespace tally::proto
