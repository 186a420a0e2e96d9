// Shared helpers for the Raft unit tests: small clusters with a settled leader.
#pragma once

#include <gtest/gtest.h>

#include "tests/unit/raft/harness.h"

namespace tally::raft::testing {

inline Config test_config() {
  Config c;
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  return c;
}

inline std::vector<NodeId> range_ids(NodeId n) {
  std::vector<NodeId> v;
  for (NodeId i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

// n voters, node 1 elected by an explicit campaign and everything settled.
inline void start_cluster(Cluster& c, NodeId n, const Config& base = test_config()) {
  c.add_nodes(range_ids(n), range_ids(n), {}, base);
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  ASSERT_EQ(c.raw(1).role(), Role::kLeader);
}

// Elects `id` by exchanging only campaign traffic, so its no-op is appended but not yet replicated.
inline void elect_without_commit(Cluster& c, NodeId id) {
  std::set<NodeId> others;
  for (NodeId n : c.ids()) {
    if (n != id) others.insert(n);
  }
  ASSERT_TRUE(c.raw(id).campaign().is_ok());
  for (int round = 0; round < 4 && !c.raw(id).is_leader(); ++round) {
    c.stabilize({id}, nullptr);
    c.deliver(others, {}, nullptr);
    c.stabilize(others, nullptr);
    c.deliver({id}, {}, nullptr);
  }
  ASSERT_TRUE(c.raw(id).is_leader());
}

}  // namespace tally::raft::testing
