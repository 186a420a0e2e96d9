#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/proto/reply.h"
#include "host/server/commands/command.h"
#include "host/store/store.h"

namespace tally::server {
namespace {

using store::Store;

constexpr uint64_t kNow = 1'700'000'000'000ULL;

// Drives handlers the way the server does: look up, check arity, run, take the reply bytes.
class Cmd : public ::testing::Test {
 protected:
  std::string run(std::vector<std::string> args) {
    std::vector<std::string_view> argv(args.begin(), args.end());
    const CommandSpec* spec = find_data_command(argv[0]);
    EXPECT_NE(spec, nullptr) << args[0];
    if (spec == nullptr) return "";
    const int n = static_cast<int>(argv.size());
    if ((spec->arity > 0 && n != spec->arity) || (spec->arity < 0 && n < -spec->arity)) return "arity";
    return exec(*spec, argv);
  }
  // Runs the handler and encodes its reply value as RESP (resp_), as a session does.
  std::string exec(const CommandSpec& spec, std::span<const std::string_view> argv) {
    reply_.clear();
    ExecContext ctx{store_, reply_, now_};
    spec.handler(ctx, argv);
    buf_.clear();
    proto::ReplyWriter w(buf_, resp_);
    reply_.write_resp(w);
    return buf_;
  }
  // Members of a flat array-of-bulks reply, for order-free comparisons.
  static std::multiset<std::string> bulks(const std::string& reply) {
    return bulks_from(reply, reply.find("\r\n") + 2);
  }
  static std::multiset<std::string> bulks_from(const std::string& reply, size_t p) {
    std::multiset<std::string> out;
    while (p < reply.size()) {
      if (reply[p] != '$') {
        p = reply.find("\r\n", p) + 2;
        continue;
      }
      const size_t eol = reply.find("\r\n", p);
      const size_t len = std::stoul(reply.substr(p + 1, eol - p - 1));
      out.insert(reply.substr(eol + 2, len));
      p = eol + 2 + len + 2;
    }
    return out;
  }

