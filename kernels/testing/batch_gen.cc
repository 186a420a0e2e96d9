// Random batch generation and output comparison for differential tests and benchmarks.
#include "kernels/testing/batch_gen.h"

#include <cstring>
#include <string>

#include "kernels/cpu/mix.h"
#include "kernels/cpu/slot.h"

namespace tally::kernels {

OwnedBatch::OwnedBatch(const OwnedBatch& other) { *this = other; }

OwnedBatch& OwnedBatch::operator=(const OwnedBatch& other) {
  if (this == &other) return *this;
  batch_ = other.batch_;
  shape_ = other.shape_;
  blob_ = other.blob_;
  for (int i = 0; i < 4; ++i) u64_in_[i] = other.u64_in_[i], u32_in_[i] = other.u32_in_[i];
  for (int i = 0; i < 2; ++i) u8_in_[i] = other.u8_in_[i];
  for (int i = 0; i < 3; ++i) u64_out_[i] = other.u64_out_[i], u32_out_[i] = other.u32_out_[i];
  u8_out_ = other.u8_out_;
  u16_out_ = other.u16_out_;
  i64_out_ = other.i64_out_;
  rebind();
  return *this;
}

void OwnedBatch::rebind() {
  Batch& b = batch_;
  b.op = shape_.op;
  switch (shape_.op) {
    case Op::kChecksum:
      b.checksum = ChecksumBatch{blob_.data(), blob_.size(), u64_in_[0].data(), u32_in_[0].data(), shape_.items,
                                 u32_out_[0].data()};
      return;
    case Op::kPartition:
      b.partition = PartitionBatch{blob_.data(), blob_.size(), u64_in_[0].data(), u32_in_[0].data(), shape_.items,
                                   u32_in_[1].data(), u16_out_.data(), u32_out_[0].data()};
      return;
    case Op::kResolve: {
      ResolveBatch& r = b.resolve;
      r.kind = shape_.resolve_kind;
      switch (r.kind) {
        case ResolveKind::kLww:
          r.lww = LwwBatch{shape_.keys, u64_in_[0].data(), u32_in_[0].data(), shape_.items, u32_in_[1].data(),
                           u64_in_[1].data(), u32_in_[2].data(), u64_out_[0].data(), u32_out_[0].data(),
                           u32_out_[1].data()};
          return;
        case ResolveKind::kPnCounter:
          r.pn = PnCounterBatch{shape_.keys, u64_in_[0].data(), u64_in_[1].data(), shape_.items, u32_in_[1].data(),
                                u64_in_[2].data(), u64_in_[3].data(), u64_out_[0].data(), u64_out_[1].data(),
                                i64_out_.data()};
          return;
        case ResolveKind::kOrSet:
          r.orset = OrSetBatch{shape_.keys, u64_in_[0].data(), u64_in_[1].data(), shape_.items, u32_in_[1].data(),
                               u64_in_[2].data(), u8_in_[0].data(), u64_in_[3].data(), u8_in_[1].data(),
                               u8_out_.data()};
          return;
      }
      return;
    }
    case Op::kTally: {
      const uint32_t groups = (shape_.items + 1) / 2, reads = shape_.items / 2;
      b.tally = TallyBatch{groups, u64_in_[0].data(), u32_in_[0].data(), u64_out_[0].data(), reads,
                           u64_in_[1].data(), u32_in_[1].data(), u32_in_[2].data(), u8_out_.data(),
                           u32_out_[0].data()};
      return;
    }
    case Op::kMerkle:
      b.merkle.is_diff = shape_.merkle_diff;
      if (shape_.merkle_diff) {
        b.merkle.diff = MerkleDiffBatch{shape_.items, shape_.merkle_depth, u64_in_[0].data(), u64_in_[1].data(),
                                        8, u32_out_[0].data(), u32_out_[1].data()};
      } else {
        b.merkle.build = MerkleBuildBatch{shape_.merkle_partitions, shape_.merkle_depth, shape_.items,
                                          u32_in_[0].data(), u64_in_[0].data(), u64_in_[1].data(),
                                          u64_out_[0].data()};
      }
      return;
  }
}

void OwnedBatch::poison_outputs(uint8_t fill) {
  // memset with a null pointer is undefined even for zero bytes: empty vectors are skipped.
  auto poison = [fill](auto& v) {
    if (!v.empty()) std::memset(v.data(), fill, v.size() * sizeof(v[0]));
  };
  for (auto& v : u64_out_) poison(v);
  for (auto& v : u32_out_) poison(v);
  poison(u8_out_);
  poison(u16_out_);
  poison(i64_out_);
}

namespace {
template <typename T>
std::string first_difference(const char* name, const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return std::string(name) + ": sizes differ";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      return std::string(name) + "[" + std::to_string(i) + "]: " + std::to_string(a[i]) + " != " + std::to_string(b[i]);
    }
  }
  return {};
}

