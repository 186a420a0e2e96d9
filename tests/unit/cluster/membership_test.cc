#include "host/cluster/membership.h"

#include <gtest/gtest.h>

#include <map>

#include "host/cluster/slot_map.h"

namespace tally::cluster {
namespace {

Membership three(uint64_t self = 1) {
  Membership m;
  m.self = self;
  m.replicas = 3;
  for (uint64_t i = 1; i <= 3; ++i) {
    m.nodes.push_back(MemberNode{i, make_node_id(i), "127.0.0.1", static_cast<uint16_t>(7000 + i),
                                 static_cast<uint16_t>(17000 + i)});
  }
  return m;
}

TEST(Membership, RoundTripsThroughItsFile) {
  const Membership m = three(2);
  ASSERT_TRUE(m.validate().is_ok());
  auto back = Membership::parse(m.serialize());
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->serialize(), m.serialize());
  EXPECT_EQ(back->self, 2u);
  EXPECT_EQ(back->node(3)->peer_port, 17003);
  EXPECT_EQ(back->node(4), nullptr);
}

TEST(Membership, EveryNodeHoldsAnEqualShareAndEachPartitionHasItsReplicaCount) {
  Membership m;
  m.replicas = 3;
  m.self = 1;
  for (uint64_t i = 1; i <= 5; ++i) m.nodes.push_back(MemberNode{i, make_node_id(i), "h", 1, 2});
  ASSERT_TRUE(m.validate().is_ok());
  std::map<uint64_t, int> share;
  for (uint32_t p = 0; p < 256; ++p) {
    const auto r = m.replicas_of(p);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_TRUE(std::is_sorted(r.begin(), r.end()));
    EXPECT_TRUE(std::adjacent_find(r.begin(), r.end()) == r.end());
    for (uint64_t n : r) ++share[n];
  }
  for (uint64_t n = 1; n <= 5; ++n) EXPECT_NEAR(share[n], 256 * 3 / 5, 2) << "node " << n;
  EXPECT_EQ(three().replicas_of(7), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(three().holds(7));
}

TEST(Membership, BadFilesAndBadClustersAreRefused) {
  EXPECT_FALSE(Membership::parse("").is_ok());
  EXPECT_FALSE(Membership::parse("format = 2\n").is_ok());
  std::string text = three().serialize();
  EXPECT_FALSE(Membership::parse(text + "color = 3\n").is_ok());
  EXPECT_FALSE(Membership::parse(text + "node = 4 " + make_node_id(4) + " h 1\n").is_ok());
  Membership m = three();
  m.self = 4;
  EXPECT_FALSE(m.validate().is_ok());
  m = three();
  m.replicas = 4;
  EXPECT_FALSE(m.validate().is_ok());
  m = three();
  m.nodes[1].id = m.nodes[0].id;
  EXPECT_FALSE(m.validate().is_ok());
  m = three();
  m.nodes[2].number = 5;
  EXPECT_FALSE(m.validate().is_ok());
  m = three();
  m.nodes[0].peer_port = 0;
  EXPECT_FALSE(m.validate().is_ok());
}

}  // namespace
}  // namespace tally::cluster
