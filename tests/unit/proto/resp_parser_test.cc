// RespParser tests: split-invariance, random round trips, limits before and after AUTH, error texts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/proto/resp_parser.h"

namespace tally::proto {
namespace {

// What the parser produced for a stream: commands in order, then possibly one fatal error.
struct Outcome {
  std::vector<std::vector<std::string>> commands;
  std::vector<bool> inline_forms;
  std::string error;  // empty when the stream ended without a protocol error
  bool operator==(const Outcome&) const = default;
};

std::string encode(const std::vector<std::string>& argv) {
  std::string s = "*";
  s.append(std::to_string(argv.size())).append("\r\n");
  for (const auto& a : argv) s.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
  return s;
}

// Feeds `stream` in chunks ending at `cuts` the way a connection does: the pending buffer only grows
// at its end between calls (and may reallocate), and bytes are dropped as the parser reports them.
Outcome feed(std::string_view stream, const std::vector<size_t>& cuts, RespLimits limits = {},
             bool authenticated = true) {
  RespParser p(limits);
  p.set_authenticated(authenticated);
  Outcome out;
  std::string pending;
  Command cmd;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t end : ends) {
    if (end < from) continue;
    pending.append(stream.substr(from, end - from));
    from = end;
    while (true) {
      const ParseStatus st = p.parse(pending, cmd);
      if (st == ParseStatus::kError) {
        out.error = p.error();
        return out;
      }
      EXPECT_LE(p.consumed(), pending.size());
      if (st == ParseStatus::kIncomplete) {
        EXPECT_GT(p.bytes_needed_hint(), pending.size() - p.consumed());
        pending.erase(0, p.consumed());
        break;
      }
      std::vector<std::string> argv;
      for (auto a : cmd.argv) argv.emplace_back(a);
      out.commands.push_back(std::move(argv));
      out.inline_forms.push_back(cmd.inline_form);
      EXPECT_GT(p.consumed(), 0u);
      pending.erase(0, p.consumed());
      p.reset();
    }
  }
  return out;
}

Outcome feed_whole(std::string_view stream, RespLimits limits = {}, bool authenticated = true) {
  return feed(stream, {}, limits, authenticated);
}

std::string error_of(std::string_view stream, bool authenticated = true, RespLimits limits = {}) {
  return feed_whole(stream, limits, authenticated).error;
}

// A pipelined stream touching every construct: binary and empty bulks, quotes, skipped commands.
std::string mixed_stream() {
  std::string s;
  s += encode({"SET", "key", std::string("v\0\r\n\x01", 5)});
  s += "PING\r\n";
  s += "\n";
  s += "*0\r\n";
  s += encode({"GET", ""});
  s += "*-1\r\n";
  s += "set \"a b\\x41\\n\" 'it\\'s'  plain\r\n";
  s += "\r\n";
  s += encode({"HELLO", "3", "AUTH", "default", "pw"});
  s += "  echo   tail\n";
  return s;
}

TEST(RespParser, ParsesMultibulkAndInline) {
  const Outcome o = feed_whole(mixed_stream());
  ASSERT_EQ(o.error, "");
  ASSERT_EQ(o.commands.size(), 6u);
  EXPECT_EQ(o.commands[0], (std::vector<std::string>{"SET", "key", std::string("v\0\r\n\x01", 5)}));
  EXPECT_EQ(o.commands[1], (std::vector<std::string>{"PING"}));
  EXPECT_EQ(o.commands[2], (std::vector<std::string>{"GET", ""}));
  EXPECT_EQ(o.commands[3], (std::vector<std::string>{"set", "a bA\n", "it's", "plain"}));
  EXPECT_EQ(o.commands[4], (std::vector<std::string>{"HELLO", "3", "AUTH", "default", "pw"}));
  EXPECT_EQ(o.commands[5], (std::vector<std::string>{"echo", "tail"}));
  EXPECT_EQ(o.inline_forms, (std::vector<bool>{false, true, false, true, false, true}));
}

TEST(RespParser, EverySplitPointGivesTheSameCommands) {
  const std::string s = mixed_stream();
  const Outcome whole = feed_whole(s);
  ASSERT_EQ(whole.commands.size(), 6u);
  for (size_t i = 0; i <= s.size(); ++i) {
    EXPECT_EQ(feed(s, {i}), whole) << "split at " << i;
  }
  for (size_t i = 0; i <= s.size(); i += 3) {
    for (size_t j = i; j <= s.size(); ++j) ASSERT_EQ(feed(s, {i, j}), whole) << i << "," << j;
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < s.size(); ++i) every_byte.push_back(i);
  EXPECT_EQ(feed(s, every_byte), whole);
}

TEST(RespParser, ViewsPointIntoTheBufferAndConsumedCoversTheCommand) {
  const std::string s = encode({"MSET", "a", "1"}) + "tail";
  RespParser p;
  p.set_authenticated(true);
  Command cmd;
  ASSERT_EQ(p.parse(s, cmd), ParseStatus::kOk);
  EXPECT_EQ(p.consumed(), s.size() - 4);
  for (auto a : cmd.argv) {
    EXPECT_GE(a.data(), s.data());
    EXPECT_LE(a.data() + a.size(), s.data() + s.size());
  }
}

TEST(RespParser, CallerMayKeepSkippedPrefixOnIncomplete) {
  RespParser p;
  Command cmd;
  std::string buf = "\r\n*0\r\n*1\r\n$4\r\nPI";
  ASSERT_EQ(p.parse(buf, cmd), ParseStatus::kIncomplete);
  EXPECT_EQ(p.consumed(), 6u);
  // This caller does not drop the prefix: the parser must still find the command.
  buf += "NG\r\n";
  ASSERT_EQ(p.parse(buf, cmd), ParseStatus::kOk);
  ASSERT_EQ(cmd.argv.size(), 1u);
  EXPECT_EQ(cmd.argv[0], "PING");
  EXPECT_EQ(p.consumed(), buf.size());
}

TEST(RespParser, RandomRoundTripsSurviveRandomSplits) {
  Rng rng(20261126);
  for (int round = 0; round < 40; ++round) {
    std::vector<std::vector<std::string>> sent;
    std::string stream;
    const size_t commands = rng.range(1, 30);
    for (size_t c = 0; c < commands; ++c) {
      std::vector<std::string> argv(rng.range(1, 8));
      for (auto& a : argv) {
        a.resize(rng.chance(1, 5) ? 0 : rng.range(1, 300));
        for (auto& ch : a) ch = static_cast<char>(rng.uniform(256));
      }
      stream += encode(argv);
      sent.push_back(std::move(argv));
    }
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos < stream.size(); pos += rng.range(1, 64)) cuts.push_back(pos);
    const Outcome o = feed(stream, cuts);
    ASSERT_EQ(o.error, "");
    ASSERT_EQ(o.commands, sent) << "round " << round;
  }
}