// Inner nodes of heap-ordered trees whose buckets are filled.
void finish_trees(std::vector<uint64_t>& trees, uint32_t partitions, uint32_t depth) {
  const uint64_t words = merkle_tree_words(depth);
  const uint64_t buckets = uint64_t{1} << depth;
  for (uint32_t p = 0; p < partitions; ++p) {
    uint64_t* t = trees.data() + p * words;
    for (uint64_t j = buckets - 1; j >= 1; --j) t[j] = merkle_node(t[2 * j], t[2 * j + 1]);
  }
}
}  // namespace

std::string OwnedBatch::compare_outputs(const OwnedBatch& other) const {
  TALLY_ASSERT(shape_.op == other.shape_.op && shape_.items == other.shape_.items);
  const char* names64[3] = {"u64_out0", "u64_out1", "u64_out2"};
  const char* names32[3] = {"u32_out0", "u32_out1", "u32_out2"};
  for (int i = 0; i < 3; ++i) {
    std::string d = first_difference(names64[i], u64_out_[i], other.u64_out_[i]);
    if (!d.empty()) return d;
    d = first_difference(names32[i], u32_out_[i], other.u32_out_[i]);
    if (!d.empty()) return d;
  }
  std::string d = first_difference("u8_out", u8_out_, other.u8_out_);
  if (d.empty()) d = first_difference("u16_out", u16_out_, other.u16_out_);
  if (d.empty()) d = first_difference("i64_out", i64_out_, other.i64_out_);
  return d;
}

