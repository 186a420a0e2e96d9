// merkle reference: per-partition trees over hashed (key, version) leaves, and the diff of two trees.
#include <cstring>

#include "kernels/cpu/mix.h"
#include "kernels/cpu/reference.h"

namespace tally::kernels {

void merkle_build_cpu(const MerkleBuildBatch& b) {
  TALLY_ASSERT(b.depth >= 1 && b.depth <= kMerkleDepthMax);
  TALLY_ASSERT(b.partitions <= kMerklePartitionsMax);
  const uint64_t words = merkle_tree_words(b.depth);
  const uint64_t buckets = uint64_t{1} << b.depth;
  if (b.partitions > 0) std::memset(b.tree_out, 0, b.partitions * words * sizeof(uint64_t));
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint32_t p = b.leaf_partition[i];
    TALLY_ASSERT(p < b.partitions);
    uint64_t* tree = b.tree_out + p * words;
    const uint64_t bucket = b.key_hash[i] >> (64 - b.depth);
    tree[buckets + bucket] += merkle_leaf(b.key_hash[i], b.version_hash[i]);
    tree[0] += 1;
  }
  for (uint32_t p = 0; p < b.partitions; ++p) merkle_rebuild_inner(b.tree_out + p * words, b.depth);
}

void merkle_rebuild_inner(uint64_t* tree, uint32_t depth) {
  TALLY_ASSERT(depth >= 1 && depth <= kMerkleDepthMax);
  const uint64_t buckets = uint64_t{1} << depth;
  for (uint64_t j = buckets - 1; j >= 1; --j) tree[j] = merkle_node(tree[2 * j], tree[2 * j + 1]);
}

void merkle_diff_cpu(const MerkleDiffBatch& b) {
  TALLY_ASSERT(b.depth >= 1 && b.depth <= kMerkleDepthMax);
  TALLY_ASSERT(b.diff_out != nullptr || b.diff_max == 0 || b.partitions == 0);
  const uint64_t words = merkle_tree_words(b.depth);
  const uint64_t buckets = uint64_t{1} << b.depth;
  // Depth-first, left before right, so buckets come out ascending; the stack holds one pending right
  // sibling per level plus the current node.
  for (uint32_t p = 0; p < b.partitions; ++p) {
    const uint64_t* ta = b.tree_a + p * words;
    const uint64_t* tb = b.tree_b + p * words;
    uint64_t stack[kMerkleDepthMax + 2];
    uint32_t top = 0;
    uint32_t count = 0;
    stack[top++] = 1;
    while (top > 0) {
      const uint64_t j = stack[--top];
      if (ta[j] == tb[j]) continue;
      if (j >= buckets) {
        if (count < b.diff_max) b.diff_out[uint64_t{p} * b.diff_max + count] = static_cast<uint32_t>(j - buckets);
        ++count;
        continue;
      }
      TALLY_ASSERT(top + 2 <= kMerkleDepthMax + 2);
      stack[top++] = 2 * j + 1;
      stack[top++] = 2 * j;
    }
    b.diff_count_out[p] = count;
    for (uint32_t c = count; c < b.diff_max; ++c) b.diff_out[uint64_t{p} * b.diff_max + c] = kNoSource;
  }
}

void merkle_cpu(const MerkleBatch& b) {
  if (b.is_diff) {
    merkle_diff_cpu(b.diff);
  } else {
    merkle_build_cpu(b.build);
  }
}

}  // namespace tally::kernels
