// Dataset digest: checksum batches over the values, partition batches over the keys, merkle batches
// over the leaves, all through the shard's offload engine; bounded buffers whatever the data size.
#include "host/server/digest.h"

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <deque>
#include <string>

#include "host/offload/batcher.h"
#include "kernels/cpu/mix.h"
#include "kernels/cpu/reference.h"

namespace tally::server {

namespace {

using kernels::mix64;
using store::Entry;
using store::ValueType;

// Salts keep a range's place in its entry: which part (string, member, field, value) and which chunk.
constexpr uint64_t kPartString = 1ull << 40;
constexpr uint64_t kPartMember = 2ull << 40;
constexpr uint64_t kPartField = 3ull << 40;
constexpr uint64_t kPartValue = 4ull << 40;
constexpr uint64_t kPartItem = 5ull << 40;   // a list element; its position is salted in above bit 43
constexpr uint64_t kPartZMember = 6ull << 40;
constexpr uint64_t kPartScore = 7ull << 40;
constexpr uint64_t kPartStream = 8ull << 40;

// One checksum range: the leaf it belongs to, its salt, and whether it opens or closes an entry
// (a string value, a set member, a hash field with its value). An entry's ranges are contiguous.
struct RangeTag {
  uint32_t leaf = 0;
  bool first = false;
  bool last = false;
  bool whole_value = false;  // a string: the entry is the whole value, not one element among many
  uint64_t salt = 0;
};

struct Leaf {
  uint64_t acc = 0;     // the value's hash so far
  uint64_t meta = 0;    // type, expiry and size, hashed
};

// Adds src's key counts and bucket sums into dst (both kDigestRanges trees); inner nodes are left
// for kernels::merkle_rebuild_inner.
void add_buckets(DigestTrees& dst, const DigestTrees& src) {
  TALLY_ASSERT(dst.size() == src.size());
  const uint64_t buckets = uint64_t{1} << kDigestDepth;
  for (uint32_t p = 0; p < kDigestRanges; ++p) {
    const uint64_t base = p * kDigestTreeWords;
    dst[base] += src[base];
    for (uint64_t j = buckets; j < 2 * buckets; ++j) dst[base + j] += src[base + j];
  }
}

class ShardDigest {
 public:
  explicit ShardDigest(offload::Engine& engine)
      : engine_(engine),
        sums_(offload::RangeBatcher(kernels::Op::kChecksum, engine.batch_options())),
        trees_(kDigestRanges * kDigestTreeWords, 0) {
    tags_.reserve(engine.batch_options().items_max);
    leaves_.reserve(kDigestLeavesPerBuild);
    keys_.reserve(kDigestLeavesPerBuild);
  }

  Status add(const Entry& e) {
    const uint32_t leaf = static_cast<uint32_t>(leaves_.size());
    const ValueType type = e.type();
    uint64_t size = 0;
    leaves_.push_back(Leaf{});
    keys_.push_back(e.key());
    switch (type) {
      case ValueType::kString:
        size = e.string_value().size();
        TALLY_RETURN_IF_ERROR(add_entry(leaf, true, e.string_value(), kPartString, {}, 0));
        break;
      case ValueType::kSet:
        size = e.set_value()->size();
        for (const std::string& m : e.set_value()->members()) {
          TALLY_RETURN_IF_ERROR(add_entry(leaf, false, m, kPartMember, {}, 0));
        }
        break;
      case ValueType::kHash:
        size = e.hash_value()->size();
        for (const auto& [f, v] : e.hash_value()->fields()) {
          TALLY_RETURN_IF_ERROR(add_entry(leaf, false, f, kPartField, v, kPartValue));
        }
        break;
      case ValueType::kList: {
        // Elements are summed like a set's, so each carries its position: order counts in a list.
        size = e.list_value()->size();
        uint64_t pos = 0;
        for (const std::string& item : e.list_value()->items()) {
          TALLY_RETURN_IF_ERROR(add_entry(leaf, false, item, kPartItem | (pos++ << 43), {}, 0));
        }
        break;
      }
      case ValueType::kStream: {
        // Entries, bookkeeping and groups in one canonical encoding, hashed as one value.
        size = e.stream_value()->size();
        owned_.emplace_back();
        e.stream_value()->encode_canonical(owned_.back());
        TALLY_RETURN_IF_ERROR(add_entry(leaf, true, owned_.back(), kPartStream, {}, 0));
        break;
      }
      case ValueType::kZSet: {
        size = e.zset_value()->size();
        for (const auto* n = e.zset_value()->first(); n != nullptr; n = n->next()) {
          char score[sizeof(double)];
          std::memcpy(score, &n->score, sizeof score);
          TALLY_RETURN_IF_ERROR(add_entry(leaf, false, n->member, kPartZMember, {score, sizeof score}, kPartScore));
        }
        break;
      }
    }
    leaves_[leaf].meta = mix64((uint64_t{static_cast<uint8_t>(type)} << 56) ^ mix64(e.expire_at_ms()) ^ mix64(size + 1));
    if (leaves_.size() == kDigestLeavesPerBuild) return build();
    return Status::ok();
  }

