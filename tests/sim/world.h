// Internals of one simulation run (tests/sim only): the World that owns nodes, replicas,
// network, clients and checkers. Split over simulation.cc, world_shell.cc and world_faults.cc.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/common/clock.h"
#include "host/common/rng.h"
#include "host/replication/raft/raft.h"
#include "tests/sim/eventual.h"
#include "tests/sim/history.h"
#include "tests/sim/raft_checker.h"
#include "tests/sim/sim_disk.h"
#include "tests/sim/sim_options.h"

namespace tally::sim {

inline constexpr uint64_t kMs = 1'000'000;  // simulated nanoseconds per millisecond
inline constexpr uint64_t kStepNs = kMs;     // the loop's time step
inline constexpr uint64_t kTickMs = 10;      // Raft tick period on a node's (drifting) clock
inline constexpr uint32_t kElectionTicks = 10;
inline constexpr uint64_t kLivenessTicksMax = 150;  // after healing, every group commits within this
inline constexpr uint64_t kSettleMs = 150;          // clients keep going after liveness is proven
// No faults, no loss: anti-entropy must converge within this. It covers the largest clock
// jump, since stamps that far ahead wait until physical time is within the HLC's skew bound.
inline constexpr uint64_t kQuiesceMaxMs = 2500;
inline constexpr uint64_t kLogCheckEveryMs = 100;
inline constexpr uint32_t kKeysPerGroup = 2;
inline constexpr uint32_t kClientsPerGroup = 3;
inline constexpr uint64_t kMessagesInFlightMax = 200'000;
inline constexpr uint32_t kReadyCyclesMax = 64;     // Ready cycles per input before we call it a livelock
inline constexpr uint32_t kTicksPerStepMax = 3;
inline constexpr uint64_t kHlcMaxSkewMs = 500;
inline constexpr uint64_t kEpochNs = 1'700'000'000'000ULL * kMs;
inline constexpr uint64_t kPendingPerReplicaMax = 1024;

// A strong-keyspace request as it travels from a client to a node.
struct ClientRequest {
  uint64_t uid = 0;
  uint32_t client = 0;
  OpKind op = OpKind::kRead;
  uint32_t key = 0;
  int64_t arg = 0;
  std::optional<int64_t> expect;
};

struct ClientReply {
  uint64_t uid = 0;
  uint32_t client = 0;
  bool ok = false;
  std::optional<int64_t> result;
  raft::NodeId leader_hint = raft::kNoNode;
};

// Fixed-layout encoding of a request as a Raft entry's data.
struct PackedOp {
  uint64_t uid;
  int64_t arg;
  int64_t expect;
  uint32_t client;
  uint32_t key;
  uint8_t op;
  uint8_t has_expect;
  uint8_t pad[6];
};

inline std::string encode_op(const ClientRequest& r) {
  PackedOp p{};
  p.uid = r.uid;
  p.arg = r.arg;
  p.expect = r.expect.value_or(0);
  p.client = r.client;
  p.key = r.key;
  p.op = static_cast<uint8_t>(r.op);
  p.has_expect = r.expect.has_value() ? 1 : 0;
  return std::string(reinterpret_cast<const char*>(&p), sizeof p);
}

// The key-value state machine's image in a snapshot: (key, value) pairs, fixed width.
inline std::string encode_kv(const std::map<uint32_t, int64_t>& kv) {
  std::string out;
  out.reserve(kv.size() * 12);
  for (const auto& [k, v] : kv) {
    out.append(reinterpret_cast<const char*>(&k), sizeof k);
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  return out;
}

inline std::map<uint32_t, int64_t> decode_kv(const std::string& data) {
  TALLY_ASSERT(data.size() % 12 == 0);
  std::map<uint32_t, int64_t> kv;
  for (size_t at = 0; at < data.size(); at += 12) {
    uint32_t k;
    int64_t v;
    std::memcpy(&k, data.data() + at, sizeof k);
    std::memcpy(&v, data.data() + at + sizeof k, sizeof v);
    kv[k] = v;
  }
  return kv;
}

inline std::optional<ClientRequest> decode_op(const std::string& data) {
  if (data.size() != sizeof(PackedOp)) return std::nullopt;
  PackedOp p;
  std::memcpy(&p, data.data(), sizeof p);
  ClientRequest r;
  r.uid = p.uid;
  r.arg = p.arg;
  if (p.has_expect) r.expect = p.expect;
  r.client = p.client;
  r.key = p.key;
  r.op = static_cast<OpKind>(p.op);
  return r;
}

enum class MsgKind : uint8_t { kRaft, kClientRequest, kClientReply, kEventual };

struct Envelope {
  uint64_t deliver_ns = 0;
  uint64_t seq = 0;
  MsgKind kind = MsgKind::kRaft;
  raft::NodeId from = 0;  // 0 for a client
  raft::NodeId to = 0;    // 0 for a client
  uint32_t group = 0;
  raft::Message raft;
  ClientRequest request;
  ClientReply reply;
  std::shared_ptr<const EventualState> eventual;
};

struct EnvelopeLater {
  bool operator()(const Envelope& a, const Envelope& b) const {
    return a.deliver_ns != b.deliver_ns ? a.deliver_ns > b.deliver_ns : a.seq > b.seq;
  }
};


// Everything of one run. Nodes are numbered 1..n; groups and clients from 0.
class World {
 public:
  explicit World(const SimOptions& options);
  SimReport run();
  const std::vector<Operation>& history() const { return history_; }

 private:
  struct Replica {
    uint32_t group = 0;
    std::unique_ptr<raft::RawNode> raft;
    SimDisk disk;
    std::map<uint32_t, int64_t> kv;
    std::map<uint64_t, ClientRequest> pending_writes;      // by uid
    std::map<std::string, ClientRequest> pending_reads;   // by context, waiting for a ReadState
    std::vector<std::pair<raft::Index, ClientRequest>> reads_waiting_apply;
    raft::Index applied = 0;
    raft::Index snapshot_index = 0;  // the state machine was restored from a snapshot at this index
  };

  // A node's clocks: ticks follow the drifting monotonic clock, the HLC reads the wall clock,
  // which also jumps.
  class NodeClock final : public Clock {
   public:
    explicit NodeClock(const World& w, raft::NodeId node) : w_(w), node_(node) {}
    uint64_t monotonic_ns() const override { return w_.local_mono_ns(node_); }
    uint64_t wall_ms() const override { return w_.local_wall_ns(node_) / kMs; }

   private:
    const World& w_;
    raft::NodeId node_;
  };

  struct Node {
    raft::NodeId id = 0;
    bool up = true;
    uint64_t restart_at_ns = 0;
    bool crash_mid_ready = false;  // crash after the next Ready's write, before its sync
    uint64_t crash_at_ns = 0;      // a crash scheduled by a targeted fault (0: none)
    std::map<uint32_t, raft::Term> led_term;  // last term this node was seen leading, by group
    int64_t drift_ppm = 0;
    int64_t wall_offset_ns = 0;
    uint64_t next_tick_mono_ns = 0;
    uint64_t next_anti_entropy_ns = 0;
    std::map<uint32_t, Replica> replicas;  // by group
    std::unique_ptr<NodeClock> clock;
    std::unique_ptr<EventualReplica> eventual;
  };

  struct Client {
    uint32_t id = 0;
    uint32_t group = 0;
    bool busy = false;
    size_t history_index = 0;
    uint64_t uid = 0;
    uint64_t deadline_ns = 0;
    uint64_t next_issue_ns = 0;
    raft::NodeId target = 0;
    uint32_t seq = 0;
  };

  struct Group {
    std::vector<raft::NodeId> members;
    bool live = false;
  };

  // Network faults in force now.
  struct NetFaults {
    uint32_t drop_per_mille = 0;
    uint32_t dup_per_mille = 0;
    uint32_t long_delay_per_mille = 0;
    std::vector<std::vector<bool>> blocked;  // [from][to], one-way
    raft::NodeId clogged = 0;
    uint64_t clogged_until_ns = 0;
    uint64_t partition_heal_ns = 0;
  };

  // Node ids are 1..n; nodes_[id - 1] holds node `id`.
  Node& node(raft::NodeId id) {
    TALLY_ASSERT(id >= 1 && id <= nodes_.size());
    return nodes_[id - 1];
  }
  const Node& node(raft::NodeId id) const {
    TALLY_ASSERT(id >= 1 && id <= nodes_.size());
    return nodes_[id - 1];
  }
  uint64_t local_mono_ns(raft::NodeId id) const {
    const Node& n = node(id);
    return static_cast<uint64_t>(static_cast<int64_t>(now_ns_) +
                                 static_cast<int64_t>(now_ns_) / 1'000'000 * n.drift_ppm);
  }
  uint64_t local_wall_ns(raft::NodeId id) const {
    return static_cast<uint64_t>(static_cast<int64_t>(kEpochNs + local_mono_ns(id)) + node(id).wall_offset_ns);
  }

  raft::Config raft_config(raft::NodeId id, uint32_t group);
  void start_replica(Node& n, uint32_t group);
  void crash(Node& n);
  void restart(Node& n);

  void send(Envelope e, bool faulty_link);
  void send_raft(const raft::Message& m, uint32_t group);
  void deliver(Envelope& e);
  void after_input(Node& n, Replica& r);
  void handle_ready(Node& n, Replica& r);
  void apply_entry(Node& n, Replica& r, const raft::Entry& e);
  void serve_reads(Node& n, Replica& r);
  void maybe_compact(Replica& r);
  void restore_snapshot(Replica& r, const raft::Snapshot& snap);
  void reply(const ClientRequest& req, bool ok, std::optional<int64_t> result, raft::NodeId hint, raft::NodeId from);

  void tick_nodes();
  void run_clients(bool issue);
  void complete(Client& c, const ClientReply& rep);
  void run_eventual(bool write, bool lossless);
  void inject_faults();
  void heal();
  void check_logs();
  void check_liveness();
  bool eventual_converged() const {
    return std::all_of(nodes_.begin(), nodes_.end(), [&](const Node& n) { return n.eventual->state() == oracle_; });
  }
  bool violated() const { return report_.violation || !checker_.ok(); }
  void violate(const std::string& kind, const std::string& detail);

  SimOptions options_;
  Rng rng_;
  uint64_t now_ns_ = 0;
  uint64_t seq_ = 0;
  std::vector<Node> nodes_;
  std::vector<Group> groups_;
  std::vector<Client> clients_;
  std::vector<Envelope> queue_;  // a heap ordered by EnvelopeLater
  NetFaults faults_;
  RaftChecker checker_;
  crdt::CrdtBugs crdt_bugs_;
  raft::RaftBugs raft_bugs_;
  EventualState oracle_;
  std::vector<Operation> history_;
  SimReport report_;
  uint64_t fault_end_ns_ = 0;
  uint64_t heal_ns_ = 0;
  uint32_t max_size_per_msg_ = 0;
  uint32_t max_inflight_msgs_ = 0;
  uint32_t compact_every_entries_ = 0;  // 0: this seed never compacts its logs
  bool pre_vote_ = true;
};

}  // namespace tally::sim
