// Batch bookkeeping shared by all backends: names, sizes, validation and the reference dispatcher.
#include <string>

#include "kernels/cpu/reference.h"
#include "kernels/cpu/slot.h"

namespace tally::kernels {

const char* op_name(Op op) {
  switch (op) {
    case Op::kChecksum: return "checksum";
    case Op::kPartition: return "partition";
    case Op::kResolve: return "resolve";
    case Op::kTally: return "tally";
    case Op::kMerkle: return "merkle";
  }
  return "?";
}

uint64_t Batch::input_bytes() const {
  switch (op) {
    // The whole blob moves, whatever ranges it holds (a device stages it in one copy), so this is
    // O(1): the scheduler asks on every batch.
    case Op::kChecksum:
      return uint64_t{checksum.items} * (sizeof(uint64_t) + sizeof(uint32_t)) + checksum.blob_bytes;
    case Op::kPartition:
      return uint64_t{partition.items} * (sizeof(uint64_t) + sizeof(uint32_t)) + partition.blob_bytes;
    case Op::kResolve:
      switch (resolve.kind) {
        case ResolveKind::kLww: return uint64_t{resolve.lww.keys} * 12 + uint64_t{resolve.lww.items} * 16;
        case ResolveKind::kPnCounter:
          return (uint64_t{resolve.pn.keys} + resolve.pn.items) * 16 * kCrdtNodesMax + resolve.pn.items * 4ull;
        case ResolveKind::kOrSet:
          return uint64_t{resolve.orset.keys} * 16 * kCrdtNodesMax + uint64_t{resolve.orset.items} * 22;
      }
      return 0;
    case Op::kTally:
      return uint64_t{tally.groups} * (8 * kTallyReplicasMax + 4) + uint64_t{tally.reads} * (12 * kTallyReplicasMax + 4);
    case Op::kMerkle:
      if (merkle.is_diff) return 2 * uint64_t{merkle.diff.partitions} * merkle_tree_words(merkle.diff.depth) * 8;
      return uint64_t{merkle.build.items} * 20;
  }
  return 0;
}

namespace {
Status check_ranges(const uint8_t* blob, uint64_t blob_bytes, const uint64_t* offsets,
                    const uint32_t* lengths, uint32_t items, uint32_t item_bytes_max, const char* what) {
  if (items > kBatchItemsMax) return Status::invalid(std::string(what) + ": too many items");
  if (blob_bytes > kBatchBlobBytesMax) return Status::invalid(std::string(what) + ": blob too large");
  if (items > 0 && (offsets == nullptr || lengths == nullptr)) return Status::invalid(std::string(what) + ": missing arrays");
  if (blob == nullptr && blob_bytes > 0) return Status::invalid(std::string(what) + ": missing blob");
  for (uint32_t i = 0; i < items; ++i) {
    if (lengths[i] > item_bytes_max) return Status::invalid(std::string(what) + ": item too long");
    if (offsets[i] > blob_bytes || blob_bytes - offsets[i] < lengths[i]) {
      return Status::invalid(std::string(what) + ": range " + std::to_string(i) + " outside the blob");
    }
  }
  return Status::ok();
}

// True when any array is missing: a batch with n > 0 entries needs every array it names.
template <typename... Ptrs>
bool missing(uint64_t n, const Ptrs*... arrays) {
  return n > 0 && ((arrays == nullptr) || ...);
}

Status check_keys(const uint32_t* key_index, uint32_t items, uint32_t keys) {
  if (keys > kResolveKeysMax || items > kBatchItemsMax) return Status::invalid("resolve: batch too large");
  for (uint32_t i = 0; i < items; ++i) {
    if (key_index[i] >= keys) return Status::invalid("resolve: key index out of range");
  }
  return Status::ok();
}
}  // namespace

Status validate_checksum(const ChecksumBatch& b) {
  TALLY_RETURN_IF_ERROR(check_ranges(b.blob, b.blob_bytes, b.offsets, b.lengths, b.items,
                                     kChecksumItemBytesMax, "checksum"));
  if (b.items > 0 && b.crc_out == nullptr) return Status::invalid("checksum: missing output");
  return Status::ok();
}

Status validate_partition(const PartitionBatch& b) {
  TALLY_RETURN_IF_ERROR(check_ranges(b.blob, b.blob_bytes, b.offsets, b.lengths, b.items, kKeyBytesMax, "partition"));
  if (b.slot_to_partition == nullptr) return Status::invalid("partition: missing slot map");
  if (b.items > 0 && (b.slot_out == nullptr || b.partition_out == nullptr)) return Status::invalid("partition: missing output");
  return Status::ok();
}

Status validate_resolve(const ResolveBatch& b) {
  switch (b.kind) {
    case ResolveKind::kLww: {
      const LwwBatch& l = b.lww;
      if (missing(l.keys, l.current_hlc, l.current_node, l.hlc_out, l.node_out, l.source_out) ||
          missing(l.items, l.key_index, l.hlc, l.node)) {
        return Status::invalid("resolve: missing arrays");
      }
      TALLY_RETURN_IF_ERROR(check_keys(l.key_index, l.items, l.keys));
      return Status::ok();
    }
    case ResolveKind::kPnCounter: {
      const PnCounterBatch& c = b.pn;
      if (missing(c.keys, c.current_p, c.current_n, c.p_out, c.n_out, c.value_out) ||
          missing(c.items, c.key_index, c.p, c.n)) {
        return Status::invalid("resolve: missing arrays");
      }
      TALLY_RETURN_IF_ERROR(check_keys(c.key_index, c.items, c.keys));
      return Status::ok();
    }
    case ResolveKind::kOrSet: {
      const OrSetBatch& s = b.orset;
      if (missing(s.keys, s.current_vv, s.incoming_vv) ||
          missing(s.items, s.key_index, s.element, s.dot_node, s.dot_seq, s.side, s.keep_out)) {
        return Status::invalid("resolve: missing arrays");
      }
      TALLY_RETURN_IF_ERROR(check_keys(s.key_index, s.items, s.keys));
      for (uint32_t i = 0; i < s.items; ++i) {
        if (s.dot_node[i] >= kCrdtNodesMax || s.side[i] > 1 || s.dot_seq[i] == 0) {
          return Status::invalid("resolve: bad or-set entry " + std::to_string(i));
        }
      }
      return Status::ok();
    }
  }
  return Status::invalid("resolve: unknown kind");
}

Status validate_tally(const TallyBatch& b) {
  if (b.groups > kBatchItemsMax || b.reads > kBatchItemsMax) return Status::invalid("tally: batch too large");
  if (missing(b.groups, b.match, b.voter_mask, b.commit_out) ||
      missing(b.reads, b.reply_hlc, b.reply_node, b.reply_mask, b.newest_out, b.stale_out)) {
    return Status::invalid("tally: missing arrays");
  }
  for (uint32_t q = 0; q < b.reads; ++q) {
    if (b.reply_mask[q] >> kTallyReplicasMax) return Status::invalid("tally: reply mask beyond replica slots");
  }
  for (uint32_t g = 0; g < b.groups; ++g) {
    if (b.voter_mask[g] >> kTallyReplicasMax) return Status::invalid("tally: voter mask beyond replica slots");
  }
  return Status::ok();
}

Status validate_merkle(const MerkleBatch& m) {
  const uint32_t depth = m.is_diff ? m.diff.depth : m.build.depth;
  const uint32_t partitions = m.is_diff ? m.diff.partitions : m.build.partitions;
  if (depth < 1 || depth > kMerkleDepthMax) return Status::invalid("merkle: depth out of range");
  if (partitions > kMerklePartitionsMax) return Status::invalid("merkle: too many partitions");
  if (m.is_diff) {
    if (uint64_t{m.diff.partitions} * m.diff.diff_max > kBatchItemsMax) return Status::invalid("merkle: diff output too large");
    if (missing(m.diff.partitions, m.diff.tree_a, m.diff.tree_b, m.diff.diff_count_out) ||
        missing(uint64_t{m.diff.partitions} * m.diff.diff_max, m.diff.diff_out)) {
      return Status::invalid("merkle: missing arrays");
    }
    return Status::ok();
  }
  if (m.build.items > kBatchItemsMax) return Status::invalid("merkle: too many leaves");
  if (missing(m.build.partitions, m.build.tree_out) ||
      missing(m.build.items, m.build.leaf_partition, m.build.key_hash, m.build.version_hash)) {
    return Status::invalid("merkle: missing arrays");
  }
  for (uint32_t i = 0; i < m.build.items; ++i) {
    if (m.build.leaf_partition[i] >= m.build.partitions) return Status::invalid("merkle: leaf partition out of range");
  }
  return Status::ok();
}

Status validate(const Batch& batch) {
  switch (batch.op) {
    case Op::kChecksum: return validate_checksum(batch.checksum);
    case Op::kPartition: return validate_partition(batch.partition);
    case Op::kResolve: return validate_resolve(batch.resolve);
    case Op::kTally: return validate_tally(batch.tally);
    case Op::kMerkle: return validate_merkle(batch.merkle);
  }
  return Status::invalid("unknown op");
}

Status run_reference(const Batch& batch) {
  TALLY_RETURN_IF_ERROR(validate(batch));
  run_reference_validated(batch);
  return Status::ok();
}

void run_reference_validated(const Batch& batch) {
  switch (batch.op) {
    case Op::kChecksum: checksum_cpu(batch.checksum, 0, batch.checksum.items); break;
    case Op::kPartition: partition_cpu(batch.partition, 0, batch.partition.items); break;
    case Op::kResolve: resolve_cpu(batch.resolve); break;
    case Op::kTally: tally_cpu(batch.tally); break;
    case Op::kMerkle: merkle_cpu(batch.merkle); break;
  }
}

}  // namespace tally::kernels
