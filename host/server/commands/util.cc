#include "host/server/commands/util.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tally::server::cmd {

bool parse_i64(std::string_view s, int64_t& out) {
  // Same accepted forms as Redis's string2ll, so "01", "+1", " 1" and "-0" are all errors.
  if (s.empty() || s.size() > 20) return false;
  if (s.size() == 1 && s[0] == '0') {
    out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) ++i;
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    out = static_cast<int64_t>(0 - v);
  } else {
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    out = static_cast<int64_t>(v);
  }
  return true;
}

bool parse_ld(std::string_view s, long double& out) {
  if (s.empty() || s.size() >= kLongDoubleCharsMax) return false;
  char buf[kLongDoubleCharsMax];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (std::isspace(static_cast<unsigned char>(buf[0]))) return false;
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(buf, &end);
  if (end != buf + s.size()) return false;
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) return false;
  if (std::isnan(v)) return false;
  out = v;
  return true;
}

std::string_view format_i64(int64_t v, char (&buf)[24]) {
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  TALLY_ASSERT(ec == std::errc());
  return {buf, static_cast<size_t>(p - buf)};
}

size_t format_ld_human(long double v, char* buf, size_t cap) {
  TALLY_ASSERT(cap >= 8);
  if (std::isinf(v)) return static_cast<size_t>(std::snprintf(buf, cap, v > 0 ? "inf" : "-inf"));
  int n = std::snprintf(buf, cap, "%.17Lf", v);
  TALLY_ASSERT(n > 0 && static_cast<size_t>(n) < cap);
  size_t len = static_cast<size_t>(n);
  if (std::memchr(buf, '.', len) != nullptr) {
    while (buf[len - 1] == '0') --len;
    if (buf[len - 1] == '.') --len;
  }
  if (len == 2 && buf[0] == '-' && buf[1] == '0') {
    buf[0] = '0';
    len = 1;
  }
  return len;
}

std::string lower_ascii(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto c = static_cast<unsigned char>(a[i]);
    if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != static_cast<unsigned char>(b[i])) return false;
  }
  return true;
}

void wrong_arity(ExecContext& ctx, std::string_view name) {
  std::string msg = "ERR wrong number of arguments for '";
  for (char c : name) msg.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  msg += "' command";
  ctx.out.error(msg);
}

bool lookup_typed(ExecContext& ctx, std::string_view key, store::ValueType type, store::Access access,
                  store::Entry*& out) {
  out = ctx.store.lookup(key, ctx.now_ms, access);
  if (out != nullptr && out->type() != type) {
    ctx.out.error(kErrWrongType);
    return false;
  }
  return true;
}

bool parse_scan_args(ExecContext& ctx, std::span<const std::string_view> argv, size_t at, bool allow_type,
                     ScanArgs& args) {
  TALLY_ASSERT(at < argv.size());
  const std::string_view c = argv[at];
  // Redis reads the cursor with strtoull: digits only here (no sign, no spaces), 64 bits.
  uint64_t cursor = 0;
  auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), cursor);
  if (c.empty() || ec != std::errc() || p != c.data() + c.size()) {
    ctx.out.error(kErrInvalidCursor);
    return false;
  }
  args.cursor = cursor;
  for (size_t i = at + 1; i < argv.size(); i += 2) {
    const bool has_value = i + 1 < argv.size();
    if (iequals(argv[i], "count") && has_value) {
      if (!parse_i64(argv[i + 1], args.count)) {
        ctx.out.error(kErrNotInt);
        return false;
      }
      if (args.count < 1) {
        ctx.out.error(kErrSyntax);
        return false;
      }
    } else if (iequals(argv[i], "match") && has_value) {
      args.pattern = argv[i + 1];
      args.has_pattern = !(args.pattern.size() == 1 && args.pattern[0] == '*');
    } else if (allow_type && iequals(argv[i], "type") && has_value) {
      args.type = argv[i + 1];
      args.has_type = true;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  return true;
}

std::atomic<int64_t>& encoding_threshold(size_t i) {
  static std::atomic<int64_t> values[kEncodingParams] = {512, 64, 512, 128, 64, 128, 64, -2, 0, 4096, 100};
  TALLY_ASSERT(i < kEncodingParams);
  return values[i];
}

}  // namespace tally::server::cmd
