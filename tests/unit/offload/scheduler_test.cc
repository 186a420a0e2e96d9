// Scheduler: choice by predicted completion, CPU fallback when a device fails mid-batch, counters;
// the range batcher's bounds; the cost model's fit and calibration file.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>

#include "drivers/cpu/cpu_device.h"
#include "host/offload/batcher.h"
#include "host/offload/scheduler.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/slot.h"
#include "kernels/testing/batch_gen.h"

namespace tally::offload {
namespace {

using drivers::Capabilities;
using drivers::CpuDevice;
using drivers::CpuDeviceOptions;
using kernels::OwnedBatch;

// A stand-in accelerator. Healthy, it runs the reference; with fail_after_items set, it computes that
// many checksum items, scribbles over the rest, reports the batch failed and marks itself failed.
class FakeDevice final : public Device {
 public:
  explicit FakeDevice(Backend backend) {
    caps_.backend = backend;
    caps_.name = "fake";
    caps_.in_flight_max = 4;
    for (auto& l : caps_.ops) l = drivers::OpLimits{true, kernels::kBatchItemsMax, kernels::kBatchBlobBytesMax};
  }
  const Capabilities& capabilities() const override { return caps_; }
  Status submit(const Batch& batch, uint64_t tag) override {
    if (failed_) return Status::unavailable("fake: failed");
    if (done_.size() >= caps_.in_flight_max) return Status::exhausted("fake: full");
    ++submitted;
    Status st = Status::ok();
    if (fail_after_items >= 0 && batch.op == Op::kChecksum) {
      const uint32_t half = std::min<uint32_t>(batch.checksum.items, static_cast<uint32_t>(fail_after_items));
      kernels::checksum_cpu(batch.checksum, 0, half);
      for (uint32_t i = half; i < batch.checksum.items; ++i) batch.checksum.crc_out[i] = 0xdeadbeef;
      failed_ = true;
      st = Status::unavailable("fake: device lost mid-batch");
    } else {
      st = kernels::run_reference(batch);
    }
    done_.push_back(Completion{tag, std::move(st), 1000});
    return Status::ok();
  }
  size_t poll(std::span<Completion> out, uint64_t) override {
    size_t n = 0;
    while (n < out.size() && !done_.empty()) out[n++] = std::move(done_.front()), done_.pop_front();
    return n;
  }
  uint32_t in_flight() const override { return static_cast<uint32_t>(done_.size()); }
  bool healthy() const override { return !failed_; }

  int64_t fail_after_items = -1;
  int submitted = 0;

