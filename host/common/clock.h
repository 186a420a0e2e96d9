// Clocks are injected: production reads the system, tests and the simulator set time by hand.
#pragma once

#include <chrono>
#include <cstdint>

namespace tally {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time for timeouts and latencies.
  virtual uint64_t monotonic_ns() const = 0;
  // Wall-clock time for TTLs (Unix epoch).
  virtual uint64_t wall_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now().time_since_epoch()).count());
  }
  uint64_t wall_ms() const override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch()).count());
  }
  static const SystemClock& instance() {
    static const SystemClock clock;
    return clock;
  }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t wall_ms = 1'700'000'000'000ULL) : wall_ms_(wall_ms) {}
  uint64_t monotonic_ns() const override { return mono_ns_; }
  uint64_t wall_ms() const override { return wall_ms_ + mono_ns_ / 1'000'000; }
  void advance_ms(uint64_t ms) { mono_ns_ += ms * 1'000'000; }
  void advance_ns(uint64_t ns) { mono_ns_ += ns; }

 private:
  uint64_t wall_ms_;
  uint64_t mono_ns_ = 0;
};

}  // namespace tally
