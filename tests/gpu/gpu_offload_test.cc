// The cuda backend against the CPU reference on every differential shape, a CUDA failure in the
// middle of a run re-run on the CPU by the scheduler, and the driver's threading and polling rules.
// Skips (exit 77: reported as skipped) without a GPU, fails instead under TALLY_REQUIRE_GPU=1.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "drivers/cpu/cpu_device.h"
#include "drivers/cuda/cuda_device.h"
#include "host/offload/scheduler.h"
#include "kernels/cpu/reference.h"
#include "tests/gpu/gpu_test.h"
#include "tests/unit/offload/differential.h"

namespace tally::drivers {
namespace {

using kernels::BatchShape;
using kernels::OwnedBatch;

// The device, or nullptr with the reason (the runtime's error) in *why.
std::unique_ptr<CudaDevice> open_device(CudaDeviceOptions options, std::string* why) {
  Result<std::unique_ptr<CudaDevice>> dev = CudaDevice::open(options);
  if (!dev.is_ok()) {
    *why = dev.status().to_string();
    return nullptr;
  }
  return std::move(dev).value();
}

#define OPEN_OR_SKIP(dev, options)                     \
  std::string dev##_why;                               \
  auto dev = open_device(options, &dev##_why);         \
  if (dev == nullptr) TALLY_GPU_SKIP(dev##_why)

class GpuDifferential : public ::testing::TestWithParam<Op> {};

TEST_P(GpuDifferential, MatchesReferenceBitForBit) {
  OPEN_OR_SKIP(dev, CudaDeviceOptions{});
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
  OPEN_OR_SKIP(dev, CudaDeviceOptions{.inject_failure_at_batch = 2});
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

// cudaSetDevice is per thread: batches submitted and polled from threads other than the opener's
// (tallyd's shards) run, and the runtime's last-error slot of each thread stays clean.
TEST(GpuThreads, OtherThreadsSubmitAndPoll) {
  OPEN_OR_SKIP(dev, CudaDeviceOptions{});
  Rng rng(21);
  OwnedBatch expected = OwnedBatch::random({.op = Op::kMerkle, .items = 100'000}, rng);
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  for (int t = 0; t < 3; ++t) {
    OwnedBatch actual = expected;
    actual.poison_outputs(0xcc);
    Status st;
    std::thread([&] {
      st = run_sync(*dev, actual.batch());
      if (st.is_ok() && cudaPeekAtLastError() != cudaSuccess) st = Status::internal("last error left set");
    }).join();
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    EXPECT_EQ(expected.compare_outputs(actual), "") << "thread " << t;
  }
  EXPECT_TRUE(dev->healthy());
}

// Polls that find a batch not yet done (cudaErrorNotReady) must not leave that answer for the next
// launch to report as its failure: many not-ready polls, then more batches, all healthy.
TEST(GpuPoll, NotReadyAnswersDoNotFailLaterLaunches) {
  OPEN_OR_SKIP(dev, CudaDeviceOptions{});
  Rng rng(22);
  OwnedBatch big = OwnedBatch::random({.op = Op::kChecksum, .items = 200'000, .item_bytes_min = 256, .item_bytes_max = 1024}, rng);
  OwnedBatch expected = big;
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  for (int round = 0; round < 4; ++round) {
    ASSERT_TRUE(dev->submit(big.batch(), 1).is_ok());
    Completion done;
    uint64_t not_ready = 0;
    while (dev->poll(std::span<Completion>(&done, 1), 0) == 0) ++not_ready;
    ASSERT_TRUE(done.status.is_ok()) << done.status.to_string() << " after " << not_ready << " not-ready polls";
    EXPECT_GT(done.device_ns, 0u);
    EXPECT_EQ(expected.compare_outputs(big), "");
    // A Thrust op next: its own error checks would see a stale cudaErrorNotReady too.
    OwnedBatch m = OwnedBatch::random({.op = Op::kResolve, .items = 10'000}, rng);
    ASSERT_TRUE(run_sync(*dev, m.batch()).is_ok());
  }
  EXPECT_TRUE(dev->healthy());
}

// poll() with a wait sleeps until the batch completes: it returns as soon as the batch is done (not
// at the deadline), and a small batch's reported time is not rounded up to a sleep.
TEST(GpuPoll, WaitReturnsWhenTheBatchCompletes) {
  OPEN_OR_SKIP(dev, CudaDeviceOptions{});
  Rng rng(23);
  OwnedBatch small = OwnedBatch::random({.op = Op::kChecksum, .items = 1, .item_bytes_min = 64, .item_bytes_max = 64}, rng);
  uint64_t best_ns = ~uint64_t{0};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(dev->submit(small.batch(), 2).is_ok());
    Completion done;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(dev->poll(std::span<Completion>(&done, 1), 2'000'000'000), 1u);
    const auto waited = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(done.status.is_ok());
    EXPECT_LT(waited, std::chrono::milliseconds(500));
    best_ns = std::min(best_ns, done.device_ns);
  }
  // One 64-byte item: two copies and a launch, ~10 us on any current card; a sleep between polls
  // (20 us asked, 70 us or more with the kernel's timer slack) would show up here.
  EXPECT_LT(best_ns, 50'000u);
}

}  // namespace
}  // namespace tally::drivers