  Store store_;
  std::string buf_;
  proto::Reply reply_;
  uint64_t now_ = kNow;
  int resp_ = 2;
};

const std::string kWrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const std::string kNotInt = "-ERR value is not an integer or out of range\r\n";
const std::string kSyntax = "-ERR syntax error\r\n";

TEST(CommandTable, LookupIsCaseInsensitiveAndComplete) {
  EXPECT_EQ(find_data_command("GeT"), find_data_command("get"));
  EXPECT_EQ(find_data_command("get")->arity, 2);
  EXPECT_EQ(find_data_command("nosuch"), nullptr);
  EXPECT_EQ(find_data_command(""), nullptr);
  EXPECT_EQ(find_data_command("getx"), nullptr);
  for (const CommandSpec& s : data_commands()) {
    EXPECT_EQ(find_data_command(s.name), &s);
    EXPECT_NE(s.handler, nullptr);
    EXPECT_TRUE((s.flags & kCmdWrite) || (s.flags & kCmdReadOnly)) << s.name;
  }
  // 21 string, 3 hyperloglog, 7 bit, 28 keyspace, 17 set, 16 hash, 17 list, 32 sorted set, 15 stream;
  // internal: 3 transaction, 6 memcached, 1 stream
  EXPECT_EQ(data_commands().size(), 166u);
  const CommandSpec* mset = find_data_command("MSET");
  EXPECT_EQ(mset->first_key, 1);
  EXPECT_EQ(mset->last_key, -1);
  EXPECT_EQ(mset->key_step, 2);
  EXPECT_TRUE(mset->flags & kCmdDenyOom);
}

// Bytes of the RESP value at `at` (0 when incomplete).
size_t resp_value_bytes(const std::string& buf, size_t at) {
  const size_t eol = buf.find("\r\n", at);
  if (at >= buf.size() || eol == std::string::npos) return 0;
  const char t = buf[at];
  size_t p = eol + 2;
  if (t != '$' && t != '=' && t != '!' && t != '*' && t != '~' && t != '%' && t != '>') return p - at;
  const long n = std::stol(buf.substr(at + 1, eol - at - 1));
  if (n < 0) return p - at;
  if (t == '$' || t == '=' || t == '!') return buf.size() >= p + n + 2 ? p + n + 2 - at : 0;
  const long items = t == '%' ? 2 * n : n;
  for (long i = 0; i < items; ++i) {
    const size_t len = resp_value_bytes(buf, p);
    if (len == 0) return 0;
    p += len;
  }
  return p - at;
}

// Every client-visible data command, fed random arguments built from words its parsers look for (ids,
// options, counts, huge and negative numbers) over keys of every type: each must reply exactly one
// well-formed value, and never abort. Seeded, so a failure replays.
TEST_F(Cmd, RandomArgumentsNeverBreakAHandler) {
  const std::vector<std::string> words = {
      "k", "s", "l", "z", "h", "str", "x", "0", "1", "-1", "2", "100", "-100", "9223372036854775807",
      "-9223372036854775808", "18446744073709551615", "1.5", "inf", "-inf", "nan", "", "*", "$", ">", "-", "+",
      "(1", "[a", "1-1", "0-0", "5-*", "18446744073709551615-18446744073709551615", "STREAMS", "COUNT", "BLOCK",
      "GROUP", "NOACK", "MAXLEN", "MINID", "~", "=", "LIMIT", "NOMKSTREAM", "MKSTREAM", "ENTRIESREAD", "JUSTID",
      "FORCE", "IDLE", "TIME", "RETRYCOUNT", "LASTID", "CREATE", "SETID", "DESTROY", "CREATECONSUMER",
      "DELCONSUMER", "HELP", "FULL", "GROUPS", "CONSUMERS", "STREAM", "WITHSCORES", "BYSCORE", "BYLEX", "REV",
      "LEFT", "RIGHT", "NX", "XX", "GT", "LT", "CH", "INCR", "EX", "PX", "KEEPTTL", "GET", "MATCH", "TYPE"};
  Rng rng(99);
  auto word = [&] { return words[rng.uniform(words.size())]; };
  for (int round = 0; round < 3; ++round) {
    for (const CommandSpec& spec : data_commands()) {
      if (spec.flags & kCmdInternal) continue;
      for (int i = 0; i < 200; ++i) {
        if (i % 20 == 0) {  // keys of every type again, each under its own name
          store_.flush();
          run({"SET", "str", "v"});
          run({"RPUSH", "l", "a", "b"});
          run({"ZADD", "z", "1", "a"});
          run({"HSET", "h", "f", "v"});
          run({"XADD", "s", "1-1", "f", "v"});
          run({"XGROUP", "CREATE", "s", "GROUP", "0"});
          run({"XREADGROUP", "GROUP", "GROUP", "c", "STREAMS", "s", ">"});
        }
        const size_t min = static_cast<size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
        const size_t n = spec.arity > 0 ? min : min + rng.uniform(6);
        std::vector<std::string> args = {spec.name};
        while (args.size() < n) args.push_back(word());
        if (spec.first_key == 1 && rng.chance(1, 2)) args[1] = std::vector<std::string>{"s", "l", "z", "h", "str"}[rng.uniform(5)];
        resp_ = rng.chance(1, 2) ? 2 : 3;
        const std::string out = run(args);
        ASSERT_FALSE(out.empty()) << spec.name;
        // Exactly one complete value, nothing after it.
        if (out != "arity") {
          ASSERT_EQ(resp_value_bytes(out, 0), out.size()) << spec.name << ": " << out;
        }
      }
    }
  }
}

TEST_F(Cmd, GetSetBasics) {
  EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "k", "hello"}), "+OK\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$5\r\nhello\r\n");
  EXPECT_EQ(run({"SET", "k", "x", "NX"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "n", "x", "XX"}), "$-1\r\n");
  EXPECT_EQ(run({"SET", "k", "world", "XX", "GET"}), "$5\r\nhello\r\n");
  EXPECT_EQ(run({"SET", "new", "v", "NX", "GET"}), "$-1\r\n");
  EXPECT_EQ(run({"GET", "new"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "NX", "XX"}), kSyntax);
  EXPECT_EQ(run({"SET", "k", "v", "EX", "10", "PX", "100"}), kSyntax);
  EXPECT_EQ(run({"SET", "k", "v", "EX"}), kSyntax);
  EXPECT_EQ(run({"SET", "k", "v", "KEEPTTL", "EX", "1"}), kSyntax);
  EXPECT_EQ(run({"SET", "k", "v", "EX", "x"}), kNotInt);
  EXPECT_EQ(run({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "PX", "9223372036854775807"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "EX", "-5"}), "-ERR invalid expire time in 'set' command\r\n");
  run({"SADD", "s", "m"});
  EXPECT_EQ(run({"SET", "s", "v", "GET"}), kWrongType);
  EXPECT_EQ(run({"SET", "s", "v"}), "+OK\r\n");  // plain SET replaces any type
  EXPECT_EQ(run({"GET", "s"}), "$1\r\nv\r\n");
  run({"SADD", "s2", "m"});
  EXPECT_EQ(run({"GET", "s2"}), kWrongType);
}

TEST_F(Cmd, SetExpiryOptions) {
  EXPECT_EQ(run({"SET", "k", "v", "EX", "10"}), "+OK\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":10\r\n");
  EXPECT_EQ(run({"PTTL", "k"}), ":10000\r\n");
  EXPECT_EQ(run({"SET", "k", "v2", "KEEPTTL"}), "+OK\r\n");
  EXPECT_EQ(run({"PTTL", "k"}), ":10000\r\n");
  EXPECT_EQ(run({"SET", "k", "v3"}), "+OK\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":-1\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "PXAT", std::to_string(kNow + 1500)}), "+OK\r\n");
  EXPECT_EQ(run({"PEXPIRETIME", "k"}), ":" + std::to_string(kNow + 1500) + "\r\n");
  EXPECT_EQ(run({"EXPIRETIME", "k"}), ":" + std::to_string((kNow + 1500 + 500) / 1000) + "\r\n");
  EXPECT_EQ(run({"SET", "k", "v", "exat", std::to_string(kNow / 1000 + 100)}), "+OK\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":100\r\n");
  now_ += 100'000;
  EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":-2\r\n");
  EXPECT_EQ(run({"SETEX", "a", "5", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"PTTL", "a"}), ":5000\r\n");
  EXPECT_EQ(run({"PSETEX", "a", "50", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"PTTL", "a"}), ":50\r\n");
  EXPECT_EQ(run({"SETEX", "a", "-1", "v"}), "-ERR invalid expire time in 'setex' command\r\n");
  EXPECT_EQ(run({"PSETEX", "a", "0", "v"}), "-ERR invalid expire time in 'psetex' command\r\n");
  EXPECT_EQ(run({"SETEX", "a", "x", "v"}), kNotInt);
}

