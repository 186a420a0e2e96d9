#include <gtest/gtest.h>

#include <string>

#include "host/common/rng.h"
#include "host/common/status.h"
#include "host/proto/reply.h"
#include "kernels/cpu/slot.h"

namespace tally {
namespace {

TEST(Slot, MatchesRedisClusterKnownValues) {
  // Values from the Redis Cluster specification's reference examples.
  EXPECT_EQ(kernels::crc16_xmodem("123456789", 9), 0x31C3);
  EXPECT_EQ(kernels::key_slot("foo"), 12182u);
  EXPECT_EQ(kernels::key_slot("{user1000}.following"), kernels::key_slot("user1000"));
  EXPECT_EQ(kernels::key_slot("foo{}{bar}"), kernels::key_slot("foo{}{bar}"));
  EXPECT_EQ(kernels::hash_tag("foo{}{bar}"), "foo{}{bar}");
  EXPECT_EQ(kernels::hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(kernels::hash_tag("foo{bar}{zap}"), "bar");
}

TEST(Slot, EightBytesAtATimeEqualsTheBytewiseCrc) {
  Rng rng(7);
  std::string key;
  for (size_t len = 0; len < 300; ++len) {
    key.resize(len);
    for (int round = 0; round < 4; ++round) {
      for (char& c : key) c = static_cast<char>(rng.next());
      ASSERT_EQ(kernels::crc16_xmodem(key.data(), key.size()), kernels::crc16_xmodem_bytewise(key.data(), key.size()))
          << "length " << len;
    }
  }
  static_assert(kernels::crc16_xmodem("123456789", 9) == 0x31C3);
}

TEST(Rng, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= (x != c.next());
    EXPECT_LT(a.uniform(10), 10u);
    b.uniform(10);
    c.uniform(10);
  }
  EXPECT_TRUE(differs);
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = Status::invalid("bad");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.to_string(), "InvalidArgument: bad");
  Result<int> r(5);
  EXPECT_TRUE(r.is_ok());
  EXPECT_EQ(*r, 5);
  Result<int> e(Status::not_found("k"));
  EXPECT_EQ(e.status().code(), Code::kNotFound);
}

TEST(Reply, Resp2AndResp3Forms) {
  std::string out;
  proto::ReplyWriter w(out, 2);
  w.null();
  w.map(1);
  w.boolean(true);
  w.dbl(1.5);
  EXPECT_EQ(out, "$-1\r\n*2\r\n:1\r\n$3\r\n1.5\r\n");
  out.clear();
  w.set_resp(3);
  w.null();
  w.map(1);
  w.boolean(true);
  w.dbl(1.5);
  w.error("ERR a\r\nb");
  EXPECT_EQ(out, "_\r\n%1\r\n#t\r\n,1.5\r\n-ERR a  b\r\n");
}

}  // namespace
}  // namespace tally
