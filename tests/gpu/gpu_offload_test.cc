// The cuda backend against the CPU reference on every differential shape, and a CUDA failure in the
// middle of a run re-run on the CPU by the scheduler. Skips (reported as skipped) without a GPU.
#include <gtest/gtest.h>

#include "drivers/cpu/cpu_device.h"
#include "drivers/cuda/cuda_device.h"
#include "host/offload/scheduler.h"
#include "kernels/cpu/reference.h"
#include "tests/unit/offload/differential.h"

namespace tally::drivers {
namespace {

using kernels::BatchShape;
using kernels::OwnedBatch;

std::unique_ptr<CudaDevice> open_or_skip(CudaDeviceOptions options = {}) {
  Result<std::unique_ptr<CudaDevice>> dev = CudaDevice::open(options);
  if (!dev.is_ok()) return nullptr;
  return std::move(dev).value();
}

class GpuDifferential : public ::testing::TestWithParam<Op> {};

TEST_P(GpuDifferential, MatchesReferenceBitForBit) {
  auto dev = open_or_skip();
  if (dev == nullptr) GTEST_SKIP() << "no CUDA device present";
  Rng rng(0x6a0 + static_cast<int>(GetParam()));
  for (const BatchShape& shape : kernels::testing::differential_shapes(GetParam(), /*large=*/true)) {
    SCOPED_TRACE(kernels::testing::shape_name(shape));
    OwnedBatch expected = OwnedBatch::random(shape, rng);
    OwnedBatch actual = expected;
    expected.poison_outputs(0x33);
    actual.poison_outputs(0xcc);
    ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
    const Status st = run_sync(*dev, actual.batch());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(expected.compare_outputs(actual), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GpuDifferential,
                         ::testing::Values(Op::kChecksum, Op::kPartition, Op::kResolve, Op::kTally, Op::kMerkle),
                         [](const auto& info) { return std::string(kernels::op_name(info.param)); });

TEST(GpuFault, FailedBatchIsRerunOnCpuAndDeviceRetired) {
  auto dev = open_or_skip(CudaDeviceOptions{.inject_failure_at_batch = 2});
  if (dev == nullptr) GTEST_SKIP() << "no CUDA device present";
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  // A model that always prefers the GPU, so the failure happens on it.
  offload::CostModel model = offload::CostModel::defaults();
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    model.set(static_cast<Op>(o), Backend::kCpu, {1e9, 1e3, 1.0, true});
    model.set(static_cast<Op>(o), Backend::kCuda, {1, 0, 1e9, true});
  }
  offload::Scheduler s(model, SystemClock::instance());
  s.add_device(&cpu);
  s.add_device(dev.get());
  Rng rng(12);
  for (int i = 0; i < 3; ++i) {
    OwnedBatch expected = OwnedBatch::random({.op = Op::kChecksum, .items = 10'000, .item_bytes_min = 0, .item_bytes_max = 500}, rng);
    OwnedBatch actual = expected;
    ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
    ASSERT_TRUE(s.run(actual.batch()).is_ok());
    EXPECT_EQ(expected.compare_outputs(actual), "") << "batch " << i;
  }
  EXPECT_FALSE(dev->healthy());
  EXPECT_EQ(s.counters(Op::kChecksum, Backend::kCuda).batches, 1u);
  EXPECT_EQ(s.counters(Op::kChecksum, Backend::kCuda).failures, 1u);
  EXPECT_EQ(s.counters(Op::kChecksum, Backend::kCpu).batches, 2u);
}

}  // namespace
}  // namespace tally::drivers
