// Node-level commit tally: gathers the (match[], voter_mask) inputs of many Raft groups into one
// structure-of-arrays batch, runs the `tally` op's CPU path once, and hands each group its result.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "host/replication/raft/raft.h"

namespace tally::raft {

// Groups in one tally batch; a node with more groups runs several batches.
inline constexpr size_t kTallyBatchGroupsMax = 1u << 16;

// Reusable buffers, sized once to the largest batch seen (no allocation in steady state).
class TallyBatch {
 public:
  // Tallies every leader among `nodes` (followers are skipped) and commits where the quorum index
  // allows. Returns how many groups advanced their commit index. nodes.size() <= kTallyBatchGroupsMax.
  size_t run(std::span<RawNode* const> nodes);

  // The batch as last built: structure of arrays, kTallyReplicasMax slots per group. An offload
  // backend can take these arrays instead of run()'s CPU call.
  const std::vector<uint64_t>& match() const { return match_; }
  const std::vector<uint32_t>& voter_mask() const { return voter_mask_; }

 private:
  std::vector<RawNode*> leaders_;
  std::vector<uint64_t> match_;
  std::vector<uint32_t> voter_mask_;
  std::vector<uint64_t> commit_;
};

}  // namespace tally::raft
