// Node-level commit tally: gathers the (match[], voter_mask) inputs of many Raft groups into one
// structure-of-arrays batch, runs the `tally` op once, and hands each group its result.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "host/replication/raft/raft.h"

namespace tally::raft {

// Groups in one tally batch; a node with more groups runs several batches.
inline constexpr size_t kTallyBatchGroupsMax = 1u << 16;

// Reusable buffers, sized once to the largest batch seen (no allocation in steady state).
// Not thread-safe; the RawNodes must outlive a batch between build() and apply().
class TallyBatch {
 public:
  // Tallies every leader among `nodes` (followers are skipped) on the CPU and commits where the
  // quorum index allows: build(), tally_commit_cpu, apply(). Returns how many groups advanced.
  size_t run(std::span<RawNode* const> nodes);

  // The same in two steps, for a backend that runs the tally asynchronously: build() gathers
  // every leader's input (returns how many groups the batch holds); the backend computes one
  // commit index per group from match() and voter_mask(); apply() hands them back, possibly
  // much later. A group whose leader changed term or configuration meanwhile ignores its result.
  size_t build(std::span<RawNode* const> nodes);
  size_t apply(std::span<const uint64_t> commit);

  // The batch as last built: structure of arrays, kTallyReplicasMax slots per group.
  const std::vector<uint64_t>& match() const { return match_; }
  const std::vector<uint32_t>& voter_mask() const { return voter_mask_; }
  size_t groups() const { return leaders_.size(); }

 private:
  std::vector<RawNode*> leaders_;
  std::vector<TallyInput> inputs_;
  std::vector<uint64_t> match_;
  std::vector<uint32_t> voter_mask_;
  std::vector<uint64_t> commit_;
};

}  // namespace tally::raft
