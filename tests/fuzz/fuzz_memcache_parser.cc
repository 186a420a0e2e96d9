// libFuzzer harness for McParser: checks invariants, not only absence of crashes.
// Whole input vs. split feeds must give the same requests and errors; views stay inside the input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/proto/memcache_parser.h"

namespace {

using tally::proto::McLimits;
using tally::proto::McOp;
using tally::proto::McParser;
using tally::proto::McRequest;
using tally::proto::ParseStatus;

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "fuzz invariant failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

std::string describe(const McRequest& r) {
  std::string s = std::to_string(static_cast<int>(r.op));
  for (auto k : r.keys) {
    s.push_back('|');
    s.append(k);
  }
  s += "|" + std::to_string(r.client_flags) + "|" + std::to_string(r.exptime) + "|" + std::to_string(r.value_bytes) +
       "|" + std::to_string(r.cas_unique) + "|" + std::to_string(r.delta) + "|" + std::to_string(r.noreply);
  s.append(r.value);
  for (const auto& m : r.meta_flags) {
    s.push_back(m.flag);
    s.append(m.token);
  }
  return s;
}

std::vector<std::string> feed(const uint8_t* data, size_t size, size_t chunk_bytes, const McLimits& limits) {
  McParser p(limits);
  std::vector<std::string> events;
  std::string pending;
  McRequest req;
  for (size_t pos = 0; pos < size; pos += chunk_bytes) {
    pending.append(reinterpret_cast<const char*>(data) + pos, std::min(chunk_bytes, size - pos));
    // Bounded: every kOk and kError consumes at least one byte.
    for (size_t guard = 0; guard <= size + 1; ++guard) {
      FUZZ_CHECK(guard < size + 1);
      std::unique_ptr<char[]> exact(new char[pending.size() + 1]);
      std::memcpy(exact.get(), pending.data(), pending.size());
      const std::string_view buf(exact.get(), pending.size());
      const ParseStatus st = p.parse(buf, req);
      FUZZ_CHECK(p.consumed() <= buf.size());
      if (st == ParseStatus::kIncomplete) {
        FUZZ_CHECK(p.bytes_needed_hint() > buf.size() - p.consumed());
        pending.erase(0, p.consumed());
        break;
      }
      // A closing error may consume nothing; anything else moves the stream forward.
      FUZZ_CHECK(p.consumed() > 0 || (st == ParseStatus::kError && p.error_closes()));
      if (st == ParseStatus::kError) {
        FUZZ_CHECK(!p.error().empty() && p.error().find('\n') == std::string::npos);
        events.push_back("E:" + p.error() + (p.error_closes() ? ":close" : ""));
        if (p.error_closes()) return events;
      } else {
        const std::string_view used = buf.substr(0, p.consumed());
        FUZZ_CHECK(req.op != McOp::kNone);
        // Retrievals hold up to max_keys_per_get keys; stats arguments share the line's word bound.
        const size_t words_max = std::max(limits.max_keys_per_get + 2, limits.max_meta_flags + 3);
        FUZZ_CHECK(req.keys.size() <= (req.op == McOp::kStats ? words_max - 1 : limits.max_keys_per_get));
        for (auto k : req.keys) FUZZ_CHECK(inside(k, used) && !k.empty());
        FUZZ_CHECK(inside(req.value, used) && req.value.size() == req.value_bytes);
        FUZZ_CHECK(req.value_bytes <= limits.max_value_bytes);
        FUZZ_CHECK(req.meta_flags.size() <= limits.max_meta_flags);
        for (const auto& m : req.meta_flags) FUZZ_CHECK(inside(m.token, used));
        events.push_back(describe(req));
      }
      pending.erase(0, p.consumed());
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t config = data[0];
  const size_t chunk = 1 + data[1] % 16;
  data += 2;
  size -= 2;
  McLimits limits;
  if (config & 1) {
    limits.max_key_bytes = 8;
    limits.max_value_bytes = 16;
    limits.max_keys_per_get = 3;
    limits.max_line_bytes = 64;
    limits.max_get_line_bytes = 128;
    limits.max_meta_flags = 4;
    limits.max_opaque_bytes = 4;
  }
  const auto whole = feed(data, size, size == 0 ? 1 : size, limits);
  FUZZ_CHECK(whole == feed(data, size, chunk, limits));
  FUZZ_CHECK(whole == feed(data, size, 1, limits));
  return 0;
}
