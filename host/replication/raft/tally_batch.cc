// TallyBatch: one tally op for all leader groups of a node, synchronous or in two steps.
#include "host/replication/raft/tally_batch.h"

#include <algorithm>

namespace tally::raft {

size_t TallyBatch::build(std::span<RawNode* const> nodes) {
  TALLY_ASSERT(nodes.size() <= kTallyBatchGroupsMax);
  leaders_.clear();
  inputs_.clear();
  match_.clear();
  voter_mask_.clear();
  for (RawNode* n : nodes) {
    TALLY_ASSERT(n != nullptr);
    if (!n->is_leader()) continue;
    const TallyInput in = n->tally_input();
    leaders_.push_back(n);
    inputs_.push_back(in);
    match_.insert(match_.end(), in.match, in.match + kernels::kTallyReplicasMax);
    voter_mask_.push_back(in.voter_mask);
  }
  TALLY_ASSERT(match_.size() == leaders_.size() * kernels::kTallyReplicasMax);
  return leaders_.size();
}

size_t TallyBatch::apply(std::span<const uint64_t> commit) {
  TALLY_ASSERT(commit.size() == leaders_.size());
  size_t advanced = 0;
  for (size_t g = 0; g < leaders_.size(); ++g) {
    advanced += leaders_[g]->commit_to_quorum_index(inputs_[g], commit[g]) ? 1 : 0;
  }
  TALLY_ASSERT(advanced <= leaders_.size());
  return advanced;
}

size_t TallyBatch::run(std::span<RawNode* const> nodes) {
  if (build(nodes) == 0) return 0;
  commit_.resize(leaders_.size());
  quorum::committed_indexes(match_, voter_mask_, commit_);
  return apply(commit_);
}

}  // namespace tally::raft
