// The hot commands (GET, SET, INCR, MGET, MSET) must not allocate when they overwrite values
// of the same size: counts operator new calls around the handlers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "host/proto/reply.h"
#include "host/server/commands/command.h"
#include "host/store/store.h"

namespace {
std::atomic<uint64_t> g_news{0};
}  // namespace

void* operator new(size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace tally::server {
namespace {

// Runs one command as a session does (a reused reply value, then RESP encoding) and counts the
// allocations of both steps.
uint64_t news_during(store::Store& s, std::string& buf, std::vector<std::string_view> argv) {
  static proto::Reply reply;
  const CommandSpec* spec = find_data_command(argv[0]);
  TALLY_ASSERT(spec != nullptr);
  buf.clear();
  const uint64_t before = g_news.load();
  reply.clear();
  ExecContext ctx{s, reply, 1'700'000'000'000ULL};
  spec->handler(ctx, argv);
  proto::ReplyWriter w(buf, 2);
  reply.write_resp(w);
  return g_news.load() - before;
}

TEST(HotPath, SteadyStateCommandsDoNotAllocate) {
  store::Store s;
  std::string buf;
  buf.reserve(1 << 16);
  news_during(s, buf, {"SET", "key:0001", "value-0001", "EX", "100"});
  news_during(s, buf, {"SET", "counter", "100"});
  news_during(s, buf, {"MSET", "a", "1", "b", "2"});
  news_during(s, buf, {"MGET", "a", "b", "missing"});  // grows the reused reply once
  EXPECT_EQ(news_during(s, buf, {"GET", "key:0001"}), 0u);
  EXPECT_EQ(buf, "$10\r\nvalue-0001\r\n");
  EXPECT_EQ(news_during(s, buf, {"SET", "key:0001", "value-0002", "EX", "200"}), 0u);
  EXPECT_EQ(buf, "+OK\r\n");
  EXPECT_EQ(news_during(s, buf, {"INCR", "counter"}), 0u);
  EXPECT_EQ(buf, ":101\r\n");
  EXPECT_EQ(news_during(s, buf, {"INCRBY", "counter", "5"}), 0u);
  EXPECT_EQ(news_during(s, buf, {"MGET", "a", "b", "missing"}), 0u);
  EXPECT_EQ(buf, "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
  EXPECT_EQ(news_during(s, buf, {"MSET", "a", "3", "b", "4"}), 0u);
  EXPECT_EQ(news_during(s, buf, {"GET", "b"}), 0u);
  EXPECT_EQ(buf, "$1\r\n4\r\n");
}

}  // namespace
}  // namespace tally::server
