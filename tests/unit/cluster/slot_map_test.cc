#include "host/cluster/slot_map.h"

#include <gtest/gtest.h>

#include <set>

#include "host/server/server.h"

namespace tally::cluster {
namespace {

NodeRecord node(char fill, uint16_t port) {
  NodeRecord n;
  n.id = std::string(kNodeIdLength, fill);
  n.host = "10.0.0." + std::string(1, fill);
  n.port = port;
  n.bus_port = static_cast<uint16_t>(port + 10000);
  return n;
}

TEST(SlotMap, OneNodeServesEverySlotAsOneRange) {
  SlotMap m = SlotMap::single_node(node('a', 7000));
  ASSERT_TRUE(m.validate().is_ok());
  EXPECT_EQ(m.epoch(), 1u);
  EXPECT_EQ(m.assigned_slots(), kSlots);
  for (uint32_t s : {0u, 1u, 8191u, 16383u}) EXPECT_EQ(m.owner(s), 0u);
  EXPECT_EQ(m.owner(kSlots), SlotMap::kUnassigned);
  auto r = m.ranges();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, 0u);
  EXPECT_EQ(r[0].last, 16383u);
}

TEST(SlotMap, RangesAreMaximalRunsInSlotOrder) {
  std::vector<NodeRecord> nodes = {node('a', 7000), node('b', 7001)};
  // Given out of order and split, adjacent runs of one node must come back merged.
  SlotMap m(3, nodes, {{100, 199, 1}, {0, 49, 0}, {50, 99, 0}, {200, 16383, 0}});
  ASSERT_TRUE(m.validate().is_ok()) << m.validate().message();
  auto r = m.ranges();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ((std::vector<uint32_t>{r[0].first, r[0].last, r[0].node}), (std::vector<uint32_t>{0, 99, 0}));
  EXPECT_EQ((std::vector<uint32_t>{r[1].first, r[1].last, r[1].node}), (std::vector<uint32_t>{100, 199, 1}));
  EXPECT_EQ((std::vector<uint32_t>{r[2].first, r[2].last, r[2].node}), (std::vector<uint32_t>{200, 16383, 0}));
  EXPECT_EQ(m.find(std::string(kNodeIdLength, 'b')), 1u);
  EXPECT_EQ(m.find("nobody"), SlotMap::kUnassigned);
}

TEST(SlotMap, UnassignedSlotsAreLeftOutAndCounted) {
  SlotMap m(1, {node('a', 7000)}, {{0, 99, 0}, {200, 299, 0}});
  ASSERT_TRUE(m.validate().is_ok());
  EXPECT_EQ(m.assigned_slots(), 200u);
  EXPECT_EQ(m.owner(150), SlotMap::kUnassigned);
  EXPECT_EQ(m.ranges().size(), 2u);
}

TEST(SlotMap, BadMapsAreRefusedWithTheReason) {
  EXPECT_NE(SlotMap(1, {node('a', 7000)}, {{0, 16384, 0}}).validate().message().find("outside"), std::string::npos);
  EXPECT_NE(SlotMap(1, {node('a', 7000)}, {{0, 10, 1}}).validate().message().find("names node"), std::string::npos);
  EXPECT_NE(SlotMap(1, {node('a', 7000), node('b', 7001)}, {{0, 10, 0}, {10, 20, 1}}).validate().message().find("twice"),
            std::string::npos);
  EXPECT_NE(SlotMap(1, {node('a', 7000), node('a', 7001)}, {}).validate().message().find("appears twice"),
            std::string::npos);
  NodeRecord upper = node('a', 7000);
  upper.id[3] = 'A';
  EXPECT_FALSE(SlotMap(1, {upper}, {}).validate().is_ok());
  EXPECT_FALSE(SlotMap(1, {node('a', 0)}, {}).validate().is_ok());
  EXPECT_FALSE(SlotMap(0, {node('a', 7000)}, {}).validate().is_ok());
}

TEST(NodeId, FortyLowerCaseHexCharactersThatDifferBySeed) {
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    const std::string id = make_node_id(seed);
    ASSERT_TRUE(valid_node_id(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(make_node_id(42), make_node_id(42));
  EXPECT_FALSE(valid_node_id(std::string(39, 'a')));
  EXPECT_FALSE(valid_node_id(std::string(40, 'g')));
}

TEST(Moved, NamesTheSlotAndTheServingNode) {
  server::ClusterView v{SlotMap(2, {node('a', 7000), node('b', 7001)}, {{0, 8191, 0}, {8192, 16383, 1}}), 0};
  EXPECT_EQ(server::moved_error(v, 12182), "MOVED 12182 10.0.0.b:7001");
  EXPECT_EQ(server::moved_error(v, 0), "MOVED 0 10.0.0.a:7000");
  server::ClusterView gap{SlotMap(2, {node('a', 7000)}, {{0, 10, 0}}), 0};
  EXPECT_EQ(server::moved_error(gap, 11), "CLUSTERDOWN Hash slot not served");
}

}  // namespace
}  // namespace tally::cluster
