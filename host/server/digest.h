// The dataset digest (TALLY DIGEST): a Merkle tree over every live key's (key hash, version hash),
// one tree per slot range, built with the offload engine's checksum, partition and merkle ops. Two
// nodes holding the same data give the same digest whatever their shard counts; differing trees
// point at the slot ranges and buckets that differ (what anti-entropy repairs).
//
// A key's version hash covers its type, its absolute expiry time and its value: a string's bytes;
// a set's members and a hash's field/value pairs, order-independently. Values are checksummed with
// CRC32C in ranges of at most kDigestChunkBytes, each range salted with its position.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/common/status.h"
#include "host/offload/engine.h"
#include "host/server/shard.h"
#include "kernels/cpu/formats.h"
#include "kernels/cpu/slot.h"

namespace tally::server {

// The digest's slot ranges (each with its own tree) are not partitions: they stay 16 of 1024 slots
// whatever the partition count, so nodes with different layouts compare.
inline constexpr uint32_t kDigestRanges = 16;
inline constexpr uint32_t kDigestDepth = 10;       // 1024 buckets per slot range
inline constexpr uint32_t kDigestSlotsPerRange = kernels::kSlotCount / kDigestRanges;
inline constexpr uint64_t kDigestTreeWords = kernels::merkle_tree_words(kDigestDepth);
inline constexpr uint32_t kDigestChunkBytes = 64 * 1024;    // one checksum range at most
inline constexpr uint32_t kDigestLeavesPerBuild = 1u << 16;  // keys per merkle batch (bounds memory)

// kDigestRanges trees of kDigestTreeWords words each, heap-ordered as the merkle op writes them
// (word 0 of each tree is its key count, word 1 its root).
using DigestTrees = std::vector<uint64_t>;

// The trees of one shard's live keys, over the partitions it holds (expired keys are skipped). Runs on
// the shard's thread; the stores are only read.
Result<DigestTrees> shard_digest(const Shard& shard, offload::Engine& engine, uint64_t now_ms);

// Sums the shards' bucket levels and key counts and rebuilds the inner nodes: the trees one shard
// holding every key would have built.
DigestTrees combine_digests(const std::vector<DigestTrees>& per_shard);

// 16 hex digits over the roots and counts; all zeros when there is no key.
std::string digest_hex(const DigestTrees& trees);
// The root of slot range p as 16 hex digits.
std::string range_root_hex(const DigestTrees& trees, uint32_t r);
uint64_t digest_keys(const DigestTrees& trees);

}  // namespace tally::server
