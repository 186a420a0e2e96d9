// Membership arithmetic on sorted node-id sets.
#include "host/replication/raft/confchange.h"

#include <algorithm>

namespace tally::raft {

bool contains(const std::vector<NodeId>& sorted, NodeId n) { return std::binary_search(sorted.begin(), sorted.end(), n); }

void insert_sorted(std::vector<NodeId>& sorted, NodeId n) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), n);
  if (it == sorted.end() || *it != n) sorted.insert(it, n);
}

void erase_sorted(std::vector<NodeId>& sorted, NodeId n) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), n);
  if (it != sorted.end() && *it == n) sorted.erase(it);
}

ConfState normalized(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  std::sort(voters.begin(), voters.end());
  voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
  std::sort(learners.begin(), learners.end());
  learners.erase(std::unique(learners.begin(), learners.end()), learners.end());
  return ConfState{std::move(voters), std::move(learners)};
}

ConfState conf_after_change(ConfState cs, const ConfChange& cc) {
  switch (cc.type) {
    case ConfChangeType::kAddVoter:
      erase_sorted(cs.learners, cc.node);
      insert_sorted(cs.voters, cc.node);
      break;
    case ConfChangeType::kAddLearner:
      erase_sorted(cs.voters, cc.node);
      insert_sorted(cs.learners, cc.node);
      break;
    case ConfChangeType::kRemoveNode:
      erase_sorted(cs.voters, cc.node);
      erase_sorted(cs.learners, cc.node);
      break;
  }
  return cs;
}

std::vector<NodeId> replicas_of(const ConfState& cs) {
  std::vector<NodeId> all = cs.voters;
  all.insert(all.end(), cs.learners.begin(), cs.learners.end());
  std::sort(all.begin(), all.end());
  return all;
}

}  // namespace tally::raft