OwnedBatch OwnedBatch::random(const BatchShape& shape_in, Rng& rng) {
  TALLY_ASSERT(shape_in.items <= kBatchItemsMax);
  TALLY_ASSERT(shape_in.item_bytes_min <= shape_in.item_bytes_max);
  OwnedBatch o;
  BatchShape& s = o.shape_;
  s = shape_in;
  const uint32_t n = s.items;
  switch (s.op) {
    case Op::kChecksum:
    case Op::kPartition: {
      // Ranges laid end to end with a random gap of 0..7 bytes, so starts are at odd alignments.
      o.u64_in_[0].resize(n);
      o.u32_in_[0].resize(n);
      uint64_t total = 0;
      for (uint32_t i = 0; i < n; ++i) {
        total += rng.uniform(8);
        o.u64_in_[0][i] = total;
        o.u32_in_[0][i] = static_cast<uint32_t>(rng.range(s.item_bytes_min, s.item_bytes_max));
        total += o.u32_in_[0][i];
      }
      TALLY_ASSERT(total <= kBatchBlobBytesMax);
      o.blob_.resize(total);
      for (size_t i = 0; i + 8 <= total; i += 8) {
        const uint64_t r = rng.next();
        std::memcpy(o.blob_.data() + i, &r, 8);
      }
      if (s.op == Op::kPartition) {
        // Sprinkle hash-tag braces so {tag} keys are exercised.
        for (uint32_t i = 0; i < n; ++i) {
          if (o.u32_in_[0][i] >= 4 && rng.chance(1, 3)) {
            o.blob_[o.u64_in_[0][i] + 1] = '{';
            o.blob_[o.u64_in_[0][i] + 1 + rng.uniform(o.u32_in_[0][i] - 1)] = '}';
          }
        }
        o.u32_in_[1].resize(kSlotCount);
        for (auto& p : o.u32_in_[1]) p = static_cast<uint32_t>(rng.uniform(1024));
        o.u16_out_.resize(n);
      }
      o.u32_out_[0].resize(n);
      break;
    }
    case Op::kResolve: {
      if (s.keys == 0) s.keys = n / 4 + 1;
      const uint32_t k = s.keys;
      o.u32_in_[1].resize(n);
      for (auto& x : o.u32_in_[1]) x = static_cast<uint32_t>(rng.uniform(k));
      if (s.resolve_kind == ResolveKind::kLww) {
        // Few distinct stamps, so ties between current and incoming versions are common.
        o.u64_in_[0].resize(k), o.u32_in_[0].resize(k), o.u64_in_[1].resize(n), o.u32_in_[2].resize(n);
        for (uint32_t i = 0; i < k; ++i) o.u64_in_[0][i] = rng.uniform(16), o.u32_in_[0][i] = static_cast<uint32_t>(rng.uniform(4));
        for (uint32_t i = 0; i < n; ++i) o.u64_in_[1][i] = rng.uniform(16), o.u32_in_[2][i] = static_cast<uint32_t>(rng.uniform(4));
        o.u64_out_[0].resize(k), o.u32_out_[0].resize(k), o.u32_out_[1].resize(k);
      } else if (s.resolve_kind == ResolveKind::kPnCounter) {
        const uint64_t kw = uint64_t{k} * kCrdtNodesMax, nw = uint64_t{n} * kCrdtNodesMax;
        o.u64_in_[0].resize(kw), o.u64_in_[1].resize(kw), o.u64_in_[2].resize(nw), o.u64_in_[3].resize(nw);
        for (int a = 0; a < 4; ++a) for (auto& x : o.u64_in_[a]) x = rng.uniform(1000);
        o.u64_out_[0].resize(kw), o.u64_out_[1].resize(kw), o.i64_out_.resize(k);
      } else {
        const uint64_t kw = uint64_t{k} * kCrdtNodesMax;
        o.u64_in_[0].resize(kw), o.u64_in_[1].resize(kw);
        for (int a = 0; a < 2; ++a) for (auto& x : o.u64_in_[a]) x = rng.uniform(10);
        o.u64_in_[2].resize(n), o.u8_in_[0].resize(n), o.u64_in_[3].resize(n), o.u8_in_[1].resize(n);
        for (uint32_t i = 0; i < n; ++i) {
          if (i > 0 && rng.chance(1, 3)) {
            // The same entry seen by the other side (or twice on one side).
            const uint32_t j = static_cast<uint32_t>(rng.uniform(i));
            o.u32_in_[1][i] = o.u32_in_[1][j];
            o.u64_in_[2][i] = o.u64_in_[2][j];
            o.u8_in_[0][i] = o.u8_in_[0][j];
            o.u64_in_[3][i] = o.u64_in_[3][j];
            o.u8_in_[1][i] = static_cast<uint8_t>(rng.chance(4, 5) ? 1 - o.u8_in_[1][j] : o.u8_in_[1][j]);
          } else {
            o.u64_in_[2][i] = rng.uniform(64);
            o.u8_in_[0][i] = static_cast<uint8_t>(rng.uniform(kCrdtNodesMax));
            o.u64_in_[3][i] = rng.range(1, 12);
            o.u8_in_[1][i] = static_cast<uint8_t>(rng.uniform(2));
          }
        }
        o.u8_out_.resize(n);
      }
      break;
    }
    case Op::kTally: {
      const uint32_t groups = (n + 1) / 2, reads = n / 2;
      o.u64_in_[0].resize(uint64_t{groups} * kTallyReplicasMax), o.u32_in_[0].resize(groups);
      for (auto& x : o.u64_in_[0]) x = rng.uniform(100);
      for (auto& x : o.u32_in_[0]) x = static_cast<uint32_t>(rng.uniform(1u << kTallyReplicasMax));
      o.u64_in_[1].resize(uint64_t{reads} * kTallyReplicasMax), o.u32_in_[1].resize(uint64_t{reads} * kTallyReplicasMax);
      o.u32_in_[2].resize(reads);
      for (auto& x : o.u64_in_[1]) x = rng.uniform(4);
      for (auto& x : o.u32_in_[1]) x = static_cast<uint32_t>(rng.uniform(3));
      for (auto& x : o.u32_in_[2]) x = static_cast<uint32_t>(rng.uniform(1u << kTallyReplicasMax));
      o.u64_out_[0].resize(groups), o.u8_out_.resize(reads), o.u32_out_[0].resize(reads);
      break;
    }
    case Op::kMerkle: {
      TALLY_ASSERT(s.merkle_depth >= 1 && s.merkle_depth <= kMerkleDepthMax);
      const uint64_t words = merkle_tree_words(s.merkle_depth);
      if (s.merkle_diff) {
        // items = partitions; tree b differs from a in a few random buckets.
        o.u64_in_[0].assign(uint64_t{n} * words, 0);
        const uint64_t buckets = uint64_t{1} << s.merkle_depth;
        for (uint32_t p = 0; p < n; ++p) {
          for (uint64_t j = 0; j < buckets; ++j) o.u64_in_[0][p * words + buckets + j] = rng.next();
        }
        o.u64_in_[1] = o.u64_in_[0];
        for (uint32_t p = 0; p < n; ++p) {
          const uint64_t changes = rng.uniform(12);
          for (uint64_t c = 0; c < changes; ++c) o.u64_in_[1][p * words + buckets + rng.uniform(buckets)] ^= 1;
        }
        finish_trees(o.u64_in_[0], n, s.merkle_depth);
        finish_trees(o.u64_in_[1], n, s.merkle_depth);
        o.u32_out_[0].resize(uint64_t{n} * 8), o.u32_out_[1].resize(n);
      } else {
        TALLY_ASSERT(s.merkle_partitions >= 1);
        o.u32_in_[0].resize(n), o.u64_in_[0].resize(n), o.u64_in_[1].resize(n);
        for (uint32_t i = 0; i < n; ++i) {
          o.u32_in_[0][i] = static_cast<uint32_t>(rng.uniform(s.merkle_partitions));
          o.u64_in_[0][i] = rng.next();
          o.u64_in_[1][i] = rng.next();
        }
        o.u64_out_[0].resize(uint64_t{s.merkle_partitions} * words);
      }
      break;
    }
  }
  o.rebind();
  return o;
}

}  // namespace tally::kernels
