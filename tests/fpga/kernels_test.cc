// The Verilated kernels, beat by beat, against the CPU reference: random batches under input
// bubbles and output back-pressure, the 32-byte-per-cycle checksum rate, and the handshake rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "drivers/fpga_sim/kernel_sim.h"
#include "kernels/cpu/reference.h"

namespace tally::drivers::fpga {
namespace {

using kernels::kTallyReplicasMax;

// Traffic patterns every kernel must survive with identical results.
const Traffic kTraffics[] = {
    {0, 0, 11},      // full rate
    {300, 0, 12},    // producer bubbles
    {0, 600, 13},    // heavy consumer back-pressure (fills the result FIFO)
    {500, 500, 14},  // both
    {0, 950, 15},    // consumer nearly always stalled
};

struct CrcCase {
  std::vector<uint8_t> blob;
  std::vector<ChecksumDescriptor> desc;
};

CrcCase random_crc_case(Rng& rng, uint32_t items, uint32_t max_bytes) {
  CrcCase c;
  c.blob.resize(uint64_t{items} * max_bytes / 2 + max_bytes + 64);
  for (auto& b : c.blob) b = static_cast<uint8_t>(rng.next());
  for (uint32_t i = 0; i < items; ++i) {
    // Mostly short and odd lengths, where the tail path matters; some long ones.
    const uint32_t bytes = rng.chance(1, 8) ? static_cast<uint32_t>(rng.range(0, max_bytes))
                                            : static_cast<uint32_t>(rng.range(0, 70));
    const uint64_t offset = rng.range(0, c.blob.size() - bytes);
    c.desc.push_back({offset, bytes, 0});
  }
  return c;
}

TEST(CrcKernel, StandardCheckValue) {
  CrcKernelSim sim;
  const char* text = "123456789";
  std::vector<uint8_t> blob(text, text + 9);
  ChecksumDescriptor d{0, 9, 0};
  uint32_t crc = 0;
  auto r = sim.run(blob, std::span(&d, 1), std::span(&crc, 1), Traffic{});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(crc, 0xE3069283u);
  EXPECT_EQ(r->beats, 1u);
}

TEST(CrcKernel, EveryLengthUpToThreeBeats) {
  // Each length 0..100 once: every tail size, every beat count up to four, the empty item.
  Rng rng(7);
  std::vector<uint8_t> blob(200);
  for (auto& b : blob) b = static_cast<uint8_t>(rng.next());
  std::vector<ChecksumDescriptor> desc;
  for (uint32_t n = 0; n <= 100; ++n) desc.push_back({n % 37, n, 0});
  std::vector<uint32_t> got(desc.size());
  CrcKernelSim sim;
  auto r = sim.run(blob, desc, got, Traffic{});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  for (size_t i = 0; i < desc.size(); ++i) {
    EXPECT_EQ(got[i], kernels::crc32c(blob.data() + desc[i].offset, desc[i].bytes)) << "length " << desc[i].bytes;
  }
}

TEST(CrcKernel, RandomBatchesUnderBubblesAndBackPressure) {
  Rng rng(42);
  CrcKernelSim sim;
  for (const Traffic& t : kTraffics) {
    CrcCase c = random_crc_case(rng, 300, 700);
    std::vector<uint32_t> got(c.desc.size(), 0xdeadbeef);
    auto r = sim.run(c.blob, c.desc, got, t);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->results, c.desc.size());
    for (size_t i = 0; i < c.desc.size(); ++i) {
      ASSERT_EQ(got[i], kernels::crc32c(c.blob.data() + c.desc[i].offset, c.desc[i].bytes))
          << "item " << i << " bytes " << c.desc[i].bytes << " traffic gap " << t.in_gap_per_mille << " stall "
          << t.out_stall_per_mille;
    }
    if (t.out_stall_per_mille >= 600) {
      EXPECT_GT(r->in_stall_cycles, 0u) << "back-pressure never reached the input";
    }
  }
}

TEST(CrcKernel, ThirtyTwoBytesPerCycle) {
  // Full-rate traffic of 4 KiB items: one beat per cycle, so the rate is 32 bytes per cycle less the
  // pipeline fill and drain of a single batch.
  Rng rng(3);
  const uint32_t items = 256, item_bytes = 4096;
  std::vector<uint8_t> blob(uint64_t{items} * item_bytes);
  for (auto& b : blob) b = static_cast<uint8_t>(rng.next());
  std::vector<ChecksumDescriptor> desc;
  for (uint32_t i = 0; i < items; ++i) desc.push_back({uint64_t{i} * item_bytes, item_bytes, 0});
  std::vector<uint32_t> got(items);
  CrcKernelSim sim;
  auto r = sim.run(blob, desc, got, Traffic{});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  for (uint32_t i = 0; i < items; ++i) ASSERT_EQ(got[i], kernels::crc32c(blob.data() + desc[i].offset, item_bytes));
  const double bytes_per_cycle = static_cast<double>(r->payload_bytes) / static_cast<double>(r->cycles);
  std::printf("crc32c_stream: %llu bytes in %llu cycles = %.2f bytes/cycle (%.1f GB/s at 300 MHz)\n",
              static_cast<unsigned long long>(r->payload_bytes), static_cast<unsigned long long>(r->cycles),
              bytes_per_cycle, bytes_per_cycle * 0.3);
  EXPECT_EQ(r->beats, uint64_t{items} * item_bytes / 32);
  // in_ready is low during reset and rises one cycle after it: that first offer is the only stall.
  EXPECT_LE(r->in_stall_cycles, 1u);
  EXPECT_GE(bytes_per_cycle, 31.9);
}

TEST(CrcKernel, OneItemPerCycleForShortItems) {
  // Items of 1..32 bytes are one beat each and must not stall the stream either.
  Rng rng(5);
  std::vector<uint8_t> blob(4096);
  for (auto& b : blob) b = static_cast<uint8_t>(rng.next());
  std::vector<ChecksumDescriptor> desc;
  for (uint32_t i = 0; i < 2000; ++i) desc.push_back({rng.range(0, 4000), static_cast<uint32_t>(rng.range(1, 32)), 0});
  std::vector<uint32_t> got(desc.size());
  CrcKernelSim sim;
  auto r = sim.run(blob, desc, got, Traffic{});
  ASSERT_TRUE(r.is_ok());
  for (size_t i = 0; i < desc.size(); ++i) ASSERT_EQ(got[i], kernels::crc32c(blob.data() + desc[i].offset, desc[i].bytes));
  EXPECT_LE(r->cycles, desc.size() + 16);  // pipeline fill and drain only
}

TEST(CrcKernel, RejectsRangesOutsideTheBlob) {
  CrcKernelSim sim;
  std::vector<uint8_t> blob(10);
  ChecksumDescriptor d{5, 6, 0};
  uint32_t crc = 0;
  auto r = sim.run(blob, std::span(&d, 1), std::span(&crc, 1), Traffic{});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

// ---- tally

// Match indexes and stamps from a small range make ties common; a few huge ones cover the high bits.
uint64_t tally_value(Rng& rng) {
  if (rng.chance(1, 4)) return rng.next();
  if (rng.chance(1, 4)) return (uint64_t{1} << 32) * rng.range(0, 3) + rng.range(0, 3);
  return rng.range(0, 12);
}

struct TallyCase {
  std::vector<uint64_t> match, reply_hlc;
  std::vector<uint32_t> voter_mask, reply_node, reply_mask;
  std::vector<uint64_t> commit;
  std::vector<uint8_t> newest;
  std::vector<uint32_t> stale;
  kernels::TallyBatch batch;
};

void fill_tally(Rng& rng, uint32_t groups, uint32_t reads, TallyCase* c) {
  c->match.resize(uint64_t{groups} * kTallyReplicasMax);
  c->voter_mask.resize(groups);
  for (auto& m : c->match) m = tally_value(rng);
  for (auto& v : c->voter_mask) v = static_cast<uint32_t>(rng.range(0, 255));
  c->reply_hlc.resize(uint64_t{reads} * kTallyReplicasMax);
  c->reply_node.resize(c->reply_hlc.size());
  c->reply_mask.resize(reads);
  for (auto& h : c->reply_hlc) h = tally_value(rng);
  for (auto& n : c->reply_node) n = rng.chance(1, 3) ? static_cast<uint32_t>(rng.next()) : static_cast<uint32_t>(rng.range(0, 3));
  for (auto& m : c->reply_mask) m = static_cast<uint32_t>(rng.range(0, 255));
  c->commit.assign(groups, ~0ull);
  c->newest.assign(reads, 0x77);
  c->stale.assign(reads, ~0u);
  c->batch = kernels::TallyBatch{groups, c->match.data(), c->voter_mask.data(), c->commit.data(),
                                 reads, c->reply_hlc.data(), c->reply_node.data(), c->reply_mask.data(),
                                 c->newest.data(), c->stale.data()};
}

TEST(TallyKernel, RandomGroupsAndReadsMatchTheReference) {
  Rng rng(99);
  TallyKernelSim sim;
  for (const Traffic& t : kTraffics) {
    TallyCase hw, ref;
    const uint64_t seed = rng.next();
    Rng a(seed), b(seed);
    fill_tally(a, 600, 400, &hw);
    fill_tally(b, 600, 400, &ref);
    kernels::tally_cpu(ref.batch);

    std::vector<TallyRecord> records(tally_records(hw.batch));
    ASSERT_TRUE(pack_tally(hw.batch, records).is_ok());
    std::vector<uint64_t> results(records.size());
    auto r = sim.run(records, results, t);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_TRUE(unpack_tally(results, hw.batch).is_ok());
    for (uint32_t g = 0; g < hw.batch.groups; ++g) {
      ASSERT_EQ(hw.commit[g], ref.commit[g]) << "group " << g << " mask " << hw.voter_mask[g];
    }
    for (uint32_t q = 0; q < hw.batch.reads; ++q) {
      ASSERT_EQ(hw.newest[q], ref.newest[q]) << "read " << q << " mask " << hw.reply_mask[q];
      ASSERT_EQ(hw.stale[q], ref.stale[q]) << "read " << q << " mask " << hw.reply_mask[q];
    }
    if (t.in_gap_per_mille == 0 && t.out_stall_per_mille == 0) {
      EXPECT_LE(r->cycles, records.size() + 16) << "one group per cycle";
    }
  }
}

TEST(TallyKernel, KnownQuorums) {
  // Five voters at 10, 9, 8, 7, 6: three hold 8. Three voters with a tie at the top.
  TallyRecord five{};
  const uint64_t m5[8] = {7, 10, 0, 8, 6, 9, 100, 0};
  for (int r = 0; r < 8; ++r) five.key_low[r] = m5[r];
  five.mask = 0b0011'1011;  // slots 0, 1, 3, 4, 5 vote; 6 (a learner at 100) does not
  TallyRecord tie{};
  const uint64_t m3[8] = {5, 5, 1, 0, 0, 0, 0, 0};
  for (int r = 0; r < 8; ++r) tie.key_low[r] = m3[r];
  tie.mask = 0b111;
  TallyRecord none{};
  none.key_low[0] = 42;
  std::vector<TallyRecord> records{five, tie, none};
  std::vector<uint64_t> results(3);
  TallyKernelSim sim;
  ASSERT_TRUE(sim.run(records, results, Traffic{}).is_ok());
  EXPECT_EQ(results[0], 8u);
  EXPECT_EQ(results[1], 5u);
  EXPECT_EQ(results[2], 0u);
}

// ---- resolve LWW

struct LwwCase {
  std::vector<uint64_t> current_hlc, hlc, hlc_out;
  std::vector<uint32_t> current_node, key_index, node, node_out, source_out;
  kernels::LwwBatch batch;
};

void fill_lww(Rng& rng, uint32_t keys, uint32_t items, LwwCase* c) {
  c->current_hlc.resize(keys);
  c->current_node.resize(keys);
  for (uint32_t k = 0; k < keys; ++k) {
    c->current_hlc[k] = tally_value(rng);
    c->current_node[k] = static_cast<uint32_t>(rng.range(0, 3));
  }
  c->key_index.resize(items);
  c->hlc.resize(items);
  c->node.resize(items);
  for (uint32_t i = 0; i < items; ++i) {
    c->key_index[i] = static_cast<uint32_t>(rng.uniform(keys));
    c->hlc[i] = tally_value(rng);
    c->node[i] = rng.chance(1, 4) ? static_cast<uint32_t>(rng.next()) : static_cast<uint32_t>(rng.range(0, 3));
  }
  c->hlc_out.assign(keys, 0);
  c->node_out.assign(keys, 0);
  c->source_out.assign(keys, 0);
  c->batch = kernels::LwwBatch{keys, c->current_hlc.data(), c->current_node.data(), items, c->key_index.data(),
                               c->hlc.data(), c->node.data(), c->hlc_out.data(), c->node_out.data(),
                               c->source_out.data()};
}

TEST(LwwKernel, RandomBatchesMatchTheReference) {
  Rng rng(1234);
  LwwKernelSim sim;
  for (const Traffic& t : kTraffics) {
    const uint64_t seed = rng.next();
    Rng a(seed), b(seed);
    LwwCase hw, ref;
    // More keys than items leaves many keys unwritten; fewer makes long runs per key.
    const uint32_t keys = static_cast<uint32_t>(rng.range(1, 400));
    fill_lww(a, keys, 700, &hw);
    fill_lww(b, keys, 700, &ref);
    kernels::resolve_lww_cpu(ref.batch);

    std::vector<uint32_t> key_starts(keys + 1);
    std::vector<LwwRecord> records(lww_records_max(hw.batch));
    uint64_t n = 0;
    ASSERT_TRUE(pack_lww(hw.batch, key_starts, records, &n).is_ok());
    std::vector<LwwResult> results(keys);
    auto r = sim.run(std::span<const LwwRecord>(records.data(), n), results, t);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->results, keys);
    ASSERT_TRUE(unpack_lww(results, hw.batch).is_ok());
    for (uint32_t k = 0; k < keys; ++k) {
      ASSERT_EQ(hw.source_out[k], ref.source_out[k]) << "key " << k;
      ASSERT_EQ(hw.hlc_out[k], ref.hlc_out[k]) << "key " << k;
      ASSERT_EQ(hw.node_out[k], ref.node_out[k]) << "key " << k;
    }
    if (t.in_gap_per_mille == 0 && t.out_stall_per_mille == 0) {
      EXPECT_LE(r->cycles, n + 16) << "one comparison per cycle";
    }
  }
}

TEST(LwwKernel, TiesKeepCurrentThenEarliestIncoming) {
  // Key 0: an incoming copy of the current stamp loses. Key 1: two equal winners, the first is kept.
  std::vector<LwwRecord> records{
      {50, 50, 2, 2, 0, kLwwFirst | kLwwLast},
      {10, 60, 1, 3, 1, kLwwFirst},
      {10, 60, 1, 3, 2, 0},
      {10, 59, 1, 9, 3, kLwwLast},
  };
  std::vector<LwwResult> results(2);
  LwwKernelSim sim;
  ASSERT_TRUE(sim.run(records, results, Traffic{}).is_ok());
  EXPECT_EQ(results[0].source, kNoSourceHw);
  EXPECT_EQ(results[0].hlc, 50u);
  EXPECT_EQ(results[1].source, 1u);
  EXPECT_EQ(results[1].hlc, 60u);
  EXPECT_EQ(results[1].node, 3u);
}

TEST(LwwKernel, KeysWithoutVersionsKeepTheirCurrentOne) {
  // No items at all: every key is one empty record and comes back unchanged.
  Rng rng(5);
  LwwCase c;
  fill_lww(rng, 9, 0, &c);
  std::vector<uint32_t> key_starts(10);
  std::vector<LwwRecord> records(lww_records_max(c.batch));
  uint64_t n = 0;
  ASSERT_TRUE(pack_lww(c.batch, key_starts, records, &n).is_ok());
  ASSERT_EQ(n, 9u);
  std::vector<LwwResult> results(9);
  LwwKernelSim sim;
  auto r = sim.run(std::span<const LwwRecord>(records.data(), n), results, Traffic{200, 200, 3});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  for (uint32_t k = 0; k < 9; ++k) {
    EXPECT_EQ(results[k].hlc, c.current_hlc[k]);
    EXPECT_EQ(results[k].node, c.current_node[k]);
    EXPECT_EQ(results[k].source, kNoSourceHw);
  }
}

TEST(Layout, RejectsShortBuffers) {
  Rng rng(6);
  LwwCase c;
  fill_lww(rng, 4, 10, &c);
  std::vector<uint32_t> key_starts(5);
  std::vector<LwwRecord> records(lww_records_max(c.batch) - 1);
  uint64_t n = 0;
  EXPECT_EQ(pack_lww(c.batch, key_starts, records, &n).code(), Code::kInvalidArgument);
  TallyCase t;
  fill_tally(rng, 3, 2, &t);
  std::vector<TallyRecord> tally(4);
  EXPECT_EQ(pack_tally(t.batch, tally).code(), Code::kInvalidArgument);
  // A read result with bits above the stale mask is a device fault, not data.
  std::vector<uint64_t> results(5, 0);
  results[3] = uint64_t{1} << 20;
  EXPECT_EQ(unpack_tally(results, t.batch).code(), Code::kCorruption);
}

}  // namespace
}  // namespace tally::drivers::fpga
