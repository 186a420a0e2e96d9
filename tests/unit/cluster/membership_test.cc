#include "host/cluster/membership.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "host/common/rng.h"

#include "host/cluster/slot_map.h"

namespace tally::cluster {
namespace {

Membership three(uint64_t self = 1) {
  Membership m;
  m.self = self;
  m.replicas = 3;
  for (uint64_t i = 1; i <= 3; ++i) {
    m.nodes.push_back(MemberNode{i, make_node_id(i), "127.0.0.1", static_cast<uint16_t>(7000 + i),
                                 static_cast<uint16_t>(17000 + i), {}, {}});
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
  for (uint64_t i = 1; i <= 5; ++i) m.nodes.push_back(MemberNode{i, make_node_id(i), "h", 1, 2, {}, {}});
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

Membership labelled(const std::vector<std::pair<std::string, std::string>>& labels, uint32_t replicas) {
  Membership m;
  m.replicas = replicas;
  m.self = 1;
  for (uint64_t i = 1; i <= labels.size(); ++i) {
    MemberNode n{i, make_node_id(i), "h", 1, 2, {}, {}};
    n.zone = labels[i - 1].first;
    n.rack = labels[i - 1].second;
    m.nodes.push_back(n);
  }
  return m;
}

TEST(Membership, WithoutLabelsPlacementIsTheFormationOrder) {
  // Clusters formed before labels existed keep their placement: consecutive numbers from p mod N.
  Membership m = labelled({{"", ""}, {"", ""}, {"", ""}, {"", ""}, {"", ""}}, 3);
  for (uint32_t p = 0; p < 64; ++p) {
    std::vector<uint64_t> want;
    for (uint32_t k = 0; k < 3; ++k) want.push_back((p + k) % 5 + 1);
    std::sort(want.begin(), want.end());
    EXPECT_EQ(m.replicas_of(p), want) << p;
  }
}

TEST(Membership, ReplicasSpreadOverZonesAndRacks) {
  // Zones given in formation order a, a, b, b (the unlabelled order would put partitions 0 and 2 on
  // one zone only): every partition gets one replica in each zone.
  Membership two = labelled({{"a", ""}, {"a", ""}, {"b", ""}, {"b", ""}}, 2);
  ASSERT_TRUE(two.validate().is_ok());
  for (uint32_t p = 0; p < 256; ++p) {
    const auto r = two.replicas_of(p);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_NE(two.node(r[0])->zone, two.node(r[1])->zone) << p;
  }
  // Random clusters: Z zones of equal size, R <= Z replicas: R distinct zones per partition, an equal
  // share per node; racks inside a zone interleave too.
  Rng rng(9);
  for (int round = 0; round < 500; ++round) {
    const size_t zones = 1 + rng.uniform(4), per_zone = 1 + rng.uniform(4);
    const uint32_t replicas = static_cast<uint32_t>(1 + rng.uniform(std::min<size_t>(zones, kReplicasMax)));
    std::vector<std::pair<std::string, std::string>> labels;
    for (size_t z = 0; z < zones; ++z) {
      for (size_t k = 0; k < per_zone; ++k) {
        labels.emplace_back(std::string(1, static_cast<char>('a' + z)), rng.uniform(2) == 0 ? "r0" : "r1");
      }
    }
    // Shuffle the formation order: placement must not depend on it.
    for (size_t i = labels.size(); i > 1; --i) std::swap(labels[i - 1], labels[rng.uniform(i)]);
    Membership m = labelled(labels, replicas);
    ASSERT_TRUE(m.validate().is_ok());
    const auto ring = m.placement_ring();
    ASSERT_EQ(ring.size(), labels.size());
    ASSERT_EQ(std::set<uint64_t>(ring.begin(), ring.end()).size(), labels.size());
    std::map<uint64_t, int> share;
    const uint32_t partitions = static_cast<uint32_t>(labels.size()) * 16;
    for (uint32_t p = 0; p < partitions; ++p) {
      const auto r = m.replicas_of(p);
      std::set<std::string> seen;
      for (uint64_t n : r) {
        seen.insert(m.node(n)->zone);
        ++share[n];
      }
      ASSERT_EQ(seen.size(), replicas) << "partition " << p << " of round " << round;
    }
    for (const auto& [n, count] : share) EXPECT_EQ(count, static_cast<int>(16 * replicas)) << n;
  }
}

TEST(Membership, LabelsRoundTripAndOldFilesStillParse) {
  Membership m = labelled({{"eu-1", "r1"}, {"eu-2", ""}, {"", "r9"}}, 3);
  ASSERT_TRUE(m.validate().is_ok());
  auto back = Membership::parse(m.serialize());
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->serialize(), m.serialize());
  EXPECT_EQ(back->node(1)->zone, "eu-1");
  EXPECT_EQ(back->node(1)->rack, "r1");
  EXPECT_EQ(back->node(3)->rack, "r9");
  EXPECT_TRUE(back->node(3)->zone.empty());
  const std::string old = three().serialize();  // no labels: the lines of the first format
  EXPECT_EQ(old.find("zone="), std::string::npos);
  ASSERT_TRUE(Membership::parse(old).is_ok());
  EXPECT_FALSE(Membership::parse(old + "node = 4 " + make_node_id(4) + " h 1 2 color=red\n").is_ok());
  Membership bad = labelled({{"a b", ""}}, 1);
  EXPECT_FALSE(bad.validate().is_ok());
  EXPECT_FALSE(valid_label(""));
  EXPECT_FALSE(valid_label(std::string(65, 'a')));
  EXPECT_TRUE(valid_label("rack-7.b_2"));
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
