// The majority rule: one implementation (the tally op's), used for commits, reads and votes.
#include "host/replication/raft/quorum.h"

#include "host/common/assert.h"

namespace tally::raft::quorum {

// GCC 12 inlines the kernel's sort for one group and then warns about indexes it cannot reach
// (n <= kTallyReplicasMax by construction): a known false positive of -Warray-bounds.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
uint64_t majority_value(const uint64_t (&values)[kernels::kTallyReplicasMax], uint32_t voter_mask) {
  TALLY_ASSERT((voter_mask >> kernels::kTallyReplicasMax) == 0);
  uint64_t out = 0;
  kernels::tally_commit_cpu(values, &voter_mask, 1, &out);
  return out;
}

void committed_indexes(std::span<const uint64_t> match, std::span<const uint32_t> voter_mask,
                       std::span<uint64_t> commit) {
  TALLY_ASSERT(voter_mask.size() == commit.size());
  TALLY_ASSERT(match.size() == commit.size() * kernels::kTallyReplicasMax);
  if (commit.empty()) return;
  kernels::tally_commit_cpu(match.data(), voter_mask.data(), commit.size(), commit.data());
}
#pragma GCC diagnostic pop

VoteResult vote_result(size_t voters, size_t granted, size_t rejected) {
  if (granted >= majority(voters)) return VoteResult::kWon;
  if (rejected >= majority(voters)) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace tally::raft::quorum
