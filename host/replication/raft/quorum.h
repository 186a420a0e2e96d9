// The majority rule of a Raft group, in one place: the value a majority of voters has reached
// (the commit index from match indexes, the confirmed heartbeat round from acknowledgements)
// and the outcome of a vote. Pure functions; the core, TallyBatch and the tally op share them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "host/replication/raft/types.h"
#include "kernels/cpu/tally_commit.h"

namespace tally::raft {

// Per-replica values in replica slots (replicas sorted by node id, learners included), with a
// bit per voter. This is the `tally` offload op's input: match indexes for the commit rule.
// `term` and `conf_version` say where it was taken: a tally computed asynchronously is applied
// only if the leader is still in that term and configuration (RawNode::commit_to_quorum_index).
struct TallyInput {
  uint64_t match[kernels::kTallyReplicasMax] = {};
  uint32_t voter_mask = 0;
  Term term = 0;
  uint64_t conf_version = 0;
};

namespace quorum {

// Voters needed for a majority of `voters`.
inline size_t majority(size_t voters) { return voters / 2 + 1; }

// The largest value that a majority of the voters in `voter_mask` has reached (0 without voters):
// the `tally` op's commit rule, kernels::tally_commit_cpu on one group.
uint64_t majority_value(const uint64_t (&values)[kernels::kTallyReplicasMax], uint32_t voter_mask);

// The largest log index a majority of voters holds.
inline Index committed_index(const TallyInput& in) { return majority_value(in.match, in.voter_mask); }

// The same for a batch of groups in structure-of-arrays form (TallyBatch): kTallyReplicasMax
// match slots per group, one voter mask and one result per group.
void committed_indexes(std::span<const uint64_t> match, std::span<const uint32_t> voter_mask,
                       std::span<uint64_t> commit);

enum class VoteResult : uint8_t { kPending, kWon, kLost };

// An election (or a check-quorum round) among `voters` with `granted` yes and `rejected` no.
VoteResult vote_result(size_t voters, size_t granted, size_t rejected);

}  // namespace quorum
}  // namespace tally::raft
