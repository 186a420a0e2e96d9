// tally reference: Raft commit index per group (shared tally_commit_cpu) and newest-of-R replies.
#include "kernels/cpu/reference.h"

namespace tally::kernels {

void tally_cpu(const TallyBatch& b) {
  TALLY_ASSERT(b.groups <= kBatchItemsMax && b.reads <= kBatchItemsMax);
  if (b.groups > 0) tally_commit_cpu(b.match, b.voter_mask, b.groups, b.commit_out);
  for (uint32_t q = 0; q < b.reads; ++q) {
    const uint32_t mask = b.reply_mask[q];
    TALLY_ASSERT((mask >> kTallyReplicasMax) == 0);
    const uint64_t base = uint64_t{q} * kTallyReplicasMax;
    uint8_t newest = kNoReplica;
    for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
      if (!(mask & (1u << r))) continue;
      const bool greater = newest == kNoReplica || b.reply_hlc[base + r] > b.reply_hlc[base + newest] ||
                           (b.reply_hlc[base + r] == b.reply_hlc[base + newest] &&
                            b.reply_node[base + r] > b.reply_node[base + newest]);
      if (greater) newest = static_cast<uint8_t>(r);
    }
    uint32_t stale = 0;
    if (newest != kNoReplica) {
      for (uint32_t r = 0; r < kTallyReplicasMax; ++r) {
        if (!(mask & (1u << r))) continue;
        const bool equal = b.reply_hlc[base + r] == b.reply_hlc[base + newest] &&
                           b.reply_node[base + r] == b.reply_node[base + newest];
        if (!equal) stale |= 1u << r;
      }
    }
    b.newest_out[q] = newest;
    b.stale_out[q] = stale;
  }
}

}  // namespace tally::kernels
