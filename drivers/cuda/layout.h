// Where each array of a batch goes in a staging buffer: one walk over a batch's pointer fields, used
// to size a batch, to copy its inputs in and to point a device view at the staged copies.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/formats.h"
#include "kernels/cpu/slot.h"

namespace tally::drivers::layout {

// Calls place(pointer_field, bytes, is_output) for every array of the batch, inputs before outputs
// within each op; place may rewrite the pointer (to relocate the batch into another address space).
template <typename Place>
void for_each_array(kernels::Batch& b, Place&& place) {
  using namespace kernels;
  switch (b.op) {
    case Op::kChecksum: {
      ChecksumBatch& c = b.checksum;
      place(c.blob, c.blob_bytes, false);
      place(c.offsets, c.items * sizeof(uint64_t), false);
      place(c.lengths, c.items * sizeof(uint32_t), false);
      place(c.crc_out, c.items * sizeof(uint32_t), true);
      return;
    }
    case Op::kPartition: {
      PartitionBatch& p = b.partition;
      place(p.blob, p.blob_bytes, false);
      place(p.offsets, p.items * sizeof(uint64_t), false);
      place(p.lengths, p.items * sizeof(uint32_t), false);
      place(p.slot_to_partition, kSlotCount * sizeof(uint32_t), false);
      place(p.slot_out, p.items * sizeof(uint16_t), true);
      place(p.partition_out, p.items * sizeof(uint32_t), true);
      return;
    }
    case Op::kResolve: {
      ResolveBatch& r = b.resolve;
      const uint64_t nodes = kCrdtNodesMax;
      if (r.kind == ResolveKind::kLww) {
        LwwBatch& l = r.lww;
        place(l.current_hlc, l.keys * 8ull, false);
        place(l.current_node, l.keys * 4ull, false);
        place(l.key_index, l.items * 4ull, false);
        place(l.hlc, l.items * 8ull, false);
        place(l.node, l.items * 4ull, false);
        place(l.hlc_out, l.keys * 8ull, true);
        place(l.node_out, l.keys * 4ull, true);
        place(l.source_out, l.keys * 4ull, true);
      } else if (r.kind == ResolveKind::kPnCounter) {
        PnCounterBatch& p = r.pn;
        place(p.current_p, p.keys * nodes * 8, false);
        place(p.current_n, p.keys * nodes * 8, false);
        place(p.key_index, p.items * 4ull, false);
        place(p.p, p.items * nodes * 8, false);
        place(p.n, p.items * nodes * 8, false);
        place(p.p_out, p.keys * nodes * 8, true);
        place(p.n_out, p.keys * nodes * 8, true);
        place(p.value_out, p.keys * 8ull, true);
      } else {
        OrSetBatch& s = r.orset;
        place(s.current_vv, s.keys * nodes * 8, false);
        place(s.incoming_vv, s.keys * nodes * 8, false);
        place(s.key_index, s.items * 4ull, false);
        place(s.element, s.items * 8ull, false);
        place(s.dot_node, s.items * 1ull, false);
        place(s.dot_seq, s.items * 8ull, false);
        place(s.side, s.items * 1ull, false);
        place(s.keep_out, s.items * 1ull, true);
      }
      return;
    }
    case Op::kTally: {
      TallyBatch& t = b.tally;
      place(t.match, t.groups * uint64_t{kTallyReplicasMax} * 8, false);
      place(t.voter_mask, t.groups * 4ull, false);
      place(t.reply_hlc, t.reads * uint64_t{kTallyReplicasMax} * 8, false);
      place(t.reply_node, t.reads * uint64_t{kTallyReplicasMax} * 4, false);
      place(t.reply_mask, t.reads * 4ull, false);
      place(t.commit_out, t.groups * 8ull, true);
      place(t.newest_out, t.reads * 1ull, true);
      place(t.stale_out, t.reads * 4ull, true);
      return;
    }
    case Op::kMerkle: {
      MerkleBatch& m = b.merkle;
      if (m.is_diff) {
        MerkleDiffBatch& d = m.diff;
        const uint64_t tree_bytes = d.partitions * merkle_tree_words(d.depth) * 8;
        place(d.tree_a, tree_bytes, false);
        place(d.tree_b, tree_bytes, false);
        place(d.diff_out, uint64_t{d.partitions} * d.diff_max * 4, true);
        place(d.diff_count_out, d.partitions * 4ull, true);
      } else {
        MerkleBuildBatch& k = m.build;
        place(k.leaf_partition, k.items * 4ull, false);
        place(k.key_hash, k.items * 8ull, false);
        place(k.version_hash, k.items * 8ull, false);
        place(k.tree_out, k.partitions * merkle_tree_words(k.depth) * 8, true);
      }
      return;
    }
  }
}

}  // namespace tally::drivers::layout