TEST_F(Cmd, GetVariants) {
  EXPECT_EQ(run({"SETNX", "k", "1"}), ":1\r\n");
  EXPECT_EQ(run({"SETNX", "k", "2"}), ":0\r\n");
  EXPECT_EQ(run({"GETSET", "k", "3"}), "$1\r\n1\r\n");
  EXPECT_EQ(run({"GETSET", "nokey", "3"}), "$-1\r\n");
  EXPECT_EQ(run({"GETDEL", "k"}), "$1\r\n3\r\n");
  EXPECT_EQ(run({"GETDEL", "k"}), "$-1\r\n");
  run({"SET", "k", "v"});
  EXPECT_EQ(run({"GETEX", "k", "EX", "100"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":100\r\n");
  EXPECT_EQ(run({"GETEX", "k", "PERSIST"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":-1\r\n");
  EXPECT_EQ(run({"GETEX", "k", "EX", "-1"}), "-ERR invalid expire time in 'getex' command\r\n");
  EXPECT_EQ(run({"GETEX", "k", "PERSIST", "EX", "1"}), kSyntax);
  EXPECT_EQ(run({"GETEX", "k", "PXAT", "1"}), "$1\r\nv\r\n");  // already past: deleted
  EXPECT_EQ(run({"EXISTS", "k"}), ":0\r\n");
  EXPECT_EQ(run({"GETEX", "missing"}), "$-1\r\n");
  run({"HSET", "h", "f", "v"});
  EXPECT_EQ(run({"GETEX", "h"}), kWrongType);
  EXPECT_EQ(run({"GETDEL", "h"}), kWrongType);
  EXPECT_EQ(run({"GETSET", "h", "x"}), kWrongType);
}

TEST_F(Cmd, MultiKeyStrings) {
  EXPECT_EQ(run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(run({"MSET", "a", "1", "b"}), "-ERR wrong number of arguments for 'mset' command\r\n");
  run({"SADD", "s", "x"});
  EXPECT_EQ(run({"MGET", "a", "missing", "s", "b"}), "*4\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$1\r\n2\r\n");
  EXPECT_EQ(run({"MSETNX", "c", "3", "a", "9"}), ":0\r\n");
  EXPECT_EQ(run({"GET", "c"}), "$-1\r\n");
  EXPECT_EQ(run({"MSETNX", "c", "3", "d", "4"}), ":1\r\n");
  EXPECT_EQ(run({"MGET", "c", "d"}), "*2\r\n$1\r\n3\r\n$1\r\n4\r\n");
}

TEST_F(Cmd, AppendStrlenRanges) {
  EXPECT_EQ(run({"APPEND", "k", "Hello"}), ":5\r\n");
  EXPECT_EQ(run({"APPEND", "k", " World"}), ":11\r\n");
  EXPECT_EQ(run({"STRLEN", "k"}), ":11\r\n");
  EXPECT_EQ(run({"STRLEN", "nokey"}), ":0\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "0", "4"}), "$5\r\nHello\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "-5", "-1"}), "$5\r\nWorld\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "-1", "-5"}), "$0\r\n\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "5", "100"}), "$6\r\n World\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "20", "30"}), "$0\r\n\r\n");
  EXPECT_EQ(run({"GETRANGE", "nokey", "0", "-1"}), "$0\r\n\r\n");
  EXPECT_EQ(run({"GETRANGE", "k", "a", "1"}), kNotInt);
  EXPECT_EQ(run({"SETRANGE", "k", "6", "Redis"}), ":11\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$11\r\nHello Redis\r\n");
  EXPECT_EQ(run({"SETRANGE", "pad", "3", "x"}), ":4\r\n");
  EXPECT_EQ(run({"GET", "pad"}), std::string("$4\r\n\0\0\0x\r\n", 10));
  EXPECT_EQ(run({"SETRANGE", "empty", "5", ""}), ":0\r\n");
  EXPECT_EQ(run({"EXISTS", "empty"}), ":0\r\n");
  EXPECT_EQ(run({"SETRANGE", "k", "-1", "x"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(run({"SETRANGE", "k", "536870912", "x"}),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
  run({"SADD", "s", "x"});
  EXPECT_EQ(run({"APPEND", "s", "x"}), kWrongType);
  EXPECT_EQ(run({"SETRANGE", "s", "0", "x"}), kWrongType);
}

TEST_F(Cmd, IntegerCounters) {
  EXPECT_EQ(run({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(run({"INCRBY", "n", "41"}), ":42\r\n");
  EXPECT_EQ(run({"DECR", "n"}), ":41\r\n");
  EXPECT_EQ(run({"DECRBY", "n", "50"}), ":-9\r\n");
  EXPECT_EQ(run({"GET", "n"}), "$2\r\n-9\r\n");
  EXPECT_EQ(run({"INCRBY", "n", "x"}), kNotInt);
  EXPECT_EQ(run({"INCRBY", "n", "01"}), kNotInt);   // Redis rejects leading zeros
  EXPECT_EQ(run({"INCRBY", "n", "+1"}), kNotInt);
  EXPECT_EQ(run({"INCRBY", "n", "-0"}), kNotInt);
  run({"SET", "f", "1.5"});
  EXPECT_EQ(run({"INCR", "f"}), kNotInt);
  run({"SET", "big", "9223372036854775807"});
  EXPECT_EQ(run({"INCR", "big"}), "-ERR increment or decrement would overflow\r\n");
  run({"SET", "small", "-9223372036854775808"});
  EXPECT_EQ(run({"DECR", "small"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(run({"DECRBY", "n", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
  EXPECT_EQ(run({"INCRBY", "n", "9223372036854775808"}), kNotInt);
  run({"SET", "t", "10", "EX", "100"});
  EXPECT_EQ(run({"INCR", "t"}), ":11\r\n");
  EXPECT_EQ(run({"TTL", "t"}), ":100\r\n");  // counters keep the TTL
  run({"SADD", "s", "x"});
  EXPECT_EQ(run({"INCR", "s"}), kWrongType);
}

TEST_F(Cmd, FloatCounters) {
  run({"SET", "k", "10.50"});
  EXPECT_EQ(run({"INCRBYFLOAT", "k", "0.1"}), "$4\r\n10.6\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "k", "-10.6"}), "$1\r\n0\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "k", "5.0e3"}), "$4\r\n5000\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "new", "1.5"}), "$3\r\n1.5\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "k", "abc"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "k", " 1"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(run({"INCRBYFLOAT", "k", "inf"}), "-ERR increment would produce NaN or Infinity\r\n");
  run({"SET", "word", "abc"});
  EXPECT_EQ(run({"INCRBYFLOAT", "word", "1"}), "-ERR value is not a valid float\r\n");
  resp_ = 3;  // Redis replies a bulk string in RESP3 too
  EXPECT_EQ(run({"INCRBYFLOAT", "new", "1"}), "$3\r\n2.5\r\n");
}

TEST_F(Cmd, KeyspaceCommands) {
  run({"MSET", "a", "1", "b", "2", "c", "3"});
  EXPECT_EQ(run({"EXISTS", "a", "a", "nokey"}), ":2\r\n");
  EXPECT_EQ(run({"TOUCH", "a", "b", "nokey"}), ":2\r\n");
  EXPECT_EQ(run({"DEL", "a", "nokey"}), ":1\r\n");
  EXPECT_EQ(run({"UNLINK", "b"}), ":1\r\n");
  EXPECT_EQ(run({"TYPE", "c"}), "+string\r\n");
  EXPECT_EQ(run({"TYPE", "nokey"}), "+none\r\n");
  run({"SADD", "s", "x"});
  run({"HSET", "h", "f", "v"});
  EXPECT_EQ(run({"TYPE", "s"}), "+set\r\n");
  EXPECT_EQ(run({"TYPE", "h"}), "+hash\r\n");
  EXPECT_EQ(run({"DBSIZE"}), ":3\r\n");
  EXPECT_EQ(run({"RENAME", "nokey", "x"}), "-ERR no such key\r\n");
  EXPECT_EQ(run({"RENAME", "c", "c2"}), "+OK\r\n");
  EXPECT_EQ(run({"GET", "c2"}), "$1\r\n3\r\n");
  EXPECT_EQ(run({"RENAME", "c2", "c2"}), "+OK\r\n");
  EXPECT_EQ(run({"RENAMENX", "c2", "s"}), ":0\r\n");
  EXPECT_EQ(run({"RENAMENX", "c2", "c2"}), ":0\r\n");
  EXPECT_EQ(run({"RENAMENX", "s", "s2"}), ":1\r\n");
  EXPECT_EQ(run({"SMEMBERS", "s2"}), "*1\r\n$1\r\nx\r\n");
  EXPECT_EQ(run({"RENAME", "h", "c2"}), "+OK\r\n");  // overwrites another type
  EXPECT_EQ(run({"TYPE", "c2"}), "+hash\r\n");
  EXPECT_EQ(bulks(run({"KEYS", "*"})), (std::multiset<std::string>{"c2", "s2"}));
  EXPECT_EQ(run({"KEYS", "s?"}), "*1\r\n$2\r\ns2\r\n");
  EXPECT_EQ(run({"FLUSHDB", "bogus"}), kSyntax);
  EXPECT_EQ(run({"FLUSHALL", "ASYNC"}), "+OK\r\n");
  EXPECT_EQ(run({"DBSIZE"}), ":0\r\n");
  EXPECT_EQ(run({"RANDOMKEY"}), "$-1\r\n");
  run({"SET", "only", "v"});
  EXPECT_EQ(run({"RANDOMKEY"}), "$4\r\nonly\r\n");
  EXPECT_EQ(run({"FLUSHDB"}), "+OK\r\n");
}

TEST_F(Cmd, ExpireFamily) {
  run({"SET", "k", "v"});
  EXPECT_EQ(run({"EXPIRE", "nokey", "10"}), ":0\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "10", "XX"}), ":0\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "10", "GT"}), ":0\r\n");  // no TTL counts as infinite
  EXPECT_EQ(run({"EXPIRE", "k", "10", "NX"}), ":1\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "20", "NX"}), ":0\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "5", "GT"}), ":0\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "20", "GT"}), ":1\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "30", "LT"}), ":0\r\n");
  EXPECT_EQ(run({"PEXPIRE", "k", "1500", "LT"}), ":1\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":2\r\n");  // 1.5 s rounds to 2
  EXPECT_EQ(run({"PTTL", "k"}), ":1500\r\n");
  EXPECT_EQ(run({"PERSIST", "k"}), ":1\r\n");
  EXPECT_EQ(run({"PERSIST", "k"}), ":0\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":-1\r\n");
  EXPECT_EQ(run({"EXPIRETIME", "k"}), ":-1\r\n");
  EXPECT_EQ(run({"EXPIRETIME", "nokey"}), ":-2\r\n");
  EXPECT_EQ(run({"EXPIREAT", "k", std::to_string(kNow / 1000 + 50)}), ":1\r\n");
  EXPECT_EQ(run({"TTL", "k"}), ":50\r\n");
  EXPECT_EQ(run({"PEXPIREAT", "k", std::to_string(kNow + 70)}), ":1\r\n");
  EXPECT_EQ(run({"PTTL", "k"}), ":70\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "10", "NX", "XX"}),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "10", "GT", "LT"}), "-ERR GT and LT options at the same time are not compatible\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "10", "foo"}), "-ERR Unsupported option foo\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "x"}), kNotInt);
  EXPECT_EQ(run({"EXPIRE", "k", "99999999999999999"}), "-ERR invalid expire time in 'expire' command\r\n");
  EXPECT_EQ(run({"PEXPIRE", "k", "9223372036854775807"}), "-ERR invalid expire time in 'pexpire' command\r\n");
  EXPECT_EQ(run({"EXPIRE", "k", "-1"}), ":1\r\n");  // a past time deletes the key
  EXPECT_EQ(run({"EXISTS", "k"}), ":0\r\n");
  run({"SET", "k2", "v", "PX", "10"});
  now_ += 10;
  EXPECT_EQ(run({"PTTL", "k2"}), ":-2\r\n");
  EXPECT_EQ(run({"DBSIZE"}), ":0\r\n");
}

TEST_F(Cmd, ScanVisitsEveryKeyOnceWithFilters) {
  for (int i = 0; i < 300; ++i) run({"SET", "str:" + std::to_string(i), "v"});
  for (int i = 0; i < 20; ++i) run({"SADD", "set:" + std::to_string(i), "m"});
  std::multiset<std::string> all, sets;
  std::string cursor = "0";
  int steps = 0;
  do {
    std::string r = run({"SCAN", cursor, "COUNT", "25"});
    ASSERT_EQ(r.substr(0, 4), "*2\r\n");
    const size_t eol = r.find("\r\n", 4);
    const size_t len = std::stoul(r.substr(5, eol - 5));
    cursor = r.substr(eol + 2, len);
    auto keys = bulks_from(r.substr(eol + 2 + len + 2), 0);
    all.insert(keys.begin(), keys.end());
    ++steps;
  } while (cursor != "0" && steps < 1000);
  EXPECT_EQ(all.size(), 320u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 320u);
  cursor = "0";
  steps = 0;
  do {
    std::string r = run({"SCAN", cursor, "MATCH", "set:1*", "TYPE", "set"});
    const size_t eol = r.find("\r\n", 4);
    const size_t len = std::stoul(r.substr(5, eol - 5));
    cursor = r.substr(eol + 2, len);
    auto keys = bulks_from(r.substr(eol + 2 + len + 2), 0);
    sets.insert(keys.begin(), keys.end());
  } while (cursor != "0" && ++steps < 1000);
  EXPECT_EQ(sets.size(), 11u);  // set:1 and set:10..19
  EXPECT_EQ(run({"SCAN", "x"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(run({"SCAN", "0", "COUNT", "0"}), kSyntax);
  EXPECT_EQ(run({"SCAN", "0", "COUNT", "x"}), kNotInt);
  EXPECT_EQ(run({"SCAN", "0", "BOGUS", "1"}), kSyntax);
  EXPECT_EQ(run({"SCAN", "0", "MATCH"}), kSyntax);
}

TEST_F(Cmd, SetCommands) {
  EXPECT_EQ(run({"SADD", "s", "a", "b", "c", "a"}), ":3\r\n");
  EXPECT_EQ(run({"SCARD", "s"}), ":3\r\n");
  EXPECT_EQ(run({"SISMEMBER", "s", "a"}), ":1\r\n");
  EXPECT_EQ(run({"SISMEMBER", "s", "z"}), ":0\r\n");
  EXPECT_EQ(run({"SMISMEMBER", "s", "a", "z"}), "*2\r\n:1\r\n:0\r\n");
  EXPECT_EQ(run({"SMISMEMBER", "nokey", "a"}), "*1\r\n:0\r\n");
  EXPECT_EQ(bulks(run({"SMEMBERS", "s"})), (std::multiset<std::string>{"a", "b", "c"}));
  EXPECT_EQ(run({"SMEMBERS", "nokey"}), "*0\r\n");
  EXPECT_EQ(run({"SREM", "s", "a", "z"}), ":1\r\n");
  EXPECT_EQ(run({"SREM", "s", "b", "c"}), ":2\r\n");
  EXPECT_EQ(run({"EXISTS", "s"}), ":0\r\n");  // empty sets are deleted
  run({"SET", "str", "v"});
  EXPECT_EQ(run({"SADD", "str", "a"}), kWrongType);
  EXPECT_EQ(run({"SCARD", "str"}), kWrongType);
  EXPECT_EQ(run({"SMEMBERS", "str"}), kWrongType);
  resp_ = 3;
  run({"SADD", "one", "x"});
  EXPECT_EQ(run({"SMEMBERS", "one"}), "~1\r\n$1\r\nx\r\n");
  EXPECT_EQ(run({"SMEMBERS", "nokey"}), "~0\r\n");
  EXPECT_EQ(run({"SISMEMBER", "one", "x"}), ":1\r\n");
}

TEST_F(Cmd, SetAlgebra) {
  run({"SADD", "a", "1", "2", "3", "4"});
  run({"SADD", "b", "3", "4", "5"});
  run({"SADD", "c", "4", "6"});
  EXPECT_EQ(run({"SINTER", "a", "b", "c"}), "*1\r\n$1\r\n4\r\n");
  EXPECT_EQ(run({"SINTER", "a", "nokey"}), "*0\r\n");
  EXPECT_EQ(bulks(run({"SUNION", "a", "b", "nokey"})), (std::multiset<std::string>{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(bulks(run({"SDIFF", "a", "b", "c"})), (std::multiset<std::string>{"1", "2"}));
  EXPECT_EQ(run({"SDIFF", "nokey", "a"}), "*0\r\n");
  EXPECT_EQ(run({"SINTERSTORE", "d", "a", "b"}), ":2\r\n");
  EXPECT_EQ(bulks(run({"SMEMBERS", "d"})), (std::multiset<std::string>{"3", "4"}));
  EXPECT_EQ(run({"SUNIONSTORE", "a", "a", "c"}), ":5\r\n");  // destination among the sources
  EXPECT_EQ(run({"SDIFFSTORE", "d", "c", "a"}), ":0\r\n");
  EXPECT_EQ(run({"EXISTS", "d"}), ":0\r\n");
  run({"SET", "str", "v"});
  EXPECT_EQ(run({"SINTER", "nokey", "str"}), kWrongType);
  EXPECT_EQ(run({"SUNIONSTORE", "d", "a", "str"}), kWrongType);
  EXPECT_EQ(run({"SINTERCARD", "2", "a", "b"}), ":2\r\n");
  EXPECT_EQ(run({"SINTERCARD", "2", "a", "b", "LIMIT", "1"}), ":1\r\n");
  EXPECT_EQ(run({"SINTERCARD", "0", "a"}), "-ERR numkeys should be greater than 0\r\n");
  EXPECT_EQ(run({"SINTERCARD", "x", "a"}), "-ERR numkeys should be greater than 0\r\n");
  EXPECT_EQ(run({"SINTERCARD", "3", "a"}), "-ERR Number of keys can't be greater than number of args\r\n");
  EXPECT_EQ(run({"SINTERCARD", "1", "a", "LIMIT", "-1"}), "-ERR LIMIT can't be negative\r\n");
  EXPECT_EQ(run({"SINTERCARD", "1", "a", "foo", "1"}), kSyntax);
  EXPECT_EQ(run({"SMOVE", "b", "e", "5"}), ":1\r\n");
  EXPECT_EQ(run({"SMOVE", "b", "e", "5"}), ":0\r\n");
  EXPECT_EQ(run({"SMEMBERS", "e"}), "*1\r\n$1\r\n5\r\n");
  EXPECT_EQ(run({"SMOVE", "nokey", "str", "5"}), ":0\r\n");
  EXPECT_EQ(run({"SMOVE", "b", "str", "3"}), kWrongType);
  EXPECT_EQ(run({"SMOVE", "e", "e", "5"}), ":1\r\n");
  EXPECT_EQ(run({"SMOVE", "e", "f", "5"}), ":1\r\n");
  EXPECT_EQ(run({"EXISTS", "e"}), ":0\r\n");
  resp_ = 3;
  const std::string r = run({"SINTER", "a", "c"});
  EXPECT_EQ(r.substr(0, 4), "~2\r\n");
  EXPECT_EQ(bulks(r), (std::multiset<std::string>{"4", "6"}));
}

TEST_F(Cmd, PopAndRandomMembers) {
  run({"SADD", "s", "a", "b", "c", "d"});
  const std::multiset<std::string> all{"a", "b", "c", "d"};
  std::string one = run({"SRANDMEMBER", "s"});
  EXPECT_TRUE(all.count(bulks_from(one, 0).empty() ? "" : *bulks_from(one, 0).begin()));
  auto two = bulks(run({"SRANDMEMBER", "s", "2"}));
  EXPECT_EQ(two.size(), 2u);
  EXPECT_EQ(std::set<std::string>(two.begin(), two.end()).size(), 2u);
  EXPECT_EQ(bulks(run({"SRANDMEMBER", "s", "10"})), all);
  auto rep = bulks(run({"SRANDMEMBER", "s", "-10"}));
  EXPECT_EQ(rep.size(), 10u);
  for (const auto& m : rep) EXPECT_TRUE(all.count(m));
  EXPECT_EQ(run({"SRANDMEMBER", "s", "0"}), "*0\r\n");
  EXPECT_EQ(run({"SRANDMEMBER", "s", "-0"}), kNotInt);
  EXPECT_EQ(run({"SRANDMEMBER", "nokey", "3"}), "*0\r\n");
  EXPECT_EQ(run({"SRANDMEMBER", "nokey"}), "$-1\r\n");
  EXPECT_EQ(run({"SRANDMEMBER", "s", "-9223372036854775808"}),
            "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n");
  EXPECT_EQ(run({"SPOP", "s", "-1"}), "-ERR value is out of range, must be positive\r\n");
  EXPECT_EQ(run({"SPOP", "s", "x"}), kNotInt);
  auto popped = bulks(run({"SPOP", "s", "3"}));
  EXPECT_EQ(popped.size(), 3u);
  EXPECT_EQ(run({"SCARD", "s"}), ":1\r\n");
  std::string last = run({"SPOP", "s"});
  popped.insert(*bulks_from(last, 0).begin());
  EXPECT_EQ(popped, all);
  EXPECT_EQ(run({"EXISTS", "s"}), ":0\r\n");
  EXPECT_EQ(run({"SPOP", "s"}), "$-1\r\n");
  EXPECT_EQ(run({"SPOP", "s", "2"}), "*0\r\n");
  resp_ = 3;
  run({"SADD", "t", "x"});
  EXPECT_EQ(run({"SPOP", "t", "5"}), "~1\r\n$1\r\nx\r\n");
  EXPECT_EQ(run({"SPOP", "t", "2"}), "~0\r\n");
  EXPECT_EQ(run({"SPOP", "t"}), "_\r\n");
}

TEST_F(Cmd, ContainerScans) {
  for (int i = 0; i < 1000; ++i) run({"SADD", "big", std::to_string(i).insert(0, 1, 'm')});
  std::multiset<std::string> seen;
  std::string cursor = "0";
  int steps = 0;
  do {
    std::string r = run({"SSCAN", "big", cursor, "COUNT", "50"});
    const size_t eol = r.find("\r\n", 4);
    const size_t len = std::stoul(r.substr(5, eol - 5));
    cursor = r.substr(eol + 2, len);
    auto ms = bulks_from(r.substr(eol + 2 + len + 2), 0);
    seen.insert(ms.begin(), ms.end());
  } while (cursor != "0" && ++steps < 1000);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_GT(steps, 5);
  run({"HSET", "h", "f1", "v1", "f2", "v2", "g", "v3"});
  EXPECT_EQ(bulks(run({"HSCAN", "h", "0", "MATCH", "f*"})), (std::multiset<std::string>{"0", "f1", "v1", "f2", "v2"}));
  EXPECT_EQ(run({"SSCAN", "nokey", "0"}), "*2\r\n$1\r\n0\r\n*0\r\n");
  EXPECT_EQ(run({"SSCAN", "h", "0"}), kWrongType);
  EXPECT_EQ(run({"HSCAN", "h", "abc"}), "-ERR invalid cursor\r\n");
}

TEST_F(Cmd, SscanMissesNothingWhenTheSetRehashes) {
  for (int i = 0; i < 2000; ++i) run({"SADD", "big", std::to_string(i).insert(0, 1, 'm')});
  std::set<std::string> seen;
  std::string cursor = "0";
  int steps = 0, added = 0;
  do {
    std::string r = run({"SSCAN", "big", cursor, "COUNT", "20"});
    const size_t eol = r.find("\r\n", 4);
    const size_t len = std::stoul(r.substr(5, eol - 5));
    cursor = r.substr(eol + 2, len);
    auto ms = bulks_from(r.substr(eol + 2 + len + 2), 0);
    seen.insert(ms.begin(), ms.end());
    // Grow the set between steps so it rehashes under the cursor.
    for (int j = 0; j < 100 && steps < 40; ++j) run({"SADD", "big", std::to_string(added++).insert(0, 1, 'x')});
  } while (cursor != "0" && ++steps < 10000);
  EXPECT_EQ(cursor, "0");
  for (int i = 0; i < 2000; ++i) EXPECT_TRUE(seen.count(std::to_string(i).insert(0, 1, 'm'))) << i;
}

TEST_F(Cmd, HashCommands) {
  EXPECT_EQ(run({"HSET", "h", "a", "1", "b", "2"}), ":2\r\n");
  EXPECT_EQ(run({"HSET", "h", "a", "10", "c", "3"}), ":1\r\n");
  EXPECT_EQ(run({"HSET", "h", "a"}), "arity");
  EXPECT_EQ(run({"HSET", "h", "a", "1", "b"}), "-ERR wrong number of arguments for 'hset' command\r\n");
  EXPECT_EQ(run({"HMSET", "h", "d", "4"}), "+OK\r\n");
  EXPECT_EQ(run({"HSETNX", "h", "d", "5"}), ":0\r\n");
  EXPECT_EQ(run({"HSETNX", "h", "e", "5"}), ":1\r\n");
  EXPECT_EQ(run({"HGET", "h", "a"}), "$2\r\n10\r\n");
  EXPECT_EQ(run({"HGET", "h", "zz"}), "$-1\r\n");
  EXPECT_EQ(run({"HGET", "nokey", "a"}), "$-1\r\n");
  EXPECT_EQ(run({"HMGET", "h", "a", "zz", "b"}), "*3\r\n$2\r\n10\r\n$-1\r\n$1\r\n2\r\n");
  EXPECT_EQ(run({"HMGET", "nokey", "a"}), "*1\r\n$-1\r\n");
  EXPECT_EQ(run({"HLEN", "h"}), ":5\r\n");
  EXPECT_EQ(run({"HEXISTS", "h", "a"}), ":1\r\n");
  EXPECT_EQ(run({"HEXISTS", "h", "zz"}), ":0\r\n");
  EXPECT_EQ(run({"HSTRLEN", "h", "a"}), ":2\r\n");
  EXPECT_EQ(run({"HSTRLEN", "h", "zz"}), ":0\r\n");
  EXPECT_EQ(bulks(run({"HKEYS", "h"})), (std::multiset<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(bulks(run({"HVALS", "h"})), (std::multiset<std::string>{"10", "2", "3", "4", "5"}));
  EXPECT_EQ(run({"HDEL", "h", "a", "b", "zz"}), ":2\r\n");
  EXPECT_EQ(run({"HDEL", "h", "c", "d", "e"}), ":3\r\n");
  EXPECT_EQ(run({"EXISTS", "h"}), ":0\r\n");
  EXPECT_EQ(run({"HGETALL", "h"}), "*0\r\n");
  run({"HSET", "h", "f", "v"});
  EXPECT_EQ(run({"HGETALL", "h"}), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
  resp_ = 3;
  EXPECT_EQ(run({"HGETALL", "h"}), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
  EXPECT_EQ(run({"HGETALL", "nokey"}), "%0\r\n");
  EXPECT_EQ(run({"HGET", "h", "zz"}), "_\r\n");
  run({"SET", "str", "v"});
  EXPECT_EQ(run({"HSET", "str", "a", "1"}), kWrongType);
  EXPECT_EQ(run({"HGET", "str", "a"}), kWrongType);
  EXPECT_EQ(run({"HGETALL", "str"}), kWrongType);
}

TEST_F(Cmd, HashCounters) {
  EXPECT_EQ(run({"HINCRBY", "h", "n", "5"}), ":5\r\n");
  EXPECT_EQ(run({"HINCRBY", "h", "n", "-7"}), ":-2\r\n");
  EXPECT_EQ(run({"HINCRBY", "h", "n", "x"}), kNotInt);
  run({"HSET", "h", "s", "abc", "max", "9223372036854775807"});
  EXPECT_EQ(run({"HINCRBY", "h", "s", "1"}), "-ERR hash value is not an integer\r\n");
  EXPECT_EQ(run({"HINCRBY", "h", "max", "1"}), "-ERR increment or decrement would overflow\r\n");
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "f", "1.5"}), "$3\r\n1.5\r\n");
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "f", "1"}), "$3\r\n2.5\r\n");
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "s", "1"}), "-ERR hash value is not a float\r\n");
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "f", "x"}), "-ERR value is not a valid float\r\n");
  EXPECT_EQ(run({"HINCRBYFLOAT", "h", "f", "inf"}), "-ERR value is NaN or Infinity\r\n");
  EXPECT_EQ(run({"HGET", "h", "f"}), "$3\r\n2.5\r\n");
  run({"SET", "str", "v"});
  EXPECT_EQ(run({"HINCRBY", "str", "n", "1"}), kWrongType);
}

TEST_F(Cmd, RandomFields) {
  run({"HSET", "h", "a", "1", "b", "2"});
  EXPECT_EQ(run({"HRANDFIELD", "nokey"}), "$-1\r\n");
  EXPECT_EQ(run({"HRANDFIELD", "nokey", "2"}), "*0\r\n");
  EXPECT_EQ(bulks(run({"HRANDFIELD", "h", "5"})), (std::multiset<std::string>{"a", "b"}));
  EXPECT_EQ(bulks(run({"HRANDFIELD", "h", "5", "WITHVALUES"})), (std::multiset<std::string>{"a", "1", "b", "2"}));
  std::string r = run({"HRANDFIELD", "h", "-3", "WITHVALUES"});
  EXPECT_EQ(r.substr(0, 4), "*6\r\n");
  EXPECT_EQ(run({"HRANDFIELD", "h", "1", "bogus"}), kSyntax);
  EXPECT_EQ(run({"HRANDFIELD", "h", "x"}), kNotInt);
  resp_ = 3;
  r = run({"HRANDFIELD", "h", "-2", "WITHVALUES"});
  EXPECT_EQ(r.substr(0, 8), "*2\r\n*2\r\n");
  EXPECT_EQ(run({"HRANDFIELD", "nokey"}), "_\r\n");
  auto one = bulks_from(run({"HRANDFIELD", "h", "1"}), 4);
  EXPECT_EQ(one.size(), 1u);
}

TEST_F(Cmd, ValuesOverTheStringCapAreRefused) {
  // Views only: the handlers must refuse on the length before reading the bytes.
  static const char small[8] = {};
  const std::string_view huge(small, store::Store::kStringBytesMax + 1);
  const std::string want = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
  for (const char* name : {"set", "getset", "setnx"}) {
    std::vector<std::string_view> argv = {name, "k", huge};
    EXPECT_EQ(exec(*find_data_command(name), argv), want) << name;
  }
  std::vector<std::string_view> mset = {"mset", "a", "1", "b", huge};
  EXPECT_EQ(exec(*find_data_command("mset"), mset), want);
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(Cmd, InPlaceEditsKeepMemcachedFlagsAndBumpCas) {
  store_.set_string("n", "1", 0, false, 42);
  store_.set_string("s", "ab", 0, false, 7);
  const uint64_t cas = store_.lookup("n", now_, store::Access::kPeek)->cas();
  EXPECT_EQ(run({"INCR", "n"}), ":2\r\n");
  EXPECT_EQ(run({"APPEND", "s", "c"}), ":3\r\n");
  EXPECT_EQ(run({"SETRANGE", "s", "0", "x"}), ":3\r\n");
  EXPECT_EQ(store_.lookup("n", now_, store::Access::kPeek)->client_flags(), 42u);
  EXPECT_GT(store_.lookup("n", now_, store::Access::kPeek)->cas(), cas);
  EXPECT_EQ(store_.lookup("s", now_, store::Access::kPeek)->client_flags(), 7u);
  EXPECT_EQ(run({"SET", "s", "new"}), "+OK\r\n");  // a whole new value resets them, as memcached's set
  EXPECT_EQ(store_.lookup("s", now_, store::Access::kPeek)->client_flags(), 0u);
}

TEST_F(Cmd, StatsCountHitsAndMisses) {
  run({"SET", "k", "v"});
  run({"GET", "k"});
  run({"GET", "nokey"});
  run({"MGET", "k", "nokey"});
  EXPECT_EQ(store_.stats().keyspace_hits, 2u);
  EXPECT_EQ(store_.stats().keyspace_misses, 2u);
}

}  // namespace
}  // namespace tally::server