 private:
  Capabilities caps_;
  std::deque<Completion> done_;
  bool failed_ = false;
};

// A model where the fake CUDA device costs 1 ms per batch but nothing per item, the CPU 1 us per item.
CostModel crossover_model() {
  CostModel m = CostModel::defaults();
  for (size_t o = 0; o < kernels::kOpCount; ++o) {
    m.set(static_cast<Op>(o), Backend::kCpu, {100, 1000, 1e9, true});
    m.set(static_cast<Op>(o), Backend::kCuda, {1'000'000, 0, 1e9, true});
  }
  return m;
}

TEST(Scheduler, PicksEarliestPredictedCompletionIncludingQueue) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  FakeDevice gpu(Backend::kCuda);
  Scheduler s(crossover_model(), SystemClock::instance());
  s.add_device(&cpu);
  s.add_device(&gpu);
  Rng rng(1);
  OwnedBatch small = OwnedBatch::random({.op = Op::kTally, .items = 100}, rng);    // 0.1 ms on cpu
  OwnedBatch large = OwnedBatch::random({.op = Op::kTally, .items = 10'000}, rng);  // 10 ms on cpu
  EXPECT_EQ(s.choose(small.batch()), &cpu);
  EXPECT_EQ(s.choose(large.batch()), &gpu);
  // With four large batches queued on the device (4 ms predicted), a 3000-item batch (3 ms on the
  // CPU, 5 ms behind the device's queue) goes to the CPU.
  for (uint64_t t = 0; t < 4; ++t) ASSERT_TRUE(s.submit(large.batch(), t).is_ok());
  OwnedBatch mid = OwnedBatch::random({.op = Op::kTally, .items = 3000}, rng);
  EXPECT_EQ(s.choose(mid.batch()), &cpu);
  Completion done[8];
  size_t got = 0;
  for (int i = 0; i < 100 && got < 4; ++i) got += s.poll(std::span<Completion>(done + got, 8 - got), 1'000'000);
  EXPECT_EQ(got, 4u);
  EXPECT_EQ(s.counters(Op::kTally, Backend::kCuda).batches, 4u);
  EXPECT_EQ(s.counters(Op::kTally, Backend::kCuda).items, 40'000u);
}

// choose() skips predicting for batches too small for any device to win; over random cost models and
// batch shapes it must still pick exactly the backend with the earliest prediction (the CPU on ties).
TEST(Scheduler, ChoiceEqualsTheArgminOfThePredictionsForRandomModels) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  FakeDevice gpu(Backend::kCuda);
  FakeDevice fpga(Backend::kFpgaSim);
  Rng rng(77);
  int device_choices = 0, cpu_choices = 0;
  for (int trial = 0; trial < 200; ++trial) {
    CostModel m = CostModel::defaults();
    auto random_params = [&rng](double launch_max) {
      return CostParams{static_cast<double>(rng.uniform(static_cast<uint64_t>(launch_max))),
                        static_cast<double>(rng.uniform(2000)) / 100.0, 0.05 + static_cast<double>(rng.uniform(4000)) / 100.0,
                        true};
    };
    m.set(Op::kChecksum, Backend::kCpu, random_params(500));
    m.set(Op::kChecksum, Backend::kCuda, random_params(20'000));
    m.set(Op::kChecksum, Backend::kFpgaSim, random_params(20'000));
    Scheduler s(m, SystemClock::instance());
    s.add_device(&cpu);
    s.add_device(&gpu);
    s.add_device(&fpga);
    const uint32_t items = static_cast<uint32_t>(rng.uniform(2000));
    const uint32_t len = static_cast<uint32_t>(rng.uniform(300));
    OwnedBatch b = OwnedBatch::random({.op = Op::kChecksum, .items = items, .item_bytes_min = len, .item_bytes_max = len}, rng);
    const uint64_t bytes = b.batch().input_bytes();
    Device* expect = &cpu;
    double best = m.predict_ns(Op::kChecksum, Backend::kCpu, items, bytes);
    for (Device* d : {static_cast<Device*>(&gpu), static_cast<Device*>(&fpga)}) {
      const double ns = m.predict_ns(Op::kChecksum, d->capabilities().backend, items, bytes);
      if (ns < best) expect = d, best = ns;
    }
    ASSERT_EQ(s.choose(b.batch()), expect) << "trial " << trial << " items " << items << " bytes " << bytes;
    (expect == &cpu ? cpu_choices : device_choices)++;
  }
  // Both outcomes occurred, so the test exercised the shortcut and the full comparison.
  EXPECT_GT(cpu_choices, 20);
  EXPECT_GT(device_choices, 20);
}

TEST(Scheduler, DeviceFailingMidBatchIsRerunOnCpuAndCounted) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  FakeDevice gpu(Backend::kCuda);
  gpu.fail_after_items = 500;
  Scheduler s(crossover_model(), SystemClock::instance());
  s.add_device(&cpu);
  s.add_device(&gpu);
  Rng rng(2);
  OwnedBatch expected = OwnedBatch::random({.op = Op::kChecksum, .items = 2000, .item_bytes_min = 0, .item_bytes_max = 300}, rng);
  OwnedBatch actual = expected;
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  ASSERT_EQ(s.choose(actual.batch()), &gpu);
  ASSERT_TRUE(s.run(actual.batch()).is_ok());
  EXPECT_EQ(gpu.submitted, 1);
  EXPECT_EQ(expected.compare_outputs(actual), "");
  const OpBackendCounters& g = s.counters(Op::kChecksum, Backend::kCuda);
  EXPECT_EQ(g.failures, 1u);
  EXPECT_EQ(g.fallbacks, 1u);
  EXPECT_EQ(g.batches, 0u);
  EXPECT_EQ(s.counters(Op::kChecksum, Backend::kCpu).batches, 1u);
  EXPECT_EQ(s.counters(Op::kChecksum, Backend::kCpu).items, 2000u);
  EXPECT_NE(s.info().find("offload_checksum_cuda:batches=0,"), std::string::npos) << s.info();
  // The failed device is no longer offered work.
  EXPECT_EQ(s.choose(actual.batch()), &cpu);
}

TEST(Scheduler, RefusedSubmitFallsBackToCpu) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  FakeDevice gpu(Backend::kCuda);
  Scheduler s(crossover_model(), SystemClock::instance());
  s.add_device(&cpu);
  s.add_device(&gpu);
  Rng rng(4);
  OwnedBatch b = OwnedBatch::random({.op = Op::kMerkle, .items = 20'000, .merkle_depth = 6}, rng);
  OwnedBatch expected = b;
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  gpu.fail_after_items = 0;  // only checksum batches fail mid-way; fail it with a checksum first
  OwnedBatch c = OwnedBatch::random({.op = Op::kChecksum, .items = 5000, .item_bytes_min = 1, .item_bytes_max = 8}, rng);
  ASSERT_TRUE(s.run(c.batch()).is_ok());
  EXPECT_FALSE(gpu.healthy());
  ASSERT_TRUE(s.run(b.batch()).is_ok());
  EXPECT_EQ(expected.compare_outputs(b), "");
  EXPECT_EQ(s.counters(Op::kMerkle, Backend::kCpu).batches, 1u);
}

TEST(Scheduler, InvalidBatchIsRefused) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  Scheduler s(CostModel::defaults(), SystemClock::instance());
  s.add_device(&cpu);
  Rng rng(5);
  OwnedBatch b = OwnedBatch::random({.op = Op::kChecksum, .items = 3, .item_bytes_min = 5, .item_bytes_max = 5}, rng);
  b.batch().checksum.blob_bytes = 2;
  EXPECT_EQ(s.submit(b.batch(), 1).code(), Code::kInvalidArgument);
  EXPECT_EQ(s.in_flight(), 0u);
}

// run() on the CPU skips the in-flight table; it must still count what it ran, and only that.
TEST(Scheduler, InlineRunsAreCountedAndErrorsAreNot) {
  CpuDevice cpu(CpuDeviceOptions{.threads = 0, .in_flight_max = 256});
  Scheduler s(CostModel::defaults(), SystemClock::instance());
  s.add_device(&cpu);
  Rng rng(6);
  OwnedBatch b = OwnedBatch::random({.op = Op::kChecksum, .items = 10, .item_bytes_min = 3, .item_bytes_max = 3}, rng);
  OwnedBatch expected = b;
  b.poison_outputs(0x77);
  ASSERT_TRUE(kernels::run_reference(expected.batch()).is_ok());
  ASSERT_TRUE(s.run(b.batch()).is_ok());
  ASSERT_TRUE(s.run(b.batch()).is_ok());
  EXPECT_EQ(expected.compare_outputs(b), "");
  const OpBackendCounters& c = s.counters(Op::kChecksum, Backend::kCpu);
  EXPECT_EQ(c.batches, 2u);
  EXPECT_EQ(c.items, 20u);
  EXPECT_EQ(c.bytes, 2 * b.batch().input_bytes());
  b.batch().checksum.blob_bytes = 1;
  EXPECT_EQ(s.run(b.batch()).code(), Code::kInvalidArgument);
  EXPECT_EQ(c.batches, 2u);
  EXPECT_EQ(s.in_flight(), 0u);
}

TEST(RangeBatcher, FlushesOnItemsBytesAndAge) {
  std::vector<uint32_t> map(kernels::kSlotCount, 3);
  RangeBatcher by_items(Op::kChecksum, BatcherOptions{.items_max = 3, .blob_bytes_max = 1000, .linger_ns = 1000});
  const uint8_t data[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(by_items.should_flush(10));
    ASSERT_EQ(by_items.add(std::span<const uint8_t>(data, 9), 10).value(), static_cast<uint32_t>(i));
  }
  EXPECT_TRUE(by_items.should_flush(10));
  EXPECT_EQ(by_items.add(std::span<const uint8_t>(data, 1), 10).status().code(), Code::kResourceExhausted);
  ASSERT_TRUE(kernels::run_reference(by_items.batch()).is_ok());
  EXPECT_EQ(by_items.crc()[2], 0xE3069283u);

  RangeBatcher by_bytes(Op::kChecksum, BatcherOptions{.items_max = 100, .blob_bytes_max = 10, .linger_ns = 1000});
  ASSERT_TRUE(by_bytes.add(std::span<const uint8_t>(data, 9), 0).is_ok());
  EXPECT_FALSE(by_bytes.should_flush(0));
  EXPECT_EQ(by_bytes.add(std::span<const uint8_t>(data, 2), 0).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(by_bytes.add(std::span<const uint8_t>(data, 9), 0).status().code(), Code::kResourceExhausted);
  ASSERT_TRUE(by_bytes.add(std::span<const uint8_t>(data, 1), 0).is_ok());
  EXPECT_TRUE(by_bytes.should_flush(0));

  RangeBatcher by_age(Op::kPartition, BatcherOptions{.items_max = 100, .blob_bytes_max = 100, .linger_ns = 1000}, map.data());
  EXPECT_FALSE(by_age.should_flush(5000));  // empty never flushes
  ASSERT_TRUE(by_age.add(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("foo"), 3), 5000).is_ok());
  EXPECT_FALSE(by_age.should_flush(5999));
  EXPECT_TRUE(by_age.should_flush(6000));
  ASSERT_TRUE(kernels::run_reference(by_age.batch()).is_ok());
  EXPECT_EQ(by_age.slots()[0], 12182);
  EXPECT_EQ(by_age.partitions()[0], 3u);
  by_age.reset();
  EXPECT_EQ(by_age.items(), 0u);
  EXPECT_FALSE(by_age.should_flush(1'000'000));
}

TEST(CostModel, FitRecoversParametersAndFileRoundTrips) {
  std::vector<CostSample> samples;
  for (double items : {1.0, 100.0, 10'000.0}) {
    for (double bytes : {0.0, 1e4, 1e6}) samples.push_back({items, bytes, 5000 + 3 * items + bytes / 8});
  }
  const CostParams p = fit_cost(samples.data(), samples.size());
  EXPECT_NEAR(p.launch_ns, 5000, 1);
  EXPECT_NEAR(p.per_item_ns, 3, 1e-3);
  EXPECT_NEAR(p.bytes_per_ns, 8, 1e-3);
  // Bytes in lockstep with items cannot be separated: they fold into per_item, bandwidth unbounded.
  std::vector<CostSample> lockstep;
  for (double items : {1.0, 10.0, 100.0, 1000.0}) lockstep.push_back({items, 16 * items, 700 + 2 * items});
  const CostParams q = fit_cost(lockstep.data(), lockstep.size());
  EXPECT_NEAR(q.launch_ns, 700, 1e-3);
  EXPECT_NEAR(q.per_item_ns, 2, 1e-6);
  EXPECT_GE(q.bytes_per_ns, 1e6);

  CostModel m = CostModel::defaults();
  m.set(Op::kMerkle, Backend::kCuda, p);
  const std::string path = ::testing::TempDir() + "/offload_calibration.toml";
  ASSERT_TRUE(m.save(path).is_ok());
  Result<CostModel> loaded = CostModel::load(path);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_NEAR(loaded->params(Op::kMerkle, Backend::kCuda).launch_ns, 5000, 1);
  EXPECT_TRUE(loaded->params(Op::kMerkle, Backend::kCuda).measured);
  EXPECT_FALSE(loaded->params(Op::kMerkle, Backend::kCpu).measured);
  EXPECT_NEAR(loaded->predict_ns(Op::kMerkle, Backend::kCuda, 10, 80), m.predict_ns(Op::kMerkle, Backend::kCuda, 10, 80), 0.01);

  EXPECT_TRUE(CostModel::load_or_defaults(::testing::TempDir() + "/no-such-file.toml").is_ok());
  std::ofstream(path) << "[checksum.cpu]\nlaunch_ns = -1\nper_item_ns = 1\nbytes_per_ns = 1\n";
  EXPECT_EQ(CostModel::load(path).status().code(), Code::kInvalidArgument);
  std::ofstream(path) << "this is [ not toml";
  EXPECT_EQ(CostModel::load_or_defaults(path).status().code(), Code::kInvalidArgument);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace tally::offload
