// Sends each batch to the backend with the earliest predicted completion (its queue included) and
// re-runs on the CPU whatever a device refuses or fails. Counts batches, items, bytes, time per op.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "drivers/device.h"
#include "host/common/clock.h"
#include "host/offload/cost_model.h"

namespace tally::offload {

using drivers::Completion;
using drivers::Device;
using kernels::Batch;

inline constexpr uint32_t kSchedulerDevicesMax = 8;
inline constexpr uint32_t kSchedulerInFlightMax = 1024;

// Written only by the scheduler's thread (relaxed single-writer atomics, plain moves on x86), so the
// server's INFO and metrics may read them from any thread.
struct OpBackendCounters {
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> items{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> busy_ns{0};    // device-measured time of completed batches (untimed ones add 0)
  std::atomic<uint64_t> fallbacks{0};  // batches meant for this backend that ran on the CPU instead
  std::atomic<uint64_t> failures{0};   // completions with an error status, and refused submits

  static void add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

// The same counters as plain numbers: a reading of one scheduler's, or a sum over several.
struct CounterValues {
  uint64_t batches = 0, items = 0, bytes = 0, busy_ns = 0, fallbacks = 0, failures = 0;

  CounterValues& operator+=(const OpBackendCounters& c) {
    batches += c.batches.load(std::memory_order_relaxed);
    items += c.items.load(std::memory_order_relaxed);
    bytes += c.bytes.load(std::memory_order_relaxed);
    busy_ns += c.busy_ns.load(std::memory_order_relaxed);
    fallbacks += c.fallbacks.load(std::memory_order_relaxed);
    failures += c.failures.load(std::memory_order_relaxed);
    return *this;
  }
  bool any() const { return batches != 0 || fallbacks != 0 || failures != 0; }
};

// One INFO line: offload_<op>_<backend>:batches=..,items=..,bytes=..,busy_us=..,fallbacks=..,failures=..
std::string info_line(Op op, Backend backend, const CounterValues& v);

struct SchedulerOptions {
  uint32_t in_flight_max = 256;  // batches across all devices, <= kSchedulerInFlightMax
};

// Not thread-safe: one scheduler per event loop. The cpu device is required and must be the first one
// added; it is the fallback of last resort and never fails a validated batch.
class Scheduler {
 public:
  Scheduler(CostModel model, const Clock& clock, SchedulerOptions options = {});

  void add_device(Device* device);

  // The backend submit() would pick now for this batch: the CPU unless another, able to take it now,
  // is predicted to finish it earlier (queues included).
  Device* choose(const Batch& batch) const;

  // Queues the batch under tag on the chosen backend. Errors: kInvalidArgument (malformed batch),
  // kResourceExhausted (in_flight_max reached: poll first).
  Status submit(const Batch& batch, uint64_t tag);

  // Completions in the order devices finish; a failed device batch re-runs on the CPU first and is
  // reported only when that run completes, so a completion's status is the CPU's.
  size_t poll(std::span<Completion> out, uint64_t wait_ns);

  // submit + poll until this batch completes: for callers that have nothing else to do.
  Status run(const Batch& batch);

  uint32_t in_flight() const { return static_cast<uint32_t>(in_flight_.size()); }
  const OpBackendCounters& counters(Op op, Backend backend) const {
    return counters_[static_cast<size_t>(op)][static_cast<size_t>(backend)];
  }
  // INFO-style lines: offload_<op>_<backend>:batches=..,items=..,bytes=..,busy_us=..,fallbacks=..,failures=..
  std::string info() const;
  const CostModel& model() const { return model_; }

 private:
  struct InFlight {
    uint64_t tag = 0;
    Batch batch;
    Device* device = nullptr;
    double predicted_ns = 0;
    uint64_t bytes = 0;
    bool is_fallback = false;
    Backend original = Backend::kCpu;
  };
  double queued_ns(const Device* device) const;
  Device* choose(const Batch& batch, uint32_t items, uint64_t bytes) const;
  Status submit_to(Device* device, const Batch& batch, uint64_t tag, uint64_t bytes, bool is_fallback,
                   Backend original);
  bool cpu_sure(Op op, uint64_t items, uint64_t bytes) const {
    const size_t o = static_cast<size_t>(op);
    return items < cpu_sure_items_[o] && bytes < cpu_sure_bytes_[o];
  }
  void count_done(Op op, Backend backend, uint32_t items, uint64_t bytes, uint64_t device_ns) {
    OpBackendCounters& c = counters_[static_cast<size_t>(op)][static_cast<size_t>(backend)];
    OpBackendCounters::add(c.batches);
    OpBackendCounters::add(c.items, items);
    OpBackendCounters::add(c.bytes, bytes);
    OpBackendCounters::add(c.busy_ns, device_ns);
  }
  Device* cpu() const { return devices_.empty() ? nullptr : devices_[0]; }

  // Per op: a batch with fewer items and input bytes than these runs on the CPU without predicting,
  // because even then the CPU finishes before any other device's launch cost alone (kept by
  // add_device; the CPU's prediction is at most half that gap per term).
  std::array<uint64_t, kOpCount> cpu_sure_items_{};
  std::array<uint64_t, kOpCount> cpu_sure_bytes_{};
  CostModel model_;
  const Clock& clock_;
  SchedulerOptions options_;
  std::vector<Device*> devices_;     // at most kSchedulerDevicesMax; [0] is the cpu
  std::vector<InFlight> in_flight_;  // at most options_.in_flight_max
  std::array<std::array<OpBackendCounters, kBackendCount>, kOpCount> counters_{};
  std::vector<Completion> scratch_;  // poll buffer, sized once
};

}  // namespace tally::offload
