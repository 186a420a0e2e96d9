// Reply::encode / Reply::decode (replies that cross to another node): random replies round-trip to the
// same RESP2 and RESP3 bytes, and images that are cut, flipped or made up are refused or decode to a
// well-formed reply, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "host/common/rng.h"
#include "host/proto/reply.h"
#include "host/proto/reply_value.h"
#include "tests/support/random_reply.h"

namespace tally::proto {
namespace {

std::string resp(const Reply& r, int version) {
  std::string out;
  ReplyWriter w(out, version);
  r.write_resp(w);
  return out;
}

TEST(ReplyCodec, RandomRepliesRoundTrip) {
  Rng rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    Reply r;
    const size_t values = 1 + rng.uniform(3);
    for (size_t v = 0; v < values; ++v) test::random_reply_value(rng, r);
    std::string image;
    r.encode(image);
    Reply back;
    ASSERT_TRUE(Reply::decode(image, back)) << trial;
    EXPECT_EQ(back.size(), r.size());
    EXPECT_EQ(back.top_level_count(), values);
    EXPECT_EQ(resp(back, 2), resp(r, 2)) << trial;
    EXPECT_EQ(resp(back, 3), resp(r, 3)) << trial;
  }
}

TEST(ReplyCodec, DamagedImagesAreRefusedOrWellFormed) {
  Rng rng(11);
  int refused = 0, decoded = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    Reply r;
    test::random_reply_value(rng, r);
    std::string image;
    r.encode(image);
    switch (rng.uniform(4)) {
      case 0: image.resize(rng.uniform(image.size())); break;                       // cut short
      case 1: image[rng.uniform(image.size())] ^= static_cast<char>(1 + rng.uniform(255)); break;  // a flipped byte
      case 2: image.push_back(static_cast<char>(rng.uniform(256))); break;          // a byte too many
      default:                                                                     // made up
        image.resize(rng.uniform(64));
        for (char& c : image) c = static_cast<char>(rng.uniform(256));
    }
    Reply back;
    if (!Reply::decode(image, back)) {
      EXPECT_TRUE(back.empty());
      ++refused;
      continue;
    }
    ++decoded;
    // Well formed: every container's elements are there, so encoding it walks exactly its nodes.
    size_t i = 0;
    while (i < back.size()) i = back.skip(i);
    EXPECT_EQ(i, back.size());
    (void)resp(back, 3);
  }
  EXPECT_GT(refused, 10000);
  EXPECT_GT(decoded, 100);  // flips inside string bytes still decode
}

TEST(ReplyCodec, CountsThatLieAreRefused) {
  Reply r;
  r.array(2);
  r.bulk("a");
  r.bulk("b");
  std::string image;
  r.encode(image);
  // The array's count (after the 4-byte node count and the 2-byte head) claims 3 elements, then 2^40.
  for (uint64_t lie : {uint64_t{3}, uint64_t{1} << 40, ~uint64_t{0}}) {
    std::string bad = image;
    std::memcpy(bad.data() + 6, &lie, 8);
    Reply back;
    EXPECT_FALSE(Reply::decode(bad, back)) << lie;
  }
  // A node count far beyond the bytes that follow.
  std::string bad = image;
  const uint32_t many = 1u << 30;
  std::memcpy(bad.data(), &many, 4);
  Reply back;
  EXPECT_FALSE(Reply::decode(bad, back));
  EXPECT_FALSE(Reply::decode("", back));
}

}  // namespace
}  // namespace tally::proto
