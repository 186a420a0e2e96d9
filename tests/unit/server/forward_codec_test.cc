// The forward frame's payload (docs/peer-protocol.md, type 20): requests round-trip, and payloads
// that are cut, flipped or made up (a peer that lies) are refused or decode within their bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/server/cluster_forward.h"

namespace tally::server {
namespace {

std::vector<std::string> random_argv(Rng& rng) {
  std::vector<std::string> argv(1 + rng.uniform(6));
  for (std::string& a : argv) {
    a.resize(rng.uniform(rng.chance(1, 10) ? 5000 : 20));
    for (char& c : a) c = static_cast<char>(rng.uniform(256));
  }
  return argv;
}

TEST(ForwardCodec, RequestsRoundTrip) {
  Rng rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::vector<std::string> argv = random_argv(rng);
    const std::vector<std::string_view> views(argv.begin(), argv.end());
    const uint64_t id = rng.next();
    const uint32_t p = static_cast<uint32_t>(rng.uniform(256));
    ForwardRequest got;
    bool id_read = false;
    ASSERT_TRUE(decode_forward(encode_forward(id, p, views), 256, got, id_read).is_ok());
    EXPECT_TRUE(id_read);
    EXPECT_EQ(got.id, id);
    EXPECT_EQ(got.partition, p);
    EXPECT_EQ(got.argv, argv);
  }
}

TEST(ForwardCodec, DamagedPayloadsAreRefused) {
  Rng rng(5);
  int refused = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const std::vector<std::string> argv = random_argv(rng);
    const std::vector<std::string_view> views(argv.begin(), argv.end());
    std::string payload = encode_forward(rng.next(), static_cast<uint32_t>(rng.uniform(256)), views);
    const uint64_t how = rng.uniform(3);
    if (how == 0) {
      payload.resize(rng.uniform(payload.size()));  // cut short: never parses
    } else if (how == 1) {
      payload.push_back('x');  // a byte too many: never parses
    } else {
      payload[rng.uniform(payload.size())] ^= static_cast<char>(1 + rng.uniform(255));
    }
    ForwardRequest got;
    bool id_read = false;
    const Status st = decode_forward(payload, 256, got, id_read);
    EXPECT_EQ(id_read, payload.size() >= 8);
    if (how < 2) EXPECT_FALSE(st.is_ok()) << trial;
    if (!st.is_ok()) {
      ++refused;
      continue;
    }
    // What decodes uses exactly the payload's bytes: arguments and their lengths.
    size_t bytes = 16;
    for (const std::string& a : got.argv) bytes += 4 + a.size();
    EXPECT_EQ(bytes, payload.size());
    EXPECT_LT(got.partition, 256u);
  }
  EXPECT_GT(refused, 13000);
}

TEST(ForwardCodec, LiesAboutCountsAndPartitionsAreRefused) {
  const std::vector<std::string_view> argv = {"GET", "k"};
  const std::string good = encode_forward(9, 3, argv);
  ForwardRequest got;
  bool id_read = false;
  EXPECT_FALSE(decode_forward(good, 3, got, id_read).is_ok());  // partition 3 of 3 does not exist
  EXPECT_TRUE(id_read);
  for (uint32_t argc : {0u, 3u, 1u << 20, 1u << 31}) {
    std::string bad = good;
    std::memcpy(bad.data() + 12, &argc, 4);
    EXPECT_FALSE(decode_forward(bad, 256, got, id_read).is_ok()) << argc;
  }
  std::string bad = good;
  const uint32_t huge = 1u << 30;
  std::memcpy(bad.data() + 16, &huge, 4);  // the first argument's length
  EXPECT_FALSE(decode_forward(bad, 256, got, id_read).is_ok());
  EXPECT_FALSE(decode_forward(std::string_view("short"), 256, got, id_read).is_ok());
  EXPECT_FALSE(id_read);
}

}  // namespace
}  // namespace tally::server
