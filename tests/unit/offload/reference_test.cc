// The CPU reference against hand-computed answers: standard CRC32C vectors, Redis slots, CRDT rules.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/mix.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/slot.h"
#include "kernels/testing/batch_gen.h"

namespace tally::kernels {
namespace {

// A batch that names entries but lacks an array for them is refused, never dereferenced: every
// pointer of every op's format, one at a time.
TEST(Validate, EveryMissingArrayIsRefused) {
  Rng rng(3);
  int checked = 0;
  auto expect_refused = [&](const OwnedBatch& good, auto clear) {
    OwnedBatch b = good;
    clear(b.batch());
    EXPECT_EQ(validate(b.batch()).code(), Code::kInvalidArgument) << op_name(b.batch().op) << " case " << checked;
    ++checked;
  };
  const OwnedBatch sum = OwnedBatch::random({.op = Op::kChecksum, .items = 4, .item_bytes_min = 1, .item_bytes_max = 9}, rng);
  ASSERT_TRUE(validate(sum.batch()).is_ok());
  expect_refused(sum, [](Batch& b) { b.checksum.offsets = nullptr; });
  expect_refused(sum, [](Batch& b) { b.checksum.lengths = nullptr; });
  expect_refused(sum, [](Batch& b) { b.checksum.crc_out = nullptr; });
  expect_refused(sum, [](Batch& b) { b.checksum.blob = nullptr; });
  const OwnedBatch lww = OwnedBatch::random({.op = Op::kResolve, .resolve_kind = ResolveKind::kLww, .items = 6}, rng);
  ASSERT_TRUE(validate(lww.batch()).is_ok());
  expect_refused(lww, [](Batch& b) { b.resolve.lww.current_hlc = nullptr; });
  expect_refused(lww, [](Batch& b) { b.resolve.lww.hlc = nullptr; });
  expect_refused(lww, [](Batch& b) { b.resolve.lww.source_out = nullptr; });
  const OwnedBatch pn = OwnedBatch::random({.op = Op::kResolve, .resolve_kind = ResolveKind::kPnCounter, .items = 6}, rng);
  ASSERT_TRUE(validate(pn.batch()).is_ok());
  expect_refused(pn, [](Batch& b) { b.resolve.pn.p = nullptr; });
  expect_refused(pn, [](Batch& b) { b.resolve.pn.value_out = nullptr; });
  const OwnedBatch orset = OwnedBatch::random({.op = Op::kResolve, .resolve_kind = ResolveKind::kOrSet, .items = 6}, rng);
  ASSERT_TRUE(validate(orset.batch()).is_ok());
  expect_refused(orset, [](Batch& b) { b.resolve.orset.dot_seq = nullptr; });
  expect_refused(orset, [](Batch& b) { b.resolve.orset.keep_out = nullptr; });
  const OwnedBatch tally = OwnedBatch::random({.op = Op::kTally, .items = 6}, rng);
  ASSERT_TRUE(validate(tally.batch()).is_ok());
  ASSERT_GT(tally.batch().tally.groups, 0u);
  ASSERT_GT(tally.batch().tally.reads, 0u);
  expect_refused(tally, [](Batch& b) { b.tally.match = nullptr; });
  expect_refused(tally, [](Batch& b) { b.tally.commit_out = nullptr; });
  expect_refused(tally, [](Batch& b) { b.tally.reply_hlc = nullptr; });
  expect_refused(tally, [](Batch& b) { b.tally.stale_out = nullptr; });
  const OwnedBatch merkle = OwnedBatch::random({.op = Op::kMerkle, .items = 30, .merkle_depth = 4}, rng);
  ASSERT_TRUE(validate(merkle.batch()).is_ok());
  expect_refused(merkle, [](Batch& b) { b.merkle.build.key_hash = nullptr; });
  expect_refused(merkle, [](Batch& b) { b.merkle.build.tree_out = nullptr; });
  EXPECT_EQ(checked, 17);
}

TEST(Crc32c, StandardCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(crc32c(reinterpret_cast<const uint8_t*>(s), 9), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  // RFC 3720 B.4: 32 bytes of zeros and 32 bytes of 0xff.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff);
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
}

TEST(Checksum, BatchOfRangesIncludingEmptyAndOverlapping) {
  const std::string blob = "123456789abcdef";
  std::vector<uint64_t> offsets = {0, 3, 0, 15};
  std::vector<uint32_t> lengths = {9, 0, 15, 0};
  std::vector<uint32_t> crc(4, 7);
  ChecksumBatch b{reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), offsets.data(), lengths.data(), 4, crc.data()};
  Batch batch;
  batch.op = Op::kChecksum;
  batch.checksum = b;
  ASSERT_TRUE(run_reference(batch).is_ok());
  EXPECT_EQ(crc[0], 0xE3069283u);
  EXPECT_EQ(crc[1], 0u);
  EXPECT_EQ(crc[2], crc32c(reinterpret_cast<const uint8_t*>(blob.data()), 15));
  EXPECT_EQ(crc[3], 0u);
  // A range past the end is an operating error, not a crash.
  lengths[3] = 1;
  EXPECT_EQ(run_reference(batch).code(), Code::kInvalidArgument);
}

TEST(Partition, RedisSlotsAndPartitionMap) {
  const std::string blob = "foo{user1000}.following{user1000}.followers";
  std::vector<uint64_t> offsets = {0, 3, 23};
  std::vector<uint32_t> lengths = {3, 20, 20};
  std::vector<uint32_t> map(kSlotCount);
  for (uint32_t s = 0; s < kSlotCount; ++s) map[s] = s / 1024;
  std::vector<uint16_t> slot(3);
  std::vector<uint32_t> part(3);
  Batch batch;
  batch.op = Op::kPartition;
  batch.partition = PartitionBatch{reinterpret_cast<const uint8_t*>(blob.data()), blob.size(), offsets.data(),
                                   lengths.data(), 3, map.data(), slot.data(), part.data()};
  ASSERT_TRUE(run_reference(batch).is_ok());
  EXPECT_EQ(slot[0], 12182);  // CLUSTER KEYSLOT foo
  EXPECT_EQ(slot[1], slot[2]);  // same hash tag
  EXPECT_EQ(slot[1], key_slot("user1000"));
  EXPECT_EQ(part[0], 12182u / 1024);
}

TEST(ResolveLww, GreatestStampWinsTiesKeepCurrent) {
  std::vector<uint64_t> cur_hlc = {10, 10, 10};
  std::vector<uint32_t> cur_node = {1, 1, 1};
  // key 0: older and newer incoming; key 1: exact tie; key 2: same hlc, higher node twice.
  std::vector<uint32_t> key = {0, 0, 1, 2, 2};
  std::vector<uint64_t> hlc = {9, 11, 10, 10, 10};
  std::vector<uint32_t> node = {9, 0, 1, 2, 2};
  std::vector<uint64_t> hlc_out(3);
  std::vector<uint32_t> node_out(3), src(3);
  LwwBatch b{3, cur_hlc.data(), cur_node.data(), 5, key.data(), hlc.data(), node.data(), hlc_out.data(), node_out.data(), src.data()};
  resolve_lww_cpu(b);
  EXPECT_EQ(src[0], 1u);
  EXPECT_EQ(hlc_out[0], 11u);
  EXPECT_EQ(src[1], kNoSource);
  EXPECT_EQ(src[2], 3u);  // lowest index among equal incoming stamps
  EXPECT_EQ(node_out[2], 2u);
}

TEST(ResolvePnCounter, SlotwiseMaxAndValue) {
  std::vector<uint64_t> cp(kCrdtNodesMax, 0), cn(kCrdtNodesMax, 0);
  cp[0] = 5;
  cn[1] = 2;
  std::vector<uint32_t> key = {0, 0};
  std::vector<uint64_t> p(2 * kCrdtNodesMax, 0), n(2 * kCrdtNodesMax, 0);
  p[0] = 3;                  // older than current on node 0
  p[kCrdtNodesMax + 2] = 7;  // new increments from node 2
  n[1] = 4;
  std::vector<uint64_t> po(kCrdtNodesMax), no(kCrdtNodesMax);
  int64_t value = 0;
  PnCounterBatch b{1, cp.data(), cn.data(), 2, key.data(), p.data(), n.data(), po.data(), no.data(), &value};
  resolve_pn_counter_cpu(b);
  EXPECT_EQ(po[0], 5u);
  EXPECT_EQ(po[2], 7u);
  EXPECT_EQ(no[1], 4u);
  EXPECT_EQ(value, 5 + 7 - 4);
}

TEST(ResolveOrSet, AddWinsRemoveSeenDropsDuplicatesOnce) {
  std::vector<uint64_t> cvv(kCrdtNodesMax, 0), ivv(kCrdtNodesMax, 0);
  cvv[0] = 5;  // current has seen node 0 up to 5
  ivv[0] = 3;  // incoming has seen node 0 up to 3, node 1 up to 2
  ivv[1] = 2;
  //             e0: cur dot(0,4) unseen by incoming -> keep
  //             e1: cur dot(0,2) seen by incoming and absent there -> removed
  //             e2: both sides dot(1,1) -> keep once (current side)
  //             e3: incoming dot(1,2) unseen by current -> keep
  //             e4: incoming dot(0,3) seen by current, absent there -> removed
  std::vector<uint32_t> key = {0, 0, 0, 0, 0, 0};
  std::vector<uint64_t> elem = {100, 101, 102, 102, 103, 104};
  std::vector<uint8_t> dnode = {0, 0, 1, 1, 1, 0};
  std::vector<uint64_t> dseq = {4, 2, 1, 1, 2, 3};
  std::vector<uint8_t> side = {0, 0, 0, 1, 1, 1};
  std::vector<uint8_t> keep(6, 9);
  OrSetBatch b{1, cvv.data(), ivv.data(), 6, key.data(), elem.data(), dnode.data(), dseq.data(), side.data(), keep.data()};
  resolve_or_set_cpu(b);
  EXPECT_EQ(keep, (std::vector<uint8_t>{1, 0, 1, 0, 1, 0}));
}

TEST(Tally, CommitMatchesSharedHelperAndNewestRead) {
  std::vector<uint64_t> match(2 * kTallyReplicasMax, 0);
  match[0] = 5; match[1] = 7; match[2] = 3;  // voters 0..2 -> commit 5
  match[kTallyReplicasMax + 0] = 9;          // group 1 has no voters
  std::vector<uint32_t> voters = {0b111, 0};
  std::vector<uint64_t> commit(2, 99);
  std::vector<uint64_t> rh(2 * kTallyReplicasMax, 0);
  std::vector<uint32_t> rn(2 * kTallyReplicasMax, 0);
  rh[0] = 4; rh[1] = 6; rn[1] = 2; rh[3] = 6; rn[3] = 2; rh[4] = 6; rn[4] = 1;
  std::vector<uint32_t> rmask = {0b11011, 0};
  std::vector<uint8_t> newest(2);
  std::vector<uint32_t> stale(2, 77);
  TallyBatch b{2, match.data(), voters.data(), commit.data(), 2, rh.data(), rn.data(), rmask.data(), newest.data(), stale.data()};
  tally_cpu(b);
  EXPECT_EQ(commit[0], 5u);
  EXPECT_EQ(commit[1], 0u);
  EXPECT_EQ(newest[0], 1);
  EXPECT_EQ(stale[0], 0b10001u);  // replicas 0 (older) and 4 (lower node); 3 equals the newest
  EXPECT_EQ(newest[1], kNoReplica);
  EXPECT_EQ(stale[1], 0u);
}

TEST(Merkle, BuildIsOrderIndependentAndDiffFindsChangedBuckets) {
  const uint32_t depth = 4;
  std::vector<uint32_t> part = {0, 0, 1, 0};
  std::vector<uint64_t> kh = {0x1000000000000000ull, 0xf000000000000000ull, 0x2000000000000000ull, 0x1100000000000000ull};
  std::vector<uint64_t> vh = {1, 2, 3, 4};
  const uint64_t words = merkle_tree_words(depth);
  std::vector<uint64_t> ta(2 * words), tb(2 * words);
  MerkleBuildBatch a{2, depth, 4, part.data(), kh.data(), vh.data(), ta.data()};
  merkle_build_cpu(a);
  EXPECT_EQ(ta[0], 3u);
  EXPECT_EQ(ta[words], 1u);
  EXPECT_EQ(ta[16 + 1], merkle_leaf(kh[0], 1) + merkle_leaf(kh[3], 4));
  EXPECT_EQ(ta[1], merkle_node(ta[2], ta[3]));
  // Same leaves reversed give the same tree; one changed version changes exactly its bucket.
  std::vector<uint32_t> part_r(part.rbegin(), part.rend());
  std::vector<uint64_t> kh_r(kh.rbegin(), kh.rend()), vh_r(vh.rbegin(), vh.rend());
  vh_r[0] = 5;  // was leaf 3 (bucket 1 of partition 0)
  MerkleBuildBatch b{2, depth, 4, part_r.data(), kh_r.data(), vh_r.data(), tb.data()};
  merkle_build_cpu(b);
  EXPECT_NE(ta[1], tb[1]);
  EXPECT_EQ(ta[words + 1], tb[words + 1]);
  std::vector<uint32_t> diff(2 * 4, 0), count(2, 9);
  MerkleDiffBatch d{2, depth, ta.data(), tb.data(), 4, diff.data(), count.data()};
  merkle_diff_cpu(d);
  EXPECT_EQ(count[0], 1u);
  EXPECT_EQ(diff[0], 1u);
  EXPECT_EQ(count[1], 0u);
}

}  // namespace
}  // namespace tally::kernels

