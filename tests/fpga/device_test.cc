// The fpga_sim Device against the CPU reference through the Device interface: every supported op on
// random batches, the limits it advertises, and the cycle count turned into time at its clock.
#include <gtest/gtest.h>

#include <vector>

#include "drivers/fpga_sim/fpga_sim_device.h"
#include "kernels/cpu/reference.h"

namespace tally::drivers {
namespace {

using kernels::Batch;
using kernels::Op;

Batch checksum_batch(Rng& rng, std::vector<uint8_t>* blob, std::vector<uint64_t>* offsets,
                     std::vector<uint32_t>* lengths, std::vector<uint32_t>* out, uint32_t items) {
  blob->resize(16384);
  for (auto& b : *blob) b = static_cast<uint8_t>(rng.next());
  offsets->resize(items);
  lengths->resize(items);
  out->assign(items, 0);
  for (uint32_t i = 0; i < items; ++i) {
    (*lengths)[i] = static_cast<uint32_t>(rng.range(0, 600));
    (*offsets)[i] = rng.range(0, blob->size() - (*lengths)[i]);
  }
  Batch b;
  b.op = Op::kChecksum;
  b.checksum = kernels::ChecksumBatch{blob->data(), blob->size(), offsets->data(), lengths->data(), items, out->data()};
  return b;
}

TEST(FpgaSimDevice, ChecksumMatchesReferenceAndReportsTime) {
  FpgaSimOptions opt;
  opt.clock_mhz = 250.0;
  opt.traffic = fpga::Traffic{100, 200, 5};
  FpgaSimDevice dev(opt);
  Rng rng(8);
  std::vector<uint8_t> blob;
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> lengths, got;
  Batch b = checksum_batch(rng, &blob, &offsets, &lengths, &got, 500);
  ASSERT_TRUE(run_sync(dev, b).is_ok());
  for (uint32_t i = 0; i < 500; ++i) ASSERT_EQ(got[i], kernels::crc32c(blob.data() + offsets[i], lengths[i]));
  const FpgaSimRun& run = dev.last_run();
  EXPECT_EQ(run.op, Op::kChecksum);
  EXPECT_GT(run.stats.cycles, run.stats.beats);  // bubbles and stalls cost cycles
  EXPECT_EQ(run.projected_ns, (run.stats.cycles * 4));  // 4 ns per cycle at 250 MHz
  EXPECT_EQ(dev.total_cycles(), run.stats.cycles);
}

TEST(FpgaSimDevice, TallyMatchesReference) {
  FpgaSimDevice dev;
  Rng rng(21);
  const uint32_t groups = 300, reads = 200;
  std::vector<uint64_t> match(groups * 8), hlc(reads * 8), commit(groups), ref_commit(groups);
  std::vector<uint32_t> voters(groups), node(reads * 8), mask(reads), stale(reads), ref_stale(reads);
  std::vector<uint8_t> newest(reads), ref_newest(reads);
  for (auto& m : match) m = rng.range(0, 20);
  for (auto& v : voters) v = static_cast<uint32_t>(rng.range(0, 127));  // up to 7 voters
  for (auto& h : hlc) h = rng.range(0, 5);
  for (auto& n : node) n = static_cast<uint32_t>(rng.range(0, 2));
  for (auto& m : mask) m = static_cast<uint32_t>(rng.range(0, 255));
  Batch b;
  b.op = Op::kTally;
  b.tally = kernels::TallyBatch{groups, match.data(), voters.data(), commit.data(), reads, hlc.data(), node.data(),
                                mask.data(), newest.data(), stale.data()};
  Batch ref = b;
  ref.tally.commit_out = ref_commit.data();
  ref.tally.newest_out = ref_newest.data();
  ref.tally.stale_out = ref_stale.data();
  ASSERT_TRUE(run_sync(dev, b).is_ok());
  ASSERT_TRUE(kernels::run_reference(ref).is_ok());
  EXPECT_EQ(commit, ref_commit);
  EXPECT_EQ(newest, ref_newest);
  EXPECT_EQ(stale, ref_stale);
  EXPECT_EQ(dev.last_run().stats.beats, groups + reads);
}

TEST(FpgaSimDevice, ResolveLwwMatchesReference) {
  FpgaSimDevice dev;
  Rng rng(77);
  const uint32_t keys = 150, items = 900;
  std::vector<uint64_t> cur_hlc(keys), hlc(items), hlc_out(keys), ref_hlc(keys);
  std::vector<uint32_t> cur_node(keys), key_index(items), node(items), node_out(keys), ref_node(keys),
      source(keys), ref_source(keys);
  for (uint32_t k = 0; k < keys; ++k) {
    cur_hlc[k] = rng.range(0, 30);
    cur_node[k] = static_cast<uint32_t>(rng.range(0, 2));
  }
  for (uint32_t i = 0; i < items; ++i) {
    key_index[i] = static_cast<uint32_t>(rng.range(0, keys / 2));  // half the keys get no versions
    hlc[i] = rng.range(0, 30);
    node[i] = static_cast<uint32_t>(rng.range(0, 2));
  }
  Batch b;
  b.op = Op::kResolve;
  b.resolve.kind = kernels::ResolveKind::kLww;
  b.resolve.lww = kernels::LwwBatch{keys, cur_hlc.data(), cur_node.data(), items, key_index.data(), hlc.data(),
                                    node.data(), hlc_out.data(), node_out.data(), source.data()};
  Batch ref = b;
  ref.resolve.lww.hlc_out = ref_hlc.data();
  ref.resolve.lww.node_out = ref_node.data();
  ref.resolve.lww.source_out = ref_source.data();
  ASSERT_TRUE(run_sync(dev, b).is_ok());
  ASSERT_TRUE(kernels::run_reference(ref).is_ok());
  EXPECT_EQ(source, ref_source);
  EXPECT_EQ(hlc_out, ref_hlc);
  EXPECT_EQ(node_out, ref_node);
}

TEST(FpgaSimDevice, AdvertisesAndEnforcesItsLimits) {
  FpgaSimOptions opt;
  opt.items_max = 64;
  opt.in_flight_max = 2;
  FpgaSimDevice dev(opt);
  const Capabilities& caps = dev.capabilities();
  EXPECT_EQ(caps.backend, Backend::kFpgaSim);
  EXPECT_TRUE(caps.limits(Op::kChecksum).supported);
  EXPECT_FALSE(caps.limits(Op::kPartition).supported);
  EXPECT_FALSE(caps.limits(Op::kMerkle).supported);

  Rng rng(1);
  std::vector<uint8_t> blob;
  std::vector<uint64_t> offsets;
  std::vector<uint32_t> lengths, got;
  Batch big = checksum_batch(rng, &blob, &offsets, &lengths, &got, 65);
  EXPECT_EQ(dev.submit(big, 1).code(), Code::kInvalidArgument);

  Batch partition;
  partition.op = Op::kPartition;
  EXPECT_EQ(dev.submit(partition, 2).code(), Code::kInvalidArgument);

  Batch pn;
  pn.op = Op::kResolve;
  pn.resolve.kind = kernels::ResolveKind::kPnCounter;
  EXPECT_EQ(dev.submit(pn, 3).code(), Code::kInvalidArgument);

  // Malformed batches are refused by validation, not simulated.
  Batch bad = checksum_batch(rng, &blob, &offsets, &lengths, &got, 4);
  offsets[2] = blob.size();
  lengths[2] = 1;
  EXPECT_EQ(dev.submit(bad, 4).code(), Code::kInvalidArgument);

  Batch small = checksum_batch(rng, &blob, &offsets, &lengths, &got, 8);
  ASSERT_TRUE(dev.submit(small, 10).is_ok());
  ASSERT_TRUE(dev.submit(small, 11).is_ok());
  EXPECT_EQ(dev.in_flight(), 2u);
  EXPECT_EQ(dev.submit(small, 12).code(), Code::kResourceExhausted);
  Completion done[4];
  ASSERT_EQ(dev.poll(done, 0), 2u);
  EXPECT_EQ(done[0].tag, 10u);
  EXPECT_EQ(done[1].tag, 11u);
  EXPECT_TRUE(done[0].status.is_ok());
  EXPECT_GT(done[0].device_ns, 0u);
  EXPECT_EQ(dev.in_flight(), 0u);
  EXPECT_TRUE(dev.healthy());
}

TEST(FpgaSimDevice, EmptyBatchesComplete) {
  FpgaSimDevice dev;
  Batch b;
  b.op = Op::kChecksum;
  ASSERT_TRUE(run_sync(dev, b).is_ok());
  EXPECT_EQ(dev.last_run().stats.cycles, 0u);
}

}  // namespace
}  // namespace tally::drivers
