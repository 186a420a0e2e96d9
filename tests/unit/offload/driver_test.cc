// The cpu driver against the CPU reference, inline and with its thread pool, and its bounds.
#include <gtest/gtest.h>

#include "drivers/cpu/cpu_device.h"
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
}

}  // namespace
}  // namespace tally::drivers
