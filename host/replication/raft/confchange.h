// Membership arithmetic: the configuration after a single-server change, and sorted id sets.
// Pure functions over ConfState; the core's membership.cc applies the results.
#pragma once

#include <vector>

#include "host/replication/raft/types.h"

namespace tally::raft {

bool contains(const std::vector<NodeId>& sorted, NodeId n);
void insert_sorted(std::vector<NodeId>& sorted, NodeId n);
void erase_sorted(std::vector<NodeId>& sorted, NodeId n);

// Voters and learners sorted and deduplicated.
ConfState normalized(std::vector<NodeId> voters, std::vector<NodeId> learners);
// The membership after one single-server change.
ConfState conf_after_change(ConfState cs, const ConfChange& cc);
// Every replica (voters and learners), sorted by node id: the order of tally slots.
std::vector<NodeId> replicas_of(const ConfState& cs);

}  // namespace tally::raft
