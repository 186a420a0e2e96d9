// Shared pieces of the data-command handlers: Redis's exact error texts, its number parsing
// rules (string2ll / string2ld) and number formatting, and typed key lookups.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "host/common/rng.h"
#include "host/server/commands/command.h"

namespace tally::server::cmd {

inline constexpr std::string_view kErrWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kErrSyntax = "ERR syntax error";
inline constexpr std::string_view kErrNotInt = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kErrNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kErrNoSuchKey = "ERR no such key";
inline constexpr std::string_view kErrMaxBulk = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
inline constexpr std::string_view kErrOffset = "ERR offset is out of range";
inline constexpr std::string_view kErrNanInf = "ERR increment would produce NaN or Infinity";
inline constexpr std::string_view kErrInvalidCursor = "ERR invalid cursor";
inline constexpr std::string_view kErrMustBePositive = "ERR value is out of range, must be positive";
inline constexpr std::string_view kErrLongRange =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

// Keys of partitions' change streams (host/server/changes.h): written only by the server.
inline constexpr std::string_view kChangeStreamPrefix = "__tally:changes:";
inline bool is_change_stream_key(std::string_view key) { return key.starts_with(kChangeStreamPrefix); }

// Redis's encoding thresholds as CONFIG SET last set them, indexed like server::Encoding (hash entries,
// hash value, set intset entries, set entries, set value, zset entries, zset value, ...): OBJECT
// ENCODING answers what redis-server would hold a value as under them.
inline constexpr size_t kEncodingParams = 11;
std::atomic<int64_t>& encoding_threshold(size_t i);

// Buffer big enough for any long double Redis prints in human form (MAX_LONG_DOUBLE_CHARS).
inline constexpr size_t kLongDoubleCharsMax = 5 * 1024;
// Containers up to this size are returned whole by one SSCAN/HSCAN step (cursor 0).
inline constexpr size_t kScanWholeMax = 512;

bool parse_i64(std::string_view s, int64_t& out);        // Redis string2ll: no spaces, '+', "-0" or leading 0s
bool parse_ld(std::string_view s, long double& out);     // Redis string2ld: strtold, no spaces, not NaN
std::string_view format_i64(int64_t v, char (&buf)[24]);
size_t format_ld_human(long double v, char* buf, size_t cap);  // "%.17Lf" without trailing zeros
bool iequals(std::string_view a, std::string_view b);    // b is lower case ASCII
std::string lower_ascii(std::string_view s);             // A-Z to a-z, other bytes as they are
void wrong_arity(ExecContext& ctx, std::string_view name);

// Lookup that replies WRONGTYPE (and returns false) when the key holds another type.
bool lookup_typed(ExecContext& ctx, std::string_view key, store::ValueType type, store::Access access,
                  store::Entry*& out);

// Parses "<cursor> [MATCH p] [COUNT n] [TYPE t]" from argv[at]; replies the error and returns false.
struct ScanArgs {
  uint64_t cursor = 0;
  std::string_view pattern;  // empty = all
  bool has_pattern = false;
  int64_t count = 10;
  std::string_view type;
  bool has_type = false;
};
bool parse_scan_args(ExecContext& ctx, std::span<const std::string_view> argv, size_t at, bool allow_type,
                     ScanArgs& args);

}  // namespace tally::server::cmd

namespace tally::server::cmd {

inline constexpr int kRandomBucketAttempts = 32;

// A random element of an unordered container: a random non-empty bucket, then a random slot
// in it (Redis has the same mild bias toward short chains); a linear walk after many misses.
template <typename C>
const typename C::value_type& random_element(const C& c, Rng& rng) {
  TALLY_ASSERT(!c.empty());
  for (int attempt = 0; attempt < kRandomBucketAttempts; ++attempt) {
    const size_t b = rng.uniform(c.bucket_count());
    const size_t n = c.bucket_size(b);
    if (n == 0) continue;
    auto it = c.begin(b);
    for (size_t skip = rng.uniform(n); skip > 0; --skip) ++it;
    return *it;
  }
  auto it = c.begin();
  for (size_t skip = rng.uniform(c.size()); skip > 0; --skip) ++it;
  return *it;
}

// One SSCAN/HSCAN step over an unordered container: small ones whole (cursor 0), larger ones by
// bucket index. The cursor carries a 16-bit tag of the bucket count; when the container has
// rehashed since (the tag differs) the walk restarts at bucket 0, so elements can repeat but
// none present for the whole scan is missed. Cursors stay below 2^48.
template <typename C, typename Fn>
uint64_t scan_container(const C& c, uint64_t cursor, size_t count, Fn&& fn) {
  TALLY_ASSERT(count > 0);
  if (c.size() <= kScanWholeMax) {
    for (const auto& v : c) fn(v);
    return 0;
  }
  const size_t buckets = c.bucket_count();
  TALLY_ASSERT(buckets < (1ull << 32));
  const uint64_t tag = (static_cast<uint64_t>(buckets) * 0x9E3779B97F4A7C15ULL) >> 48;
  size_t b = (cursor >> 32) == tag ? static_cast<size_t>(cursor & 0xFFFFFFFFu) : 0;
  if (b > buckets) b = buckets;
  size_t visited = 0;
  for (; b < buckets && visited < count; ++b) {
    for (auto it = c.begin(b); it != c.end(b); ++it, ++visited) fn(*it);
  }
  return b >= buckets ? 0 : (tag << 32 | b);
}

}  // namespace tally::server::cmd
