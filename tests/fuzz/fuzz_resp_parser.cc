// libFuzzer harness for RespParser: checks invariants, not only absence of crashes.
// Whole input vs. split feeds must agree; parsed commands must survive a re-encode round trip.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "host/proto/resp_parser.h"

namespace {

using tally::proto::Command;
using tally::proto::ParseStatus;
using tally::proto::RespLimits;
using tally::proto::RespParser;

#define FUZZ_CHECK(cond)                                                        \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "fuzz invariant failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

// Feeds `data` in chunks of `chunk_bytes`; each parse sees an exact-size heap copy, so a read past the
// end of the caller's bytes is caught by AddressSanitizer rather than hidden in string capacity.
Outcome feed(const uint8_t* data, size_t size, size_t chunk_bytes, const RespLimits& limits, bool auth) {
  RespParser p(limits);
  p.set_authenticated(auth);
  Outcome out;
  std::string pending;
  Command cmd;
  for (size_t pos = 0; pos < size; pos += chunk_bytes) {
    pending.append(reinterpret_cast<const char*>(data) + pos, std::min(chunk_bytes, size - pos));
    // Bounded: every kOk consumes at least one byte of pending.
    for (size_t guard = 0; guard <= size + 1; ++guard) {
      FUZZ_CHECK(guard < size + 1);
      std::unique_ptr<char[]> exact(new char[pending.size() + 1]);
      std::memcpy(exact.get(), pending.data(), pending.size());
      const std::string_view buf(exact.get(), pending.size());
      const ParseStatus st = p.parse(buf, cmd);
      FUZZ_CHECK(p.consumed() <= buf.size());
      if (st == ParseStatus::kError) {
        FUZZ_CHECK(p.error().rfind("ERR Protocol error: ", 0) == 0);
        out.error = p.error();
        return out;
      }
      if (st == ParseStatus::kIncomplete) {
        FUZZ_CHECK(p.bytes_needed_hint() > buf.size() - p.consumed());
        pending.erase(0, p.consumed());
        break;
      }
      FUZZ_CHECK(p.consumed() > 0 && !cmd.argv.empty());
      FUZZ_CHECK(cmd.argv.size() <= (auth ? limits.max_multibulk : limits.unauth_max_multibulk));
      std::vector<std::string> argv;
      for (auto a : cmd.argv) {
        const bool in_buf = a.data() >= buf.data() && a.data() + a.size() <= buf.data() + p.consumed();
        // Only inline arguments that held quotes may live outside the input (in the parser's scratch).
        FUZZ_CHECK(in_buf || cmd.inline_form || a.empty());
        if (!cmd.inline_form) FUZZ_CHECK(a.size() <= (auth ? limits.max_bulk_bytes : limits.unauth_max_bulk_bytes));
        argv.emplace_back(a);
      }
      out.commands.push_back(std::move(argv));
      pending.erase(0, p.consumed());
      p.reset();
    }
  }
  return out;
}

// Re-encodes a command as multibulk and checks that it parses back to the same arguments.
void check_round_trip(const std::vector<std::string>& argv) {
  std::string s = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& a : argv) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  RespParser p;
  p.set_authenticated(true);
  Command cmd;
  FUZZ_CHECK(p.parse(s, cmd) == ParseStatus::kOk);
  FUZZ_CHECK(p.consumed() == s.size());
  FUZZ_CHECK(cmd.argv.size() == argv.size());
  for (size_t i = 0; i < argv.size(); ++i) FUZZ_CHECK(cmd.argv[i] == argv[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first byte picks the limits and whether the client is authenticated; the second a chunk size.
  const uint8_t config = data[0];
  const size_t chunk = 1 + data[1] % 16;
  data += 2;
  size -= 2;
  RespLimits limits;
  if (config & 1) {
    limits.max_inline_bytes = 16;
    limits.max_bulk_bytes = 64;
    limits.max_multibulk = 8;
    limits.unauth_max_multibulk = 3;
    limits.unauth_max_bulk_bytes = 8;
  }
  const bool auth = (config & 2) != 0;
  const Outcome whole = feed(data, size, size == 0 ? 1 : size, limits, auth);
  const Outcome split = feed(data, size, chunk, limits, auth);
  const Outcome bytewise = feed(data, size, 1, limits, auth);
  FUZZ_CHECK(whole == split);
  FUZZ_CHECK(whole == bytewise);
  for (const auto& argv : whole.commands) check_round_trip(argv);
  return 0;
}