#include "host/common/rng.h"
#include "kernels/cpu/crc32c_math.h"

namespace tally::kernels {
namespace {

// The split-and-combine arithmetic the CUDA checksum kernel uses, checked against ISA-L on the CPU.
TEST(Crc32cMath, SplitRawCrcsCombineToIsalResult) {
  Rng rng(77);
  std::vector<uint8_t> buf(70'000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.next());
  for (uint64_t n : {0ull, 1ull, 9ull, 31ull, 32ull, 1000ull, 65'537ull}) {
    for (uint32_t parts : {1u, 2u, 7u, 32u}) {
      uint32_t raw = 0;
      for (uint32_t p = 0; p < parts; ++p) {
        const uint64_t first = n * p / parts, last = n * (p + 1) / parts;
        const uint32_t piece = crc32c_math::raw_update(0, buf.data() + first, last - first, crc32c_math::kTable.data());
        raw ^= crc32c_math::shift(piece, n - last, crc32c_math::kPowers.data());
      }
      EXPECT_EQ(crc32c_math::finish(raw, n, crc32c_math::kPowers.data()), crc32c(buf.data(), n))
          << "bytes=" << n << " parts=" << parts;
    }
  }
}

TEST(Crc32cMath, Slice4MatchesIsalAtEveryAlignmentAndLength) {
  static constexpr auto kTables = crc32c_math::make_slice_tables();
  Rng rng(78);
  std::vector<uint8_t> buf(5000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.next());
  for (uint64_t start = 0; start < 20; ++start) {
    for (uint64_t n : {0ull, 1ull, 3ull, 15ull, 16ull, 17ull, 33ull, 64ull, 1000ull, 4096ull}) {
      const uint32_t raw = crc32c_math::raw_update_slice4(0, buf.data() + start, n, reinterpret_cast<const uint32_t(*)[256]>(kTables.data()));
      EXPECT_EQ(crc32c_math::finish(raw, n, crc32c_math::kPowers.data()), crc32c(buf.data() + start, n))
          << "start=" << start << " bytes=" << n;
    }
  }
}

}  // namespace
}  // namespace tally::kernels