  // Runs what is pending and folds the last leaves into the trees.
  Result<DigestTrees> finish() {
    TALLY_RETURN_IF_ERROR(build());
    return std::move(trees_);
  }

 private:
  // Queues the ranges of one entry: `a` (then `b` when b_part != 0), each cut into chunks.
  Status add_entry(uint32_t leaf, bool whole_value, std::string_view a, uint64_t a_part, std::string_view b,
                   uint64_t b_part) {
    const size_t a_chunks = std::max<size_t>(1, (a.size() + kDigestChunkBytes - 1) / kDigestChunkBytes);
    const size_t b_chunks = b_part == 0 ? 0 : std::max<size_t>(1, (b.size() + kDigestChunkBytes - 1) / kDigestChunkBytes);
    const size_t total = a_chunks + b_chunks;
    for (size_t i = 0; i < total; ++i) {
      const bool in_a = i < a_chunks;
      const std::string_view src = in_a ? a : b;
      const size_t chunk = in_a ? i : i - a_chunks;
      const size_t at = chunk * kDigestChunkBytes;
      const std::string_view piece = src.substr(std::min(at, src.size()), kDigestChunkBytes);
      RangeTag tag{leaf, i == 0, i + 1 == total, whole_value, (in_a ? a_part : b_part) | chunk};
      TALLY_RETURN_IF_ERROR(add_range(piece, tag));
    }
    return Status::ok();
  }

  Status add_range(std::string_view piece, const RangeTag& tag) {
    const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(piece.data()), piece.size());
    Result<uint32_t> at = sums_.add(bytes, 0);
    if (!at.is_ok()) {
      if (at.status().code() != Code::kResourceExhausted) return at.status();
      TALLY_RETURN_IF_ERROR(run_checksums());
      at = sums_.add(bytes, 0);
      if (!at.is_ok()) return at.status();  // cannot happen: a chunk fits an empty batch
    }
    TALLY_ASSERT(at.value() == tags_.size());
    tags_.push_back(tag);
    return Status::ok();
  }

  // Runs the queued ranges and folds each CRC into its entry, and each closed entry into its leaf.
  Status run_checksums() {
    if (sums_.items() == 0) return Status::ok();
    TALLY_RETURN_IF_ERROR(engine_.run(sums_.batch()));
    const std::span<const uint32_t> crc = sums_.crc();
    for (size_t i = 0; i < tags_.size(); ++i) {
      const RangeTag& t = tags_[i];
      if (t.first) entry_acc_ = 0;
      entry_acc_ += mix64((uint64_t{crc[i]} << 20) ^ t.salt);
      if (!t.last) continue;
      // Elements are summed, so a set's or hash's hash does not depend on iteration order.
      if (t.whole_value) {
        leaves_[t.leaf].acc = entry_acc_;
      } else {
        leaves_[t.leaf].acc += mix64(entry_acc_);
      }
    }
    tags_.clear();
    sums_.reset();
    return Status::ok();
  }

