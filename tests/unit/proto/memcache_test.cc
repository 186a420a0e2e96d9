// McParser and memcache_writer tests: split-invariance, every op, errors and resynchronisation, limits.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/proto/memcache_parser.h"
#include "host/proto/memcache_writer.h"

namespace tally::proto {
namespace {

// A readable, comparable summary of one parsed request.
std::string describe(const McRequest& r) {
  std::string s = "op";
  s.append(std::to_string(static_cast<int>(r.op)));
  auto field = [&s](const char* label, std::string_view value) {
    s.push_back(' ');
    s.append(label);
    s.append(value);
  };
  for (auto k : r.keys) field("k=", k);
  field("f=", std::to_string(r.client_flags));
  field("e=", std::to_string(r.exptime));
  field("b=", std::to_string(r.value_bytes));
  field("c=", std::to_string(r.cas_unique));
  field("d=", std::to_string(r.delta));
  field("v=", std::to_string(r.verbosity));
  if (r.noreply) field("noreply", "");
  if (r.quiet) field("quiet", "");
  if (r.key_base64) field("b64", "");
  if (!r.value.empty()) field("value=", r.value);
  for (const auto& m : r.meta_flags) {
    field("", std::string_view(&m.flag, 1));
    s.append(m.token);
  }
  if (!r.opaque.empty()) field("O=", r.opaque);
  return s;
}

// Requests and errors in order; a closing error ends the list.
using Events = std::vector<std::string>;

// Feeds `stream` in chunks ending at `cuts`, dropping consumed() after every call as the contract says.
Events feed(std::string_view stream, const std::vector<size_t>& cuts, McLimits limits = {}) {
  McParser p(limits);
  Events events;
  std::string pending;
  McRequest req;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(stream.size());
  for (size_t end : ends) {
    if (end < from) continue;
    pending.append(stream.substr(from, end - from));
    from = end;
    while (true) {
      const ParseStatus st = p.parse(pending, req);
      EXPECT_LE(p.consumed(), pending.size());
      if (st == ParseStatus::kIncomplete) {
        pending.erase(0, p.consumed());
        break;
      }
      if (st == ParseStatus::kError) {
        events.push_back("E:" + p.error() + (p.error_closes() ? ":close" : ""));
        if (p.error_closes()) return events;
      } else {
        for (auto k : req.keys) {
          EXPECT_GE(k.data(), pending.data());
          EXPECT_LE(k.data() + k.size(), pending.data() + p.consumed());
        }
        events.push_back(describe(req));
      }
      pending.erase(0, p.consumed());
    }
  }
  return events;
}

Events feed_whole(std::string_view stream, McLimits limits = {}) { return feed(stream, {}, limits); }

std::string every_op_stream() {
  return "set k1 5 100 7\r\nva\r\nlue\r\n"
         "get k1 k2  k3\r\n"
         "gets k1\r\n"
         "gat 30 k1 k2\r\n"
         "gats -1 k1\r\n"
         "add k2 0 0 0 noreply\r\n\r\n"
         "replace k2 1 2 1\r\nx\r\n"
         "append k2 0 0 1\r\ny\r\n"
         "prepend k2 0 0 1\r\nz\r\n"
         "cas k2 0 0 2 99\r\nab\r\n"
         "delete k1\r\ndelete k1 noreply\r\ndelete k1 0\r\n"
         "incr n 5\r\ndecr n 18446744073709551615 noreply\r\n"
         "touch k2 60\r\n"
         "flush_all\r\nflush_all 10 noreply\r\n"
         "version\r\nstats\r\nstats items\r\nverbosity 1\r\n"
         "mg k1 v k t O123 q\r\n"
         "ms k3 3 T60 F5 MS\r\nabc\r\n"
         "md k3 q\r\nmn\r\nma n D3 N0\r\n"
         "mg Zm9v b v\r\n"
         "bogus\r\n"
         "set big 0 0 20\r\n01234567890123456789\r\n"
         "set k4 0 0 2\r\nabXY"
         "get after\n"
         "quit\r\n";
}

McLimits small_values() {
  McLimits l;
  l.max_value_bytes = 16;
  return l;
}

TEST(McParser, ParsesEveryOp) {
  const Events e = feed_whole(every_op_stream(), small_values());
  const Events want = {
      describe([] { McRequest r; r.op = McOp::kSet; r.keys = {"k1"}; r.client_flags = 5; r.exptime = 100;
                    r.value_bytes = 7; r.value = "va\r\nlue"; return r; }()),
      describe([] { McRequest r; r.op = McOp::kGet; r.keys = {"k1", "k2", "k3"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kGets; r.keys = {"k1"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kGat; r.exptime = 30; r.keys = {"k1", "k2"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kGats; r.exptime = -1; r.keys = {"k1"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kAdd; r.keys = {"k2"}; r.noreply = true; return r; }()),
      describe([] { McRequest r; r.op = McOp::kReplace; r.keys = {"k2"}; r.client_flags = 1; r.exptime = 2;
                    r.value_bytes = 1; r.value = "x"; return r; }()),
      describe([] { McRequest r; r.op = McOp::kAppend; r.keys = {"k2"}; r.value_bytes = 1; r.value = "y"; return r; }()),
      describe([] { McRequest r; r.op = McOp::kPrepend; r.keys = {"k2"}; r.value_bytes = 1; r.value = "z"; return r; }()),
      describe([] { McRequest r; r.op = McOp::kCas; r.keys = {"k2"}; r.value_bytes = 2; r.cas_unique = 99;
                    r.value = "ab"; return r; }()),
      describe([] { McRequest r; r.op = McOp::kDelete; r.keys = {"k1"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kDelete; r.keys = {"k1"}; r.noreply = true; return r; }()),
      describe([] { McRequest r; r.op = McOp::kDelete; r.keys = {"k1"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kIncr; r.keys = {"n"}; r.delta = 5; return r; }()),
      describe([] { McRequest r; r.op = McOp::kDecr; r.keys = {"n"}; r.delta = UINT64_MAX; r.noreply = true; return r; }()),
      describe([] { McRequest r; r.op = McOp::kTouch; r.keys = {"k2"}; r.exptime = 60; return r; }()),
      describe([] { McRequest r; r.op = McOp::kFlushAll; return r; }()),
      describe([] { McRequest r; r.op = McOp::kFlushAll; r.exptime = 10; r.noreply = true; return r; }()),
      describe([] { McRequest r; r.op = McOp::kVersion; return r; }()),
      describe([] { McRequest r; r.op = McOp::kStats; return r; }()),
      describe([] { McRequest r; r.op = McOp::kStats; r.keys = {"items"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kVerbosity; r.verbosity = 1; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaGet; r.keys = {"k1"}; r.quiet = true; r.opaque = "123";
                    r.meta_flags = {{'v', ""}, {'k', ""}, {'t', ""}, {'O', "123"}, {'q', ""}}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaSet; r.keys = {"k3"}; r.value_bytes = 3; r.value = "abc";
                    r.meta_flags = {{'T', "60"}, {'F', "5"}, {'M', "S"}}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaDelete; r.keys = {"k3"}; r.quiet = true;
                    r.meta_flags = {{'q', ""}}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaNoop; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaArithmetic; r.keys = {"n"};
                    r.meta_flags = {{'D', "3"}, {'N', "0"}}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kMetaGet; r.keys = {"Zm9v"}; r.key_base64 = true;
                    r.meta_flags = {{'b', ""}, {'v', ""}}; return r; }()),
      "E:ERROR",
      "E:SERVER_ERROR object too large for cache",
      "E:CLIENT_ERROR bad data chunk",
      describe([] { McRequest r; r.op = McOp::kGet; r.keys = {"after"}; return r; }()),
      describe([] { McRequest r; r.op = McOp::kQuit; return r; }()),
  };
  ASSERT_EQ(e.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(e[i], want[i]) << "event " << i;
}

TEST(McParser, EverySplitPointGivesTheSameRequests) {
  const std::string s = every_op_stream();
  const Events whole = feed_whole(s, small_values());
  ASSERT_EQ(whole.size(), 33u);
  for (size_t i = 0; i <= s.size(); ++i) ASSERT_EQ(feed(s, {i}, small_values()), whole) << "split at " << i;
  for (size_t i = 0; i <= s.size(); i += 17) {
    for (size_t j = i; j <= s.size(); ++j) ASSERT_EQ(feed(s, {i, j}, small_values()), whole) << i << "," << j;
  }
  std::vector<size_t> every_byte;
  for (size_t i = 1; i < s.size(); ++i) every_byte.push_back(i);
  EXPECT_EQ(feed(s, every_byte, small_values()), whole);
}

TEST(McParser, RandomStorageRoundTrips) {
  Rng rng(1126);
  for (int round = 0; round < 50; ++round) {
    std::string stream;
    Events want;
    const size_t requests = rng.range(1, 20);
    for (size_t i = 0; i < requests; ++i) {
      std::string key(rng.range(1, 250), 'k');
      for (auto& c : key) c = static_cast<char>(rng.range(33, 126));
      std::string value(rng.range(0, 600), '\0');
      for (auto& c : value) c = static_cast<char>(rng.uniform(256));
      const uint32_t flags = static_cast<uint32_t>(rng.next());
      stream += "set " + key + " " + std::to_string(flags) + " 0 " + std::to_string(value.size()) + "\r\n" +
                value + "\r\n";
      McRequest r;
      r.op = McOp::kSet;
      r.keys = {key};
      r.client_flags = flags;
      r.value_bytes = value.size();
      r.value = value;
      want.push_back(describe(r));
    }
    std::vector<size_t> cuts;
    for (size_t pos = 0; pos < stream.size(); pos += rng.range(1, 100)) cuts.push_back(pos);
    ASSERT_EQ(feed(stream, cuts), want) << "round " << round;
  }
}

TEST(McParser, GarbageGivesTheSameOutcomeHoweverSplit) {
  Rng rng(99);
  const std::vector<std::string> words = {"set ", "get ", "ms ", "mg ", "k ", "0 ", "3 ", "-1 ", "\r\n",
                                          "\n", "abc", "noreply", "cas ", "T1 ", "q ", "delete ", " "};
  for (int round = 0; round < 300; ++round) {
    std::string s;
    const size_t parts = rng.range(1, 25);
    for (size_t i = 0; i < parts; ++i) {
      if (rng.chance(1, 6)) {
        s.push_back(static_cast<char>(rng.uniform(256)));
      } else {
        s += words[rng.uniform(words.size())];
      }
    }
    const Events whole = feed_whole(s);
    std::vector<size_t> every_byte;
    for (size_t i = 1; i < s.size(); ++i) every_byte.push_back(i);
    ASSERT_EQ(feed(s, every_byte), whole) << "round " << round;
  }
}

TEST(McParser, ErrorsAndWhetherTheyResynchronise) {
  // Each bad request is followed by "mn": when the stream resynchronises, mn comes out after the error.
  const std::string mn = describe([] { McRequest r; r.op = McOp::kMetaNoop; return r; }());
  auto check = [&](const std::string& bad, const std::string& error, bool closes) {
    const Events e = feed_whole(bad + "mn\r\n");
    ASSERT_FALSE(e.empty()) << bad;
    EXPECT_EQ(e[0], "E:" + error + (closes ? ":close" : "")) << bad;
    if (closes) {
      EXPECT_EQ(e.size(), 1u) << bad;
    } else {
      ASSERT_EQ(e.size(), 2u) << bad;
      EXPECT_EQ(e[1], mn) << bad;
    }
  };
  check("\r\n", "ERROR", false);
  check("frobnicate\r\n", "ERROR", false);
  check("get\r\n", "ERROR", false);
  check("set k 0 0\r\n", "ERROR", false);
  check("set k 0 0 x\r\nabc\r\n", "CLIENT_ERROR bad command line format", true);
  check("set k 0 0 -1\r\n", "CLIENT_ERROR bad command line format", true);
  check("set k x 0 3\r\nabc\r\n", "CLIENT_ERROR bad command line format", false);
  check("set k 0 0 3 a b\r\nabc\r\n", "ERROR", false);
  check("cas k 0 0 3 x\r\nabc\r\n", "CLIENT_ERROR bad command line format", false);
  check("set " + std::string(251, 'k') + " 0 0 3\r\nabc\r\n", "CLIENT_ERROR bad command line format", false);
  check("set k 0 0 3\r\nabcXY", "CLIENT_ERROR bad data chunk", false);
  check("set k 0 0 2000000\r\n" + std::string(2000000, 'v') + "\r\n", "SERVER_ERROR object too large for cache",
        false);
  check("get " + std::string(251, 'k') + "\r\n", "CLIENT_ERROR bad command line format", false);
  check("gat x k\r\n", "CLIENT_ERROR invalid exptime argument", false);
  check("touch k x\r\n", "CLIENT_ERROR invalid exptime argument", false);
  check("incr k -1\r\n", "CLIENT_ERROR invalid numeric delta argument", false);
  check("incr k 18446744073709551616\r\n", "CLIENT_ERROR invalid numeric delta argument", false);
  check("delete k 5\r\n", "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]", false);
  check("verbosity\r\n", "ERROR", false);
  check("verbosity 1 2\r\n", "ERROR", false);
  check("mg k 1\r\n", "CLIENT_ERROR invalid flag", false);
  check("mg k v v\r\n", "CLIENT_ERROR duplicate flag", false);
  check("mg k O" + std::string(33, 'o') + "\r\n", "CLIENT_ERROR opaque token too long", false);
  check("mg Zm9v! b\r\n", "CLIENT_ERROR bad command line format", false);
  check("ms k x\r\nabc\r\n", "CLIENT_ERROR bad command line format", true);
  check("ms k 3 v v\r\nabc\r\n", "CLIENT_ERROR duplicate flag", false);
  check("ms k 2000000 T1\r\n" + std::string(2000000, 'v') + "\r\n", "SERVER_ERROR object too large for cache", false);
  check("gets " + std::string(300000, 'k'), "CLIENT_ERROR line too long", true);
  check(std::string(3000, 'x') + "\r\n", "CLIENT_ERROR line too long", true);
}

TEST(McParser, IgnoredWordsAsInMemcached) {
  // memcached 1.6.18 stores "set k 0 0 3 junk" and answers "version 2"; Tally reads them the same.
  const Events e = feed_whole("set k 0 0 3 junk\r\nabc\r\nversion 2\r\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], describe([] { McRequest r; r.op = McOp::kSet; r.keys = {"k"}; r.value_bytes = 3; r.value = "abc";
                                return r; }()));
  EXPECT_EQ(e[1], describe([] { McRequest r; r.op = McOp::kVersion; return r; }()));
}

TEST(McParser, TooLargeValueIsSwallowedAcrossReads) {
  McParser p;
  McRequest req;
  const std::string value(3 << 20, 'v');
  const std::string s = "set k 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nget k\r\n";
  std::string pending;
  std::vector<std::string> events;
  size_t max_pending = 0;
  for (size_t pos = 0; pos < s.size(); pos += 16384) {
    pending.append(s, pos, 16384);
    max_pending = std::max(max_pending, pending.size());
    while (true) {
      const ParseStatus st = p.parse(pending, req);
      const size_t used = p.consumed();
      if (st == ParseStatus::kError) events.push_back(p.error());
      if (st == ParseStatus::kOk) events.push_back(describe(req));
      pending.erase(0, used);
      if (st == ParseStatus::kIncomplete) break;
    }
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], "SERVER_ERROR object too large for cache");
  EXPECT_EQ(events[1], describe([] { McRequest r; r.op = McOp::kGet; r.keys = {"k"}; return r; }()));
  // The rejected value never accumulates: the buffer stays within a couple of reads.
  EXPECT_LE(max_pending, 2u * 16384);
}

TEST(McParser, Limits) {
  const std::string key250(250, 'k');
  EXPECT_EQ(feed_whole("get " + key250 + "\r\n").size(), 1u);
  EXPECT_EQ(feed_whole("mg " + key250 + " v\r\n")[0].substr(0, 5), "op20 ");

  const std::string value(1 << 20, 'v');
  const Events ok = feed_whole("set k 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].substr(0, 3), "op5");
  EXPECT_EQ(feed_whole("set k 0 0 " + std::to_string(value.size() + 1) + "\r\n" + value + "v\r\n"),
            Events{"E:SERVER_ERROR object too large for cache"});

  std::string get = "get";
  for (int i = 0; i < 1024; ++i) get += " k" + std::to_string(i);
  EXPECT_EQ(feed_whole(get + "\r\n").size(), 1u);
  EXPECT_EQ(feed_whole(get + " one_more\r\n"), Events{"E:CLIENT_ERROR bad command line format"});

  // A 1 MB key cannot be sent: the line bound closes the connection before it is buffered.
  EXPECT_EQ(feed_whole("get " + std::string(1 << 20, 'k') + "\r\n"), Events{"E:CLIENT_ERROR line too long:close"});
  McLimits few_flags;
  few_flags.max_meta_flags = 2;
  EXPECT_EQ(feed_whole("mg k v t\r\n", few_flags).size(), 1u);
  EXPECT_EQ(feed_whole("mg k v t s\r\n", few_flags), Events{"E:CLIENT_ERROR bad command line format"});
}

TEST(McParser, LineBoundDoesNotDependOnSplits) {
  McLimits limits;
  limits.max_line_bytes = 64;
  for (size_t len : {63u, 64u, 65u}) {
    const std::string s = "stats " + std::string(len - 6, 'a') + "\r\nmn\r\n";
    const Events whole = feed_whole(s, limits);
    EXPECT_EQ(whole.size(), len <= 64 ? 2u : 1u) << len;
    for (size_t i = 0; i <= s.size(); ++i) EXPECT_EQ(feed(s, {i}, limits), whole) << len << " at " << i;
  }
}

TEST(McParser, NulBytesInKeysAndLoneNewlines) {
  const std::string key("a\0b", 3);
  const Events e = feed_whole("get " + key + "\nmn\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], describe([&] { McRequest r; r.op = McOp::kGet; r.keys = {key}; return r; }()));
  EXPECT_EQ(feed_whole("\n"), Events{"E:ERROR"});
}

TEST(McParser, HintCoversTheDataBlock) {
  McParser p;
  McRequest req;
  const std::string line = "set k 0 0 1000\r\n";
  ASSERT_EQ(p.parse(line, req), ParseStatus::kIncomplete);
  EXPECT_EQ(p.bytes_needed_hint(), line.size() + 1002);
  EXPECT_EQ(p.consumed(), 0u);
}

TEST(McWriter, TextReplies) {
  std::string out;
  mc_value(out, "k", 7, std::string("a\0\r\n", 4));
  mc_value_cas(out, "k2", 0, "", 42);
  mc_end(out);
  mc_status(out, McStatus::kStored);
  mc_status(out, McStatus::kNotStored);
  mc_status(out, McStatus::kExists);
  mc_status(out, McStatus::kNotFound);
  mc_status(out, McStatus::kDeleted);
  mc_status(out, McStatus::kTouched);
  mc_status(out, McStatus::kOk);
  mc_number(out, UINT64_MAX);
  mc_error(out, "CLIENT_ERROR bad\r\nthing");
  mc_stat(out, "pid", 12);
  mc_stat(out, "version", "1.6");
  mc_version(out, "tally-0.1");
  EXPECT_EQ(out, std::string("VALUE k 7 4\r\na\0\r\n\r\n", 19) +
                     "VALUE k2 0 0 42\r\n\r\nEND\r\nSTORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\n"
                     "DELETED\r\nTOUCHED\r\nOK\r\n18446744073709551615\r\nCLIENT_ERROR bad  thing\r\n"
                     "STAT pid 12\r\nSTAT version 1.6\r\nVERSION tally-0.1\r\n");
}

TEST(McWriter, MetaReplies) {
  McMetaFlags f;
  EXPECT_TRUE(f.add('k', "key"));
  EXPECT_TRUE(f.add('c', uint64_t{77}));
  EXPECT_TRUE(f.add_signed('t', -1));
  EXPECT_TRUE(f.add('O', "op1"));
  EXPECT_TRUE(f.add('W'));
  std::string out;
  mc_meta_value(out, "hello", f);
  mc_meta_status(out, McMetaCode::kHD, f);
  McMetaFlags none;
  mc_meta_status(out, McMetaCode::kEN, none);
  mc_meta_status(out, McMetaCode::kNF, none);
  mc_meta_status(out, McMetaCode::kNS, none);
  mc_meta_status(out, McMetaCode::kEX, none);
  mc_meta_status(out, McMetaCode::kMN, f);
  EXPECT_EQ(out,
            "VA 5 kkey c77 t-1 Oop1 W\r\nhello\r\nHD kkey c77 t-1 Oop1 W\r\nEN\r\nNF\r\nNS\r\nEX\r\nMN\r\n");

  McMetaFlags bad;
  EXPECT_FALSE(bad.add('k', "a b"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.str(), "");
  McMetaFlags full;
  const std::string big(300, 'x');
  EXPECT_TRUE(full.add('k', big));
  EXPECT_TRUE(full.add('O', big));
  EXPECT_FALSE(full.add('a', big));
  EXPECT_LE(full.str().size(), McMetaFlags::kBytesMax);
}

}  // namespace
}  // namespace tally::proto
