// TallyBatch: one tally_commit_cpu call for all leader groups of a node.
#include "host/replication/raft/tally_batch.h"

#include <algorithm>

namespace tally::raft {

size_t TallyBatch::run(std::span<RawNode* const> nodes) {
  TALLY_ASSERT(nodes.size() <= kTallyBatchGroupsMax);
  leaders_.clear();
  match_.clear();
  voter_mask_.clear();
  for (RawNode* n : nodes) {
    TALLY_ASSERT(n != nullptr);
    if (!n->is_leader()) continue;
    const TallyInput in = n->tally_input();
    leaders_.push_back(n);
    match_.insert(match_.end(), in.match, in.match + kernels::kTallyReplicasMax);
    voter_mask_.push_back(in.voter_mask);
  }
  commit_.resize(leaders_.size());
  if (leaders_.empty()) return 0;
  kernels::tally_commit_cpu(match_.data(), voter_mask_.data(), leaders_.size(), commit_.data());
  size_t advanced = 0;
  for (size_t g = 0; g < leaders_.size(); ++g) advanced += leaders_[g]->commit_to_quorum_index(commit_[g]) ? 1 : 0;
  TALLY_ASSERT(advanced <= leaders_.size());
  return advanced;
}

}  // namespace tally::raft