  // Completes the pending leaves, places them by slot range and adds their trees to the shard's.
  Status build() {
    TALLY_RETURN_IF_ERROR(run_checksums());
    if (leaves_.empty()) return Status::ok();
    const uint32_t n = static_cast<uint32_t>(leaves_.size());
    TALLY_RETURN_IF_ERROR(engine_.partition(keys_, slots_, parts_));
    key_hash_.resize(n);
    version_.resize(n);
    leaf_range_.resize(n);
    for (uint32_t i = 0; i < n; ++i) {
      key_hash_[i] = kernels::key_hash(keys_[i]);
      version_[i] = mix64(leaves_[i].acc ^ leaves_[i].meta);
      leaf_range_[i] = slots_[i] / kDigestSlotsPerRange;
    }
    build_out_.assign(trees_.size(), 0);
    kernels::Batch b;
    b.op = kernels::Op::kMerkle;
    b.merkle.is_diff = false;
    b.merkle.build = kernels::MerkleBuildBatch{kDigestRanges, kDigestDepth, n, leaf_range_.data(),
                                               key_hash_.data(), version_.data(), build_out_.data()};
    TALLY_RETURN_IF_ERROR(engine_.run(b));
    // Bucket sums and counts add up; inner nodes are rebuilt by combine_digests at the end.
    add_buckets(trees_, build_out_);
    leaves_.clear();
    keys_.clear();
    owned_.clear();
    return Status::ok();
  }

  offload::Engine& engine_;
  offload::RangeBatcher sums_;
  std::vector<RangeTag> tags_;
  uint64_t entry_acc_ = 0;  // carried across batches: an entry may straddle two
  std::vector<Leaf> leaves_;
  std::vector<std::string_view> keys_;
  std::deque<std::string> owned_;  // canonical encodings of streams, alive until their leaves are built
  std::vector<uint16_t> slots_;
  std::vector<uint32_t> parts_;
  std::vector<uint64_t> key_hash_;
  std::vector<uint64_t> version_;
  std::vector<uint32_t> leaf_range_;
  std::vector<uint64_t> build_out_;
  DigestTrees trees_;  // bucket sums and counts only until combine_digests
};

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Result<DigestTrees> shard_digest(const Shard& shard, offload::Engine& engine, uint64_t now_ms) {
  ShardDigest d(engine);
  Status st = Status::ok();
  for (uint32_t p : shard.held) {
    shard.partitions[p]->store().for_each([&](const Entry& e) {
      if (!st.is_ok()) return;
      if (e.has_expire() && e.expire_at_ms() <= now_ms) return;  // expired, not yet reclaimed
      st = d.add(e);
    });
  }
  if (!st.is_ok()) return st;
  return d.finish();
}

DigestTrees combine_digests(const std::vector<DigestTrees>& per_shard) {
  DigestTrees out(kDigestRanges * kDigestTreeWords, 0);
  for (const DigestTrees& t : per_shard) add_buckets(out, t);
  for (uint32_t p = 0; p < kDigestRanges; ++p) kernels::merkle_rebuild_inner(out.data() + p * kDigestTreeWords, kDigestDepth);
  return out;
}

uint64_t digest_keys(const DigestTrees& trees) {
  uint64_t n = 0;
  for (uint32_t p = 0; p < kDigestRanges; ++p) n += trees[p * kDigestTreeWords];
  return n;
}

std::string digest_hex(const DigestTrees& trees) {
  if (digest_keys(trees) == 0) return std::string(16, '0');
  uint64_t d = 0;
  for (uint32_t p = 0; p < kDigestRanges; ++p) {
    const uint64_t* tree = trees.data() + p * kDigestTreeWords;
    d = kernels::merkle_node(d, kernels::merkle_node(tree[1], tree[0]));
  }
  return hex16(d);
}

std::string range_root_hex(const DigestTrees& trees, uint32_t p) {
  TALLY_ASSERT(p < kDigestRanges);
  return hex16(trees[p * kDigestTreeWords + 1]);
}

}  // namespace tally::server
