// The commit half of the `tally` operation, shared by the Raft core and the offload engine:
// per group, the largest log index that a majority of voters has replicated.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace tally::kernels {

// Replica slots per group in a tally batch: up to 7 voters plus learners fit in 8 slots.
inline constexpr uint32_t kTallyReplicasMax = 8;

// One batch in structure-of-arrays form: match[g * kTallyReplicasMax + r] is replica r's match index
// in group g; bit r of voter_mask[g] says whether replica r votes. Writes commit[g] for every group:
// the largest index that more than half of the voters have (0 when the group has no voters).
inline void tally_commit_cpu(const uint64_t* match, const uint32_t* voter_mask, size_t groups,
                             uint64_t* commit) {
  for (size_t g = 0; g < groups; ++g) {
    uint64_t v[kTallyReplicasMax];
    uint32_t n = 0;
    const uint32_t mask = voter_mask[g];
    for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
      if (mask & (1u << r)) v[n++] = match[g * kTallyReplicasMax + r];
    }
    if (n == 0) {
      commit[g] = 0;
      continue;
    }
    // The (n/2)-th largest value is held by a majority: sort descending, take index n/2.
    std::sort(v, v + n, [](uint64_t a, uint64_t b) { return a > b; });
    commit[g] = v[n / 2];
  }
}

}  // namespace tally::kernels
