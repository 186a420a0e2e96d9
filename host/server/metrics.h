// Per-shard counters: written only by the shard's own thread (relaxed atomics), read by INFO and the
// metrics endpoint from any thread. Latency histograms use fixed power-of-two microsecond buckets.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace tally::server {

inline constexpr size_t kLatencyBuckets = 20;  // <=1us, <=2us, ... <=2^19us (~0.5 s), then +Inf

// Bucket upper bounds in microseconds: 1, 2, 4, ... 2^(kLatencyBuckets-1).
inline uint64_t latency_bucket_bound_us(size_t i) { return uint64_t{1} << i; }

struct CommandCounters {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> usec{0};
  std::atomic<uint64_t> failed{0};    // replied with an error
  std::atomic<uint64_t> rejected{0};  // refused before running (arity, auth, OOM)
  std::array<std::atomic<uint64_t>, kLatencyBuckets + 1> buckets{};

  void record(uint64_t elapsed_ns, bool error) {
    bump(calls);
    usec.store(usec.load(std::memory_order_relaxed) + elapsed_ns / 1000, std::memory_order_relaxed);
    if (error) bump(failed);
    uint64_t us = elapsed_ns / 1000;
    size_t b = 0;
    while (b < kLatencyBuckets && us > latency_bucket_bound_us(b)) ++b;
    bump(buckets[b]);
  }
  static void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void reset() {
    calls = 0;
    usec = 0;
    failed = 0;
    rejected = 0;
    for (auto& b : buckets) b = 0;
  }
};

// Counters of one shard thread.
struct ShardMetrics {
  explicit ShardMetrics(size_t commands) : per_command(commands) {}
  std::vector<CommandCounters> per_command;  // indexed by the command table's index
  std::atomic<uint64_t> connections_received{0};
  std::atomic<uint64_t> connections_rejected{0};
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> commands_processed{0};
  std::atomic<uint64_t> net_input_bytes{0};
  std::atomic<uint64_t> net_output_bytes{0};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> output_limit_disconnects{0};
  std::atomic<uint64_t> remote_batches{0};
  // Called by a session of either protocol as it opens and closes.
  void connection_opened() {
    CommandCounters::bump(connections_received);
    CommandCounters::bump(connected);
  }
  void connection_closed() { connected.store(connected.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
  // Store figures published by the shard's tick, for readers on other threads.
  std::atomic<uint64_t> keys{0};
  std::atomic<uint64_t> expires{0};
  std::atomic<uint64_t> used_memory_bytes{0};
  std::atomic<uint64_t> expired_keys{0};
  std::atomic<uint64_t> evicted_keys{0};
  std::atomic<uint64_t> keyspace_hits{0};
  std::atomic<uint64_t> keyspace_misses{0};
};

}  // namespace tally::server
