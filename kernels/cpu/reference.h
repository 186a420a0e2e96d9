// CPU reference of the five offload ops: the oracle every other backend is compared with.
// Pure functions over the views of formats.h; validate_* reports malformed batches as Status.
#pragma once

#include <cstdint>
#include <string_view>

#include "host/common/status.h"
#include "kernels/cpu/formats.h"

namespace tally::kernels {

// CRC32C of one buffer with the standard conventions ("123456789" -> 0xE3069283), via ISA-L.
uint32_t crc32c(const uint8_t* data, uint64_t bytes);
// Key hash for merkle leaves and callers that need one (XXH3-64 of the key bytes).
uint64_t key_hash(std::string_view key);

// Bounds and index checks; a batch that passes never makes a backend read or write out of range.
Status validate(const Batch& batch);
Status validate_checksum(const ChecksumBatch& b);
Status validate_partition(const PartitionBatch& b);
Status validate_resolve(const ResolveBatch& b);
Status validate_tally(const TallyBatch& b);
Status validate_merkle(const MerkleBatch& b);

// References: batches must have passed validate. [first, last) selects items so a thread pool can
// split one batch; the whole batch is [0, items).
void checksum_cpu(const ChecksumBatch& b, uint32_t first, uint32_t last);
// Validation fused into the checksum loop (one pass over offsets and lengths instead of two): the CPU
// backend's path for inline batches. On an invalid range, returns kInvalidArgument with outputs partial.
Status checksum_cpu_checked(const ChecksumBatch& b);
void partition_cpu(const PartitionBatch& b, uint32_t first, uint32_t last);
void tally_cpu(const TallyBatch& b);
void resolve_lww_cpu(const LwwBatch& b);
void resolve_pn_counter_cpu(const PnCounterBatch& b);
void resolve_or_set_cpu(const OrSetBatch& b);
void resolve_cpu(const ResolveBatch& b);
void merkle_build_cpu(const MerkleBuildBatch& b);
// Recomputes the inner nodes of one heap-ordered tree (merkle_tree_words(depth) words) from its
// buckets: what a build does after summing the leaves, and what adding two trees' buckets needs.
void merkle_rebuild_inner(uint64_t* tree, uint32_t depth);
void merkle_diff_cpu(const MerkleDiffBatch& b);
void merkle_cpu(const MerkleBatch& b);

// Runs any batch on the calling thread.
Status run_reference(const Batch& batch);
// The same for a batch that has already passed validate() (drivers validate once, at submit).
void run_reference_validated(const Batch& batch);

}  // namespace tally::kernels
