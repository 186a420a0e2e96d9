// The cpu driver against the CPU reference, inline and with its thread pool, and its bounds.
#include <gtest/gtest.h>

#include <cstring>
#include <type_traits>

#include "drivers/cpu/cpu_device.h"
#include "drivers/cuda/layout.h"
#include "kernels/cpu/reference.h"
#include "tests/unit/offload/differential.h"

namespace tally::drivers {
namespace {

using kernels::BatchShape;
using kernels::OwnedBatch;

void check_device(Device& dev, uint64_t seed) {
  Rng rng(seed);
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    for (const BatchShape& shape : kernels::testing::differential_shapes(static_cast<Op>(o), /*large=*/false)) {
      SCOPED_TRACE(kernels::testing::shape_name(shape));
      OwnedBatch expected = OwnedBatch::random(shape, rng);
      OwnedBatch actual = expected;
      expected.poison_outputs(0x11);
      actual.poison_outputs(0xee);
      ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
      const Status st = run_sync(dev, actual.batch());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      EXPECT_EQ(expected.compare_outputs(actual), "");
    }
  }
}

TEST(CpuDevice, InlineMatchesReference) {
  CpuDevice dev(CpuDeviceOptions{.threads = 0});
  check_device(dev, 1);
}

TEST(CpuDevice, ThreadPoolSplitsBulkBatchesAndMatchesReference) {
  // bulk_items_min small, so the 513-item shapes are split into chunks across the pool.
  CpuDevice dev(CpuDeviceOptions{.threads = 2, .bulk_items_min = 16, .chunks_per_batch_max = 7});
  check_device(dev, 2);
  Rng rng(5);
  OwnedBatch expected = OwnedBatch::random({.op = Op::kChecksum, .items = 100'000, .item_bytes_min = 0, .item_bytes_max = 100}, rng);
  OwnedBatch actual = expected;
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  ASSERT_TRUE(run_sync(dev, actual.batch()).is_ok());
  EXPECT_EQ(expected.compare_outputs(actual), "");
}

TEST(CpuDevice, InFlightBoundAndInvalidBatches) {
  CpuDevice dev(CpuDeviceOptions{.threads = 1, .in_flight_max = 2, .bulk_items_min = 1});
  Rng rng(9);
  OwnedBatch a = OwnedBatch::random({.op = Op::kChecksum, .items = 2000, .item_bytes_min = 0, .item_bytes_max = 2000}, rng);
  OwnedBatch b = a, c = a;
  ASSERT_TRUE(dev.submit(a.batch(), 1).is_ok());
  ASSERT_TRUE(dev.submit(b.batch(), 2).is_ok());
  EXPECT_EQ(dev.submit(c.batch(), 3).code(), Code::kResourceExhausted);
  Completion done[2];
  size_t got = 0;
  for (int i = 0; i < 1000 && got < 2; ++i) got += dev.poll(std::span<Completion>(done + got, 2 - got), 10'000'000);
  ASSERT_EQ(got, 2u);
  EXPECT_EQ(dev.in_flight(), 0u);
  EXPECT_TRUE(done[0].status.is_ok() && done[1].status.is_ok());
  EXPECT_EQ(a.compare_outputs(b), "");
  // A range past the end of the blob is refused at submit.
  c.batch().checksum.blob_bytes = 0;
  EXPECT_EQ(dev.submit(c.batch(), 4).code(), Code::kInvalidArgument);
  // The inline path validates inside the checksum loop: same answer, nothing left in flight.
  CpuDevice inline_dev(CpuDeviceOptions{.threads = 0});
  EXPECT_EQ(inline_dev.submit(c.batch(), 5).code(), Code::kInvalidArgument);
  EXPECT_EQ(inline_dev.in_flight(), 0u);
}

// submit/poll and run_inline are two doors to the same work: both must match the reference, and
// run_inline must decline bulk batches meant for the pool without touching them.
TEST(CpuDevice, RunInlineAndSubmitAgreeAndBulkBatchesAreDeclined) {
  CpuDevice dev(CpuDeviceOptions{.threads = 0});
  Rng rng(31);
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    for (const BatchShape& shape : kernels::testing::differential_shapes(static_cast<Op>(o), /*large=*/false)) {
      SCOPED_TRACE(kernels::testing::shape_name(shape));
      OwnedBatch expected = OwnedBatch::random(shape, rng);
      OwnedBatch queued = expected, direct = expected;
      expected.poison_outputs(0x11);
      queued.poison_outputs(0xee);
      direct.poison_outputs(0x5a);
      ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
      ASSERT_TRUE(dev.submit(queued.batch(), 77).is_ok());
      Completion done;
      ASSERT_EQ(dev.poll(std::span<Completion>(&done, 1), 0), 1u);
      EXPECT_EQ(done.tag, 77u);
      ASSERT_TRUE(done.status.is_ok());
      EXPECT_EQ(expected.compare_outputs(queued), "");
      ASSERT_TRUE(dev.run_inline(direct.batch(), &done));
      ASSERT_TRUE(done.status.is_ok()) << done.status.to_string();
      EXPECT_EQ(expected.compare_outputs(direct), "");
    }
  }
  EXPECT_EQ(dev.in_flight(), 0u);

  CpuDevice pool(CpuDeviceOptions{.threads = 1, .bulk_items_min = 16});
  OwnedBatch bulk = OwnedBatch::random({.op = Op::kChecksum, .items = 100, .item_bytes_min = 1, .item_bytes_max = 50}, rng);
  bulk.poison_outputs(0x33);
  OwnedBatch untouched = bulk;
  Completion done;
  EXPECT_FALSE(pool.run_inline(bulk.batch(), &done));
  EXPECT_EQ(bulk.compare_outputs(untouched), "");
  EXPECT_EQ(pool.in_flight(), 0u);
  OwnedBatch small = OwnedBatch::random({.op = Op::kChecksum, .items = 8, .item_bytes_min = 1, .item_bytes_max = 50}, rng);
  OwnedBatch small_expected = small;
  ASSERT_TRUE(kernels::run_reference(small_expected.batch()).is_ok());
  ASSERT_TRUE(pool.run_inline(small.batch(), &done));
  EXPECT_TRUE(done.status.is_ok());
  EXPECT_EQ(small.compare_outputs(small_expected), "");

  // Malformed batches get an error status on both paths, for the fused checksum and for the others.
  OwnedBatch bad_sum = small;
  bad_sum.batch().checksum.blob_bytes = 1;
  ASSERT_TRUE(dev.run_inline(bad_sum.batch(), &done));
  EXPECT_EQ(done.status.code(), Code::kInvalidArgument);
  OwnedBatch bad_tally = OwnedBatch::random({.op = Op::kTally, .items = 4}, rng);
  bad_tally.batch().tally.match = nullptr;
  ASSERT_TRUE(dev.run_inline(bad_tally.batch(), &done));
  EXPECT_EQ(done.status.code(), Code::kInvalidArgument);
  EXPECT_EQ(dev.submit(bad_tally.batch(), 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(dev.in_flight(), 0u);

  // Small batches are not timed (two clock reads would cost more than the work); large ones are.
  ASSERT_TRUE(dev.run_inline(small.batch(), &done));
  EXPECT_EQ(done.device_ns, 0u);
  OwnedBatch large = OwnedBatch::random({.op = Op::kChecksum, .items = 5000, .item_bytes_min = 64, .item_bytes_max = 64}, rng);
  ASSERT_TRUE(dev.run_inline(large.batch(), &done));
  EXPECT_GT(done.device_ns, 0u);
}

// The staging layout the cuda driver uses, exercised on the CPU: relocate every array of a batch into
// one buffer (inputs, then outputs), run the reference on the relocated view, copy outputs back.
TEST(StagingLayout, RelocatedBatchComputesTheSameOutputs) {
  Rng rng(21);
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    for (const BatchShape& shape : kernels::testing::differential_shapes(static_cast<Op>(o), /*large=*/false)) {
      SCOPED_TRACE(kernels::testing::shape_name(shape));
      OwnedBatch expected = OwnedBatch::random(shape, rng);
      OwnedBatch actual = expected;
      actual.poison_outputs(0x77);
      ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
      Batch view = actual.batch();
      std::vector<uint8_t> staging;
      std::vector<std::pair<uint64_t, uint64_t>> outputs;  // (offset, bytes) in placement order
      uint64_t at = 0;
      // Arrays padded to 64 bytes like the driver's 256, so every array stays aligned for its type.
      auto padded = [](uint64_t bytes) { return (bytes + 8 + 63) / 64 * 64; };
      layout::for_each_array(view, [&](auto*&, uint64_t bytes, bool) { at += padded(bytes); });
      staging.resize(at + 64);
      uint8_t* base = staging.data() + (64 - reinterpret_cast<uintptr_t>(staging.data()) % 64) % 64;
      at = 0;
      layout::for_each_array(view, [&](auto*& ptr, uint64_t bytes, bool output) {
        if (!output && bytes > 0) std::memcpy(base + at, ptr, bytes);
        if (output) outputs.push_back({static_cast<uint64_t>(base - staging.data()) + at, bytes});
        using T = std::remove_cv_t<std::remove_pointer_t<std::remove_reference_t<decltype(ptr)>>>;
        ptr = reinterpret_cast<T*>(base + at);
        at += padded(bytes);
      });
      ASSERT_TRUE(kernels::run_reference(view).is_ok());
      size_t k = 0;
      Batch host = actual.batch();
      layout::for_each_array(host, [&](auto*& ptr, uint64_t bytes, bool output) {
        if (!output) return;
        ASSERT_EQ(outputs[k].second, bytes);
        if (bytes > 0) std::memcpy(const_cast<void*>(static_cast<const void*>(ptr)), staging.data() + outputs[k].first, bytes);
        ++k;
      });
      EXPECT_EQ(expected.compare_outputs(actual), "");
    }
  }
}

}  // namespace
}  // namespace tally::drivers
