// Batch formats of the five offload ops: structure of arrays, offsets into one blob, sized for DMA.
// Every backend (CPU reference, CUDA, Thrust/OpenMP, fpga_sim, xrt) reads and writes exactly these views.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/hd.h"
#include "kernels/cpu/tally_commit.h"

namespace tally::kernels {

enum class Op : uint8_t { kChecksum = 0, kPartition, kResolve, kTally, kMerkle };
inline constexpr size_t kOpCount = 5;
const char* op_name(Op op);

// Hard bounds every backend must accept; a driver may advertise smaller ones in its capabilities.
inline constexpr uint32_t kBatchItemsMax = 1u << 20;           // items (ranges, keys, versions, groups, leaves)
inline constexpr uint64_t kBatchBlobBytesMax = 1ull << 30;     // bytes in one blob
inline constexpr uint32_t kChecksumItemBytesMax = 1u << 24;    // one range
inline constexpr uint32_t kKeyBytesMax = 1u << 16;             // one key (partition)
inline constexpr uint32_t kResolveKeysMax = 1u << 20;          // distinct keys in one resolve batch
inline constexpr uint32_t kCrdtNodesMax = 8;                   // node slots of a PN-counter / version vector
inline constexpr uint32_t kMerkleDepthMax = 16;                // 2^depth leaf buckets per partition
inline constexpr uint32_t kMerklePartitionsMax = 4096;
inline constexpr uint32_t kNoSource = 0xffffffffu;             // "the current version stays"
inline constexpr uint8_t kNoReplica = 0xff;

// ---- checksum: CRC32C (Castagnoli, reflected, init ~0, final xor ~0) of N byte ranges.
// Range i is blob[offsets[i] .. offsets[i] + lengths[i]); ranges may overlap or leave gaps.
struct ChecksumBatch {
  const uint8_t* blob = nullptr;
  uint64_t blob_bytes = 0;
  const uint64_t* offsets = nullptr;  // [items]
  const uint32_t* lengths = nullptr;  // [items]
  uint32_t items = 0;
  uint32_t* crc_out = nullptr;        // [items]
};

// ---- partition: slot = CRC16/XMODEM(hash tag of key) mod 16384, then partition = slot_to_partition[slot].
struct PartitionBatch {
  const uint8_t* blob = nullptr;
  uint64_t blob_bytes = 0;
  const uint64_t* offsets = nullptr;            // [items] key start in blob
  const uint32_t* lengths = nullptr;            // [items] key bytes (<= kKeyBytesMax)
  uint32_t items = 0;
  const uint32_t* slot_to_partition = nullptr;  // [kSlotCount]
  uint16_t* slot_out = nullptr;                 // [items]
  uint32_t* partition_out = nullptr;            // [items]
};

// ---- resolve: merge N incoming versions into K current versions, three CRDT forms.
enum class ResolveKind : uint8_t { kLww = 0, kPnCounter, kOrSet };

// LWW register: the version with the greatest (hlc, node) wins. Ties keep the current version; among
// equal incoming versions the lowest index wins. source_out[k] = winning incoming index or kNoSource.
struct LwwBatch {
  uint32_t keys = 0;
  const uint64_t* current_hlc = nullptr;   // [keys]
  const uint32_t* current_node = nullptr;  // [keys]
  uint32_t items = 0;
  const uint32_t* key_index = nullptr;     // [items] < keys, any order
  const uint64_t* hlc = nullptr;           // [items]
  const uint32_t* node = nullptr;          // [items]
  uint64_t* hlc_out = nullptr;             // [keys]
  uint32_t* node_out = nullptr;            // [keys]
  uint32_t* source_out = nullptr;          // [keys]
};

// PN-counter: per key and node slot, P and N only grow; merge is the slot-wise maximum.
// p[k * kCrdtNodesMax + s]; value_out[k] = sum(P) - sum(N) of the merged state (wrapping int64).
struct PnCounterBatch {
  uint32_t keys = 0;
  const uint64_t* current_p = nullptr;  // [keys * kCrdtNodesMax]
  const uint64_t* current_n = nullptr;  // [keys * kCrdtNodesMax]
  uint32_t items = 0;
  const uint32_t* key_index = nullptr;  // [items]
  const uint64_t* p = nullptr;          // [items * kCrdtNodesMax]
  const uint64_t* n = nullptr;          // [items * kCrdtNodesMax]
  uint64_t* p_out = nullptr;            // [keys * kCrdtNodesMax]
  uint64_t* n_out = nullptr;            // [keys * kCrdtNodesMax]
  int64_t* value_out = nullptr;         // [keys]
};

// Add-wins OR-set with version vectors: each side (0 = current, 1 = incoming) of key k holds live
// entries (element hash, dot = (node, seq)) and a version vector vv[side][k * kCrdtNodesMax + node].
// An entry survives the merge when the other side holds the same (key, element, dot), or when the
// other side has not seen the dot (vv_other[node] < seq). keep_out[e] = 1 for survivors; an entry
// present on both sides is kept once, on the current side.
struct OrSetBatch {
  uint32_t keys = 0;
  const uint64_t* current_vv = nullptr;   // [keys * kCrdtNodesMax]
  const uint64_t* incoming_vv = nullptr;  // [keys * kCrdtNodesMax]
  uint32_t items = 0;
  const uint32_t* key_index = nullptr;    // [items]
  const uint64_t* element = nullptr;      // [items] element hash
  const uint8_t* dot_node = nullptr;      // [items] < kCrdtNodesMax
  const uint64_t* dot_seq = nullptr;      // [items] >= 1
  const uint8_t* side = nullptr;          // [items] 0 current, 1 incoming
  uint8_t* keep_out = nullptr;            // [items]
};

struct ResolveBatch {
  ResolveKind kind = ResolveKind::kLww;
  LwwBatch lww;
  PnCounterBatch pn;
  OrSetBatch orset;
  uint32_t items() const {
    switch (kind) {
      case ResolveKind::kLww: return lww.items;
      case ResolveKind::kPnCounter: return pn.items;
      case ResolveKind::kOrSet: return orset.items;
    }
    return 0;
  }
};

// ---- tally: commit index per Raft group (see tally_commit.h) and newest version among R replies.
// Commit: match[g * kTallyReplicasMax + r], voter_mask[g] -> commit_out[g].
// Read: reply_hlc/reply_node[q * kTallyReplicasMax + r] for replies with bit r of reply_mask[q];
// newest_out[q] = replica index of the greatest (hlc, node) (lowest index on ties, kNoReplica if no
// reply), stale_out[q] = mask of replies older than the newest.
struct TallyBatch {
  uint32_t groups = 0;
  const uint64_t* match = nullptr;       // [groups * kTallyReplicasMax]
  const uint32_t* voter_mask = nullptr;  // [groups]
  uint64_t* commit_out = nullptr;        // [groups]
  uint32_t reads = 0;
  const uint64_t* reply_hlc = nullptr;   // [reads * kTallyReplicasMax]
  const uint32_t* reply_node = nullptr;  // [reads * kTallyReplicasMax]
  const uint32_t* reply_mask = nullptr;  // [reads]
  uint8_t* newest_out = nullptr;         // [reads]
  uint32_t* stale_out = nullptr;         // [reads]
  uint32_t items() const { return groups + reads; }
};

// ---- merkle: per partition, a complete binary tree over 2^depth buckets of (key hash, version hash)
// leaves. Leaf i goes to bucket key_hash >> (64 - depth) of partition leaf_partition[i]; a bucket's
// hash is the wrapping sum of merkle_leaf(key_hash, version_hash) (order-independent); an inner node
// is merkle_node(left, right). Tree p is stored heap-ordered in tree_out[p * 2^(depth+1) + j]: j = 1
// is the root, 2j and 2j+1 the children, buckets at j = 2^depth + b; j = 0 holds the leaf count.
struct MerkleBuildBatch {
  uint32_t partitions = 0;
  uint32_t depth = 0;                        // 1 .. kMerkleDepthMax
  uint32_t items = 0;
  const uint32_t* leaf_partition = nullptr;  // [items] < partitions
  const uint64_t* key_hash = nullptr;        // [items]
  const uint64_t* version_hash = nullptr;    // [items]
  uint64_t* tree_out = nullptr;              // [partitions * 2^(depth+1)]
};

// Diff of two trees of the same shape: for each partition, the buckets whose hashes differ, found by
// descending only into differing nodes. diff_count_out[p] counts them; the first diff_max of them
// (ascending) go to diff_out[p * diff_max ...]; the unused slots of diff_out are set to kNoSource.
struct MerkleDiffBatch {
  uint32_t partitions = 0;
  uint32_t depth = 0;
  const uint64_t* tree_a = nullptr;  // [partitions * 2^(depth+1)]
  const uint64_t* tree_b = nullptr;
  uint32_t diff_max = 0;             // per partition
  uint32_t* diff_out = nullptr;      // [partitions * diff_max]
  uint32_t* diff_count_out = nullptr;  // [partitions]
};

struct MerkleBatch {
  bool is_diff = false;
  MerkleBuildBatch build;
  MerkleDiffBatch diff;
  uint32_t items() const { return is_diff ? diff.partitions : build.items; }
};

TALLY_HD inline constexpr uint64_t merkle_tree_words(uint32_t depth) { return uint64_t{2} << depth; }

// One batch of any op, as handed to a Device. Pointers are host memory owned by the submitter and
// must stay valid until the batch completes.
struct Batch {
  Op op = Op::kChecksum;
  ChecksumBatch checksum;
  PartitionBatch partition;
  ResolveBatch resolve;
  TallyBatch tally;
  MerkleBatch merkle;
  // Inline: the scheduler and the drivers ask on every batch.
  uint32_t items() const {
    switch (op) {
      case Op::kChecksum: return checksum.items;
      case Op::kPartition: return partition.items;
      case Op::kResolve: return resolve.items();
      case Op::kTally: return tally.items();
      case Op::kMerkle: return merkle.items();
    }
    return 0;
  }
  // Bytes a backend must move to see the inputs: for checksum and partition the offsets, lengths and
  // the whole blob (not the sum of the ranges: the blob is staged in one copy).
  uint64_t input_bytes() const;
};

}  // namespace tally::kernels