TEST(RespParser, GarbageGivesTheSameOutcomeHoweverSplit) {
  Rng rng(7);
  const std::string alphabet = "*$\r\n 0123456789-\"'\\xaZ";
  for (int round = 0; round < 300; ++round) {
    std::string s(rng.range(1, 60), '\0');
    for (auto& ch : s) {
      ch = rng.chance(1, 4) ? static_cast<char>(rng.uniform(256)) : alphabet[rng.uniform(alphabet.size())];
    }
    const Outcome whole = feed_whole(s, {}, round % 2 == 0);
    std::vector<size_t> every_byte;
    for (size_t i = 1; i < s.size(); ++i) every_byte.push_back(i);
    ASSERT_EQ(feed(s, every_byte, {}, round % 2 == 0), whole) << "round " << round;
  }
}

TEST(RespParser, ErrorTextsAreRedis) {
  EXPECT_EQ(error_of("*x\r\n"), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(error_of("*1\r\n$x\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(error_of("*1\r\nX3\r\nfoo\r\n"), "ERR Protocol error: expected '$', got 'X'");
  EXPECT_EQ(error_of("*2\r\n$3\r\nfoo\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
  EXPECT_EQ(error_of("set \"abc\r\n"), "ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(error_of("set 'abc\r\n"), "ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(error_of("set \"a\"b\r\n"), "ERR Protocol error: unbalanced quotes in request");
  EXPECT_EQ(error_of(std::string(70000, 'a')), "ERR Protocol error: too big inline request");
  EXPECT_EQ(error_of(std::string(70000, 'a') + "\r\n"), "ERR Protocol error: too big inline request");
  EXPECT_EQ(error_of("*" + std::string(70000, '1')), "ERR Protocol error: too big mbulk count string");
  EXPECT_EQ(error_of("*1\r\n$" + std::string(70000, '1')), "ERR Protocol error: too big bulk count string");
  EXPECT_EQ(error_of("*1\r\n$3\r\nfooXY"), "ERR Protocol error: expected CRLF after bulk data");
}

TEST(RespParser, BadInputsFromTheIssue) {
  EXPECT_EQ(error_of("*4294967295\r\n"), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(error_of("*1\r\n$-2\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(error_of("*1\r\n$-1\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(error_of("*1\r\n$9999999999\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(error_of("*1\r\n$99999999999999999999999\r\n"), "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(error_of("*01\r\n"), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(error_of("*1\rX"), "ERR Protocol error: invalid multibulk length");

  // A bare "\n" is an empty inline line: skipped, and the next command still parses.
  const Outcome o = feed_whole("\n\n*1\r\n$4\r\nPING\r\n");
  ASSERT_EQ(o.commands.size(), 1u);
  EXPECT_EQ(o.commands[0][0], "PING");

  const std::string nul_key("a\0b", 3);
  const Outcome nul = feed_whole(encode({"GET", nul_key}));
  ASSERT_EQ(nul.commands.size(), 1u);
  EXPECT_EQ(nul.commands[0][1], nul_key);
}

TEST(RespParser, LimitsBeforeAuthentication) {
  std::vector<std::string> ten(10, "x"), eleven(11, "x");
  EXPECT_EQ(feed_whole(encode(ten), {}, false).commands.size(), 1u);
  EXPECT_EQ(error_of(encode(eleven), false), "ERR Protocol error: unauthenticated multibulk length");
  EXPECT_EQ(feed_whole(encode(eleven), {}, true).commands.size(), 1u);

  const std::string small(16384, 'k'), big(16385, 'k');
  EXPECT_EQ(feed_whole(encode({"AUTH", small}), {}, false).commands.size(), 1u);
  EXPECT_EQ(error_of(encode({"AUTH", big}), false), "ERR Protocol error: unauthenticated bulk length");
  // The bound is enforced at the $ line: the client never gets to send the bytes.
  EXPECT_EQ(error_of("*1\r\n$1000000\r\n", false), "ERR Protocol error: unauthenticated bulk length");
  EXPECT_EQ(error_of("*1000\r\n", false), "ERR Protocol error: unauthenticated multibulk length");
  // Beyond the authenticated bounds the text is the ordinary one, as in Redis.
  EXPECT_EQ(error_of("*2147483647\r\n", false), "ERR Protocol error: invalid multibulk length");
  EXPECT_EQ(error_of("*1\r\n$9999999999\r\n", false), "ERR Protocol error: invalid bulk length");

  // Inline requests obey the same argument bound.
  EXPECT_EQ(error_of("a b c d e f g h i j k\r\n", false), "ERR Protocol error: unauthenticated multibulk length");
  EXPECT_EQ(feed_whole("a b c d e f g h i j\r\n", {}, false).commands.size(), 1u);
}

TEST(RespParser, AuthenticationRaisesLimitsMidStream) {
  RespParser p;
  Command cmd;
  const std::string big(100000, 'v');
  std::string buf = encode({"AUTH", "pw"});
  ASSERT_EQ(p.parse(buf, cmd), ParseStatus::kOk);
  buf.erase(0, p.consumed());
  p.reset();
  p.set_authenticated(true);
  buf += encode({"SET", "k", big});
  ASSERT_EQ(p.parse(buf, cmd), ParseStatus::kOk);
  EXPECT_EQ(cmd.argv[2].size(), big.size());
}

TEST(RespParser, LimitsAfterAuthentication) {
  RespLimits limits;
  limits.max_bulk_bytes = 1000;
  limits.max_multibulk = 50;
  limits.unauth_max_bulk_bytes = 100;
  limits.unauth_max_multibulk = 5;
  EXPECT_EQ(feed_whole(encode({"SET", "k", std::string(1000, 'v')}), limits).commands.size(), 1u);
  EXPECT_EQ(error_of(encode({"SET", "k", std::string(1001, 'v')}), true, limits),
            "ERR Protocol error: invalid bulk length");
  EXPECT_EQ(feed_whole(encode(std::vector<std::string>(50, "a")), limits).commands.size(), 1u);
  EXPECT_EQ(error_of(encode(std::vector<std::string>(51, "a")), true, limits),
            "ERR Protocol error: invalid multibulk length");
}

TEST(RespParser, MegabyteKeyAndHundredThousandArguments) {
  const std::string key(1 << 20, 'k');
  const Outcome o = feed_whole(encode({"GET", key}));
  ASSERT_EQ(o.commands.size(), 1u);
  EXPECT_EQ(o.commands[0][1], key);
  EXPECT_EQ(error_of(encode({"GET", key}), false), "ERR Protocol error: unauthenticated bulk length");

  std::vector<std::string> argv(100000);
  for (size_t i = 0; i < argv.size(); ++i) argv[i] = std::to_string(i);
  const std::string s = encode(argv);
  std::vector<size_t> cuts;
  for (size_t pos = 4096; pos < s.size(); pos += 4096) cuts.push_back(pos);
  const Outcome big = feed(s, cuts);
  ASSERT_EQ(big.commands.size(), 1u);
  EXPECT_EQ(big.commands[0], argv);
}

TEST(RespParser, LargeBulkInSmallReadsAnnouncesItsSize) {
  const std::string value(8 << 20, 'z');
  const std::string s = encode({"SET", "k", value});
  RespParser p;
  p.set_authenticated(true);
  Command cmd;
  std::string pending;
  constexpr size_t kReadBytes = 16 * 1024;
  size_t calls = 0;
  ParseStatus st = ParseStatus::kIncomplete;
  for (size_t pos = 0; pos < s.size() && st == ParseStatus::kIncomplete; pos += kReadBytes) {
    pending.append(s, pos, kReadBytes);
    st = p.parse(pending, cmd);
    ++calls;
    if (st == ParseStatus::kIncomplete && pending.size() > 64) {
      // Once the value's $len line is in, the hint is the exact size of the whole command.
      EXPECT_EQ(p.bytes_needed_hint(), s.size());
    }
  }
  ASSERT_EQ(st, ParseStatus::kOk);
  EXPECT_EQ(calls, (s.size() + kReadBytes - 1) / kReadBytes);
  EXPECT_EQ(cmd.argv[2].size(), value.size());
  EXPECT_EQ(p.consumed(), s.size());
}

TEST(RespParser, InlineLengthBoundDoesNotDependOnSplits) {
  RespLimits limits;
  limits.max_inline_bytes = 32;
  for (size_t len : {31u, 32u, 33u}) {
    const std::string s = std::string(len, 'a') + "\r\n" + "PING\r\n";
    const Outcome whole = feed_whole(s, limits);
    EXPECT_EQ(whole.commands.size(), len <= 32 ? 2u : 0u) << len;
    for (size_t i = 0; i <= s.size(); ++i) EXPECT_EQ(feed(s, {i}, limits), whole) << len << " at " << i;
  }
  for (size_t len : {31u, 32u, 33u}) {
    const std::string s = "*1\r\n$" + std::string(len - 1, '1') + "\r\n";
    const Outcome whole = feed_whole(s, limits);
    for (size_t i = 0; i <= s.size(); ++i) EXPECT_EQ(feed(s, {i}, limits), whole) << len << " at " << i;
  }
}

TEST(RespParser, StrictIntegers) {
  int64_t v = 0;
  EXPECT_TRUE(parse_strict_int64("0", v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_strict_int64("-9223372036854775808", v));
  EXPECT_EQ(v, INT64_MIN);
  EXPECT_TRUE(parse_strict_int64("9223372036854775807", v));
  EXPECT_EQ(v, INT64_MAX);
  EXPECT_FALSE(parse_strict_int64("9223372036854775808", v));
  EXPECT_FALSE(parse_strict_int64("-0", v));
  EXPECT_FALSE(parse_strict_int64("+1", v));
  EXPECT_FALSE(parse_strict_int64("01", v));
  EXPECT_FALSE(parse_strict_int64("", v));
  EXPECT_FALSE(parse_strict_int64("-", v));
  EXPECT_FALSE(parse_strict_int64("1 ", v));
}

TEST(RespParser, InlineQuotingLikeRedisCli) {
  const Outcome o = feed_whole("a\"b c\" x '\\n' \"\\x4g\\q\" \"\"\r\n");
  ASSERT_EQ(o.error, "");
  ASSERT_EQ(o.commands.size(), 1u);
  EXPECT_EQ(o.commands[0], (std::vector<std::string>{"ab c", "x", "\\n", "x4gq", ""}));
}

}  // namespace
}  // namespace tally::proto
