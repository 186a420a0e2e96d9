// Test harness for the Raft core: an in-memory cluster of RawNodes with a controllable network
// (queues, drops, partitions, one-way cuts), crashes and restarts, and text renderings for scenarios.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "host/replication/raft/raft.h"

namespace tally::raft::testing {

// Bound on Ready/deliver rounds in stabilize(); a cluster that has not settled by then is livelocked.
inline constexpr int kStabilizeRoundsMax = 1000;

// A node's monotonic clock in tests, set by hand (scenario `set-time`); it never goes backwards
// and keeps its time while the node is crashed.
class TestClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override { return ms_ * 1'000'000; }
  uint64_t wall_ms() const override { return ms_; }
  void set_ms(uint64_t ms);

 private:
  uint64_t ms_ = 0;
};

std::string format_entry(const Entry& e);
std::string format_message(const Message& m);
std::string format_ids(const std::vector<NodeId>& ids);

class Cluster {
 public:
  struct Node {
    Config config;  // lease_read.clock points at `clock`
    std::unique_ptr<TestClock> clock;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;  // null while crashed
    std::vector<std::string> applied;  // data of applied normal entries, in order (snapshot data first)
    Index applied_index = 0;
    std::vector<ReadState> reads;
    std::vector<std::string> failed_reads;
  };

  // `base` supplies every option but id/voters/learners.
  void add_nodes(const std::vector<NodeId>& ids, const std::vector<NodeId>& voters,
                 const std::vector<NodeId>& learners, const Config& base);
  Node& node(NodeId id);
  // Sets node `id`'s clock (leases read it).
  void set_time_ms(NodeId id, uint64_t ms);
  bool has(NodeId id) const { return nodes_.count(id) != 0; }
  std::vector<NodeId> ids() const;
  RawNode& raw(NodeId id);

  // Handles one Ready of `id` (persist, queue messages, apply, advance); appends a rendering to out.
  bool process_ready(NodeId id, std::string* out);
  // Delivers the queued messages addressed to `to` (all nodes when empty); messages to a node in
  // `drop` are discarded. Returns how many were delivered.
  size_t deliver(const std::set<NodeId>& to, const std::set<NodeId>& drop, std::string* out);
  // Alternates Readys and deliveries until nothing moves.
  void stabilize(const std::set<NodeId>& only, std::string* out);
  // Runs everything to quiescence; used by unit tests.
  void settle() { stabilize({}, nullptr); }
  // Ticks every live node once and settles; `times` rounds.
  void tick_all(int times);

  void partition(const std::vector<std::set<NodeId>>& groups);
  void cut(const std::set<NodeId>& from, const std::set<NodeId>& to);  // one-way loss from -> to
  void heal();

  void crash(NodeId id);
  Status restart(NodeId id);
  // Snapshot of node `id`'s applied state at index `i`, then compaction of its log to `i`.
  Status compact(NodeId id, Index i);

  std::string status_line(NodeId id);
  std::string log_lines(NodeId id);
  NodeId leader() const;  // the live leader with the highest term, or kNoNode
  std::vector<Message>& queue() { return queue_; }
  // Called for every entry a node applies, and for every snapshot it installs (entry.index = the
  // snapshot index, type kNormal, data = the snapshot data).
  std::function<void(NodeId, const Entry&)> on_apply;
  std::function<void(NodeId, const Snapshot&)> on_snapshot;

 private:
  bool connected(NodeId from, NodeId to) const;

  std::map<NodeId, Node> nodes_;
  std::vector<Message> queue_;
  std::vector<std::set<NodeId>> partition_;
  std::set<std::pair<NodeId, NodeId>> cuts_;
};

}  // namespace tally::raft::testing
