// render_memcache_reply: replies in memcached's words, the server's own refusals as SERVER_ERROR, and
// replies of any shape (a forwarded command's reply comes from another member, which may lie)
// rendered as an error line rather than read out of bounds.
#include <gtest/gtest.h>

#include <string>

#include "host/common/rng.h"
#include "host/proto/memcache_parser.h"
#include "host/server/memcache_session.h"
#include "tests/support/random_reply.h"

namespace tally::server {
namespace {

using proto::McOp;
using proto::McRequest;
using proto::Reply;

std::string render(const McRequest& req, const Reply& r) {
  std::string out;
  render_memcache_reply(req, r, out);
  return out;
}

McRequest request(McOp op, std::vector<std::string_view> keys = {"k"}) {
  McRequest req;
  req.op = op;
  req.keys = std::move(keys);
  return req;
}

void record(Reply& r, std::string_view value) {
  r.array(5);
  r.integer(7);   // flags
  r.integer(42);  // cas
  r.integer(-1);  // ttl
  r.integer(static_cast<int64_t>(value.size()));
  r.bulk(value);
}

TEST(MemcacheRender, RepliesAndRefusals) {
  Reply r;
  r.array(2);
  record(r, "abc");
  r.null();
  EXPECT_EQ(render(request(McOp::kGets, {"a", "b"}), r), "VALUE a 7 3 42\r\nabc\r\nEND\r\n");
  r.clear();
  r.error("TRYAGAIN no answer from the partition's leader");
  EXPECT_EQ(render(request(McOp::kGet), r), "SERVER_ERROR TRYAGAIN no answer from the partition's leader\r\n");
  r.clear();
  r.error("CLIENT_ERROR bad command line format");
  EXPECT_EQ(render(request(McOp::kSet), r), "CLIENT_ERROR bad command line format\r\n");
  r.clear();
  r.error("OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_EQ(render(request(McOp::kSet), r), "SERVER_ERROR out of memory storing object\r\n");
  // A get whose reply names fewer keys than asked, and a record with a string where a number goes.
  r.clear();
  r.array(1);
  record(r, "abc");
  EXPECT_EQ(render(request(McOp::kGet, {"a", "b"}), r).rfind("SERVER_ERROR malformed reply", 0), 0u);
  r.clear();
  r.array(1);
  r.array(5);
  r.bulk("x");
  r.integer(1);
  r.integer(1);
  r.integer(1);
  r.bulk("v");
  EXPECT_EQ(render(request(McOp::kGet), r).rfind("SERVER_ERROR malformed reply", 0), 0u);
}

TEST(MemcacheRender, RepliesOfAnyShapeNeverCrash) {
  Rng rng(13);
  const McOp ops[] = {McOp::kGet, McOp::kGets, McOp::kGat, McOp::kGats, McOp::kSet, McOp::kAdd, McOp::kCas,
                      McOp::kDelete, McOp::kTouch, McOp::kIncr, McOp::kDecr, McOp::kMetaGet, McOp::kMetaSet,
                      McOp::kMetaDelete, McOp::kMetaArithmetic};
  int malformed = 0;
  for (int trial = 0; trial < 30000; ++trial) {
    Reply r;
    // Mostly plausible shapes: an array of records and other values, or a few values side by side.
    if (rng.uniform(2) == 0) {
      const size_t n = rng.uniform(4);
      r.array(n);
      for (size_t i = 0; i < n; ++i) {
        if (rng.uniform(2) == 0) {
          record(r, "value");
        } else {
          test::random_reply_value(rng, r);
        }
      }
    } else {
      for (size_t v = 0; v < 1 + rng.uniform(3); ++v) test::random_reply_value(rng, r);
    }
    McRequest req = request(ops[rng.uniform(std::size(ops))], {"a", "b", "c"});
    req.keys.resize(1 + rng.uniform(3));
    const std::string out = render(req, r);
    if (out.rfind("SERVER_ERROR malformed reply", 0) == 0) ++malformed;
  }
  EXPECT_GT(malformed, 1000);
}

}  // namespace
}  // namespace tally::server
