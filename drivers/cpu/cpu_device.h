// The cpu backend: runs batches with the CPU reference, on the caller's thread when small and split
// across a fixed thread pool when bulk. Always present; the scheduler's fallback for every op.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "drivers/device.h"

namespace tally::drivers {

struct CpuDeviceOptions {
  uint32_t threads = 0;                     // pool threads; 0 runs every batch inline in submit(), lock-free
  uint32_t in_flight_max = 16;
  uint32_t bulk_items_min = 4096;           // smaller batches run inline even with a pool
  uint32_t chunks_per_batch_max = 64;       // a bulk batch splits into at most this many pieces
};

inline constexpr uint32_t kCpuThreadsMax = 256;

class CpuDevice final : public Device {
 public:
  explicit CpuDevice(CpuDeviceOptions options = {});
  ~CpuDevice() override;
  CpuDevice(const CpuDevice&) = delete;
  CpuDevice& operator=(const CpuDevice&) = delete;

  const Capabilities& capabilities() const override { return caps_; }
  Status submit(const Batch& batch, uint64_t tag) override;
  size_t poll(std::span<Completion> out, uint64_t wait_ns) override;
  bool run_inline(const Batch& batch, Completion* done) override;
  uint32_t in_flight() const override;
  bool healthy() const override { return true; }

 private:
  struct Job {
    Batch batch;
    uint64_t tag = 0;
    uint64_t start_ns = 0;
    uint32_t chunks_left = 0;
    bool used = false;
  };
  struct Task {
    uint32_t job = 0;
    uint32_t first = 0;
    uint32_t last = 0;
  };
  void worker_loop();
  void run_task(const Task& task);

  CpuDeviceOptions options_;
  Capabilities caps_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::vector<Job> jobs_;             // in_flight_max slots, allocated once
  std::deque<Task> tasks_;            // at most in_flight_max * chunks_per_batch_max
  // Completed batches not yet polled: a ring of in_flight_max entries, allocated once.
  void push_completion(Completion done);
  void pop_completion(Completion* out);
  std::vector<Completion> ring_;
  uint32_t ring_head_ = 0;
  uint32_t ring_count_ = 0;
  uint32_t in_flight_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tally::drivers
