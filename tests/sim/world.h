// Internals of one simulation run (tests/sim only): the World that owns nodes, replicas,
// network, clients and checkers. Split over simulation.cc, world_shell.cc and world_faults.cc.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/common/clock.h"
#include "host/common/rng.h"
#include "host/replication/group/group.h"
#include "host/replication/raft/raft.h"
#include "host/replication/raft/tally_batch.h"
#include "tests/sim/durable_check.h"
#include "tests/sim/eventual.h"
#include "tests/sim/history.h"
#include "tests/sim/raft_checker.h"
#include "tests/sim/sim_disk.h"
#include "tests/sim/sim_options.h"

namespace tally::sim {

inline constexpr uint64_t kMs = 1'000'000;  // simulated nanoseconds per millisecond
inline constexpr uint64_t kStepNs = kMs;     // faults, ticks and timeouts run once per step; messages
                                             // and client calls happen at their own nanosecond
inline constexpr uint64_t kTickMs = 10;      // Raft tick period on a node's (drifting) clock
inline constexpr uint32_t kElectionTicks = 10;
// Lease seeds: the bound on how far two nodes' monotonic clocks drift apart over one lease
// (100 ms); every node drifts by at most ±2 %, so two by at most 4 ms. Seeds with tight clocks
// drift by at most ±0.5 % and use the smaller bound, which widens the lease.
inline constexpr uint64_t kLeaseDriftMaxMs = 5;
inline constexpr uint64_t kTightLeaseDriftMaxMs = 2;
inline constexpr uint64_t kLivenessTicksMax = 150;  // after healing, every group commits within this
// After healing, every request a replica accepted is answered within this (reads exactly:
// ReadState or failed; writes when applied, overwritten, covered by a snapshot or timed out).
inline constexpr uint64_t kOpLivenessMs = 3000;
// A replica gives up on a write whose index the group's log has not reached after this long:
// it answers `unknown` (the entry may still commit somewhere).
inline constexpr uint64_t kWriteTimeoutMs = 1500;
inline constexpr uint64_t kSettleMs = 150;          // clients keep going after liveness is proven
// No faults, no loss: anti-entropy must converge, and every accepted request be answered, within
// this. It covers the largest clock jump, since stamps that far ahead wait until physical time
// is within the HLC's skew bound.
inline constexpr uint64_t kQuiesceMaxMs = 3500;
inline constexpr uint64_t kLogCheckEveryMs = 100;
inline constexpr uint32_t kKeysPerGroup = 2;
inline constexpr uint32_t kClientsPerGroup = 3;
inline constexpr uint64_t kMessagesInFlightMax = 200'000;
inline constexpr uint32_t kTicksPerStepMax = 3;
inline constexpr uint64_t kHlcMaxSkewMs = 500;
inline constexpr uint64_t kEpochNs = 1'700'000'000'000ULL * kMs;
inline constexpr uint64_t kPendingPerReplicaMax = 1024;
inline constexpr uint64_t kHeldMessagesMax = 100'000;  // messages queued for one paused node
inline constexpr uint32_t kGroupReplicasMax = 7;       // a group never grows past this by joins
inline constexpr uint64_t kAttackMs = 150;             // a scripted lease attack's calm window

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
  // kOk: done, with `result`; kFail: definitely not done; kUnknown: the replica gave up on it
  // (it may still take effect).
  Outcome outcome = Outcome::kFail;
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
  // A request a replica accepted and still owes an answer.
  struct Accepted {
    ClientRequest request;
    uint64_t accepted_ns = 0;
    raft::Index index = 0;  // writes: where it was proposed, in term `term`
    raft::Term term = 0;
  };

  // One group's replica on one node. Its loop is the production one (group::ReplicaGroup); the
  // node's shell (NodeShell) is its transport, state machine and observer.
  struct Replica {
    uint32_t group = 0;
    bool joined = false;  // added by a membership change: starts knowing no membership
    std::unique_ptr<group::ReplicaGroup> rg;  // null while down
    // While its node is down: the log recovery read back, which it restarts with (the checkers
    // count it as the replica's log meanwhile). Null for a replica with nothing on disk yet.
    std::unique_ptr<raft::MemoryStorage> down_log;
    // Recovery found its log corrupt: it stays down for good (repair from peers is the cluster's),
    // never voting or serving with a log that lost data.
    std::string corrupt;
    std::map<uint32_t, int64_t> kv;
    std::map<uint64_t, Accepted> pending_writes;        // by uid
    std::map<raft::Index, uint64_t> write_at;           // proposal index -> uid
    std::map<std::string, Accepted> pending_reads;      // by context, waiting for a ReadState
    std::vector<std::pair<raft::Index, Accepted>> reads_waiting_apply;
    raft::Index applied = 0;
    raft::Index snapshot_index = 0;  // the state machine was restored from a snapshot at this index
  };

  // A node's side of its groups' loops: what they send, apply and show of each Ready.
  class NodeShell final : public group::Transport, public group::StateMachine, public group::ReadyObserver {
   public:
    NodeShell(World& w, raft::NodeId node) : w_(w), node_(node) {}
    void send(uint32_t group, std::vector<raft::Message> messages) override;
    void apply(uint32_t group, const raft::Entry& entry) override;
    void applied_to(uint32_t group, raft::Index index) override;
    void apply_internal(uint32_t group, const raft::Entry& entry, const raft::ConfState* conf) override;
    void restore(uint32_t group, const raft::Snapshot& snapshot) override;
    void read_ready(uint32_t group, const raft::ReadState& rs) override;
    void read_failed(uint32_t group, const std::string& context) override;
    bool before_persist(uint32_t group, const raft::Ready& rd) override;
    void after_advance(uint32_t group) override;

   private:
    World& w_;
    raft::NodeId node_;
  };

  // A node's clocks: ticks and leases follow the drifting monotonic clock, the HLC reads the wall
  // clock, which also jumps.
  class NodeClock final : public Clock {
   public:
    explicit NodeClock(const World& w, raft::NodeId node) : w_(w), node_(node) {}
    uint64_t monotonic_ns() const override { return w_.local_mono_ns(node_); }
    uint64_t wall_ms() const override { return w_.local_wall_ns(node_) / kMs; }

   private:
    const World& w_;
    raft::NodeId node_;
  };

  // An asynchronous tally batch of one node: built at one time, applied at a later one.
  struct TallyInFlight {
    raft::TallyBatch batch;
    bool in_flight = false;
    uint64_t apply_at_ns = 0;
  };

  struct Node {
    raft::NodeId id = 0;
    bool up = true;
    uint64_t restart_at_ns = 0;
    uint64_t crash_at_ns = 0;      // a crash scheduled by a targeted fault (0: none)
    uint64_t paused_until_ns = 0;  // a frozen process (0: running): no ticks, messages held
    std::vector<Envelope> held;    // delivered while paused, handled on resume in arrival order
    std::map<uint32_t, raft::Term> led_term;  // last term this node was seen leading, by group
    int64_t drift_ppm = 0;
    int64_t wall_offset_ns = 0;
    uint64_t next_tick_mono_ns = 0;
    uint64_t next_anti_entropy_ns = 0;
    std::map<uint32_t, Replica> replicas;  // by group
    std::unique_ptr<NodeClock> clock;
    std::unique_ptr<EventualReplica> eventual;
    std::unique_ptr<TallyInFlight> tally;
    std::unique_ptr<NodeDisk> disk;  // survives crashes
    std::unique_ptr<NodeShell> shell;
    bool damage_at_crash = false;    // the next crash also damages its log
  };

  struct Client {
    uint32_t id = 0;
    uint32_t group = 0;
    bool busy = false;
    size_t history_index = 0;
    uint64_t uid = 0;
    uint64_t deadline_ns = 0;
    uint64_t next_issue_ns = 0;
    raft::NodeId target = 0;  // the node it last saw as leader: it keeps sending there
    uint32_t seq = 0;
    // A routing-aware client (one per group) always sends to the newest leader and gives up
    // as soon as a newer one exists, so writes reach a new leader while other clients still
    // talk to the old one.
    bool follows_newest_leader = false;
    // A read-after-write prober (one per group): after a write the newest leader acknowledged,
    // it reads at once from the leader before that one, the read a stale lease would get wrong.
    bool probes_previous_leader = false;
    raft::NodeId leader_seen = 0;     // the newest leader when it last looked
    raft::NodeId previous_leader = 0;  // the one before
    bool read_next = false;
    uint32_t last_key = 0;
  };

  struct Group {
    raft::ConfState initial;             // the membership the group was created with
    std::vector<raft::NodeId> members;   // nodes hosting a replica now, sorted
    std::vector<raft::NodeId> departed;  // removed for good: a node never rejoins with a wiped disk
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
    // A node cut off from every peer (clients still reach it) until a set time, whatever the
    // other partition faults do meanwhile.
    raft::NodeId isolated = 0;
    uint64_t isolated_until_ns = 0;
  };
  bool link_down(raft::NodeId from, raft::NodeId to) const {
    if (from == 0 || to == 0) return false;  // client connections
    if (faults_.blocked[from][to]) return true;
    return faults_.isolated != 0 && (from == faults_.isolated || to == faults_.isolated);
  }

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
    // Exact to the nanosecond, so it never steps back between two sub-millisecond events.
    const int64_t now = static_cast<int64_t>(now_ns_);
    return static_cast<uint64_t>(now + now * n.drift_ppm / 1'000'000);
  }
  uint64_t local_wall_ns(raft::NodeId id) const {
    return static_cast<uint64_t>(static_cast<int64_t>(kEpochNs + local_mono_ns(id)) + node(id).wall_offset_ns);
  }
  // The replica of `group` on `id`, or null (the node does not host it).
  Replica* replica(raft::NodeId id, uint32_t group);
  bool paused(const Node& n) const { return n.paused_until_ns != 0; }
  // Targeted crashes ("buggify" points) fire during the fault phase, except while a scripted
  // lease attack runs: it needs its nodes alive to show what it tests.
  bool buggify() const { return now_ns_ < fault_end_ns_ && now_ns_ >= attack_until_ns_; }

  raft::Config raft_config(raft::NodeId id, uint32_t group);
  // Starts a group's replica on a running node from what its disk holds. False (and a violation)
  // when the core refuses it.
  bool start_replica(Node& n, uint32_t group);
  void drop_replica(Node& n, uint32_t group);
  void crash(Node& n);
  // After a crash: the node's log read back into each replica's down_log (or `corrupt`), and checked
  // against what each had acknowledged.
  void recover(Node& n, const std::map<uint32_t, AckedLog>& acked);
  void restart(Node& n);
  void pause(Node& n, uint64_t until_ns);
  void resume(Node& n);
  // Every log a voter of `group` would vote with: its replica's log, the one its node restarts with
  // while down, null for one that stays down for good.
  std::vector<std::pair<raft::NodeId, const raft::Storage*>> voter_logs(uint32_t group,
                                                                          const std::vector<raft::NodeId>& voters);

  void send(Envelope e, bool faulty_link);
  void send_raft(const raft::Message& m, uint32_t group);
  void deliver(Envelope& e);
  void handle_client_request(Node& n, const ClientRequest& req, uint32_t group);
  // After an input to `r`: runs its loop, then the node's group commit (settle).
  void after_input(Node& n, Replica& r);
  // The end of an input on a node: its log's group commits until the groups are idle; a crash if the
  // power went out meanwhile; then each replica's role and term are observed.
  void settle(Node& n);
  void observe_roles(Node& n);
  bool before_persist(Node& n, Replica& r, const raft::Ready& rd);
  void apply_entry(Node& n, Replica& r, const raft::Entry& e);
  void apply_conf_change(Node& n, Replica& r, const raft::ConfChange& cc);
  void serve_reads(Node& n, Replica& r);
  void maybe_compact(Node& n, Replica& r);
  void restore_snapshot(Node& n, Replica& r, const raft::Snapshot& snap);
  void reply(const ClientRequest& req, Outcome outcome, std::optional<int64_t> result, raft::NodeId hint,
             raft::NodeId from);
  void abandon_requests(Node& n, Replica& r);
  void forget_requests(Replica& r);
  void expire_writes(Node& n, Replica& r);
  void note_stale_leader(const Replica& r);
  void drop_departed();
  void disk_fault(Node& n);

  void tick_nodes();
  void run_forced_campaigns();
  void run_tallies(Node& n);
  uint64_t next_client_issue_ns() const;
  void issue_client(Client& c);
  raft::NodeId newest_leader(uint32_t group);
  void expire_clients();
  void complete(Client& c, const ClientReply& rep);
  void late_reply(const ClientReply& rep);
  void resolve_unknowns();
  void run_eventual(bool write, bool lossless);
  void inject_faults();
  void change_membership(uint32_t group);
  void heal();
  void check_logs();
  void check_liveness();
  std::string group_state(uint32_t g);  // every member's role, term, commit, last index, membership
  // Every request accepted before `now - kOpLivenessMs` (or before the heal) answered by now.
  bool check_operations(bool final);
  size_t outstanding_requests() const;
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
  // Operations whose client gave up (recorded unknown) by uid: a late answer still tells what
  // happened to them.
  std::map<uint64_t, size_t> gave_up_;
  // When each write first took effect on a replica's state machine, and its result there.
  struct FirstApply {
    uint64_t at_ns = 0;
    std::optional<int64_t> result;
  };
  std::map<uint64_t, FirstApply> first_apply_;
  SimReport report_;
  uint64_t fault_end_ns_ = 0;
  uint64_t heal_ns_ = 0;
  bool issuing_ = true;  // clients start new operations (not while quiescing)
  std::vector<std::pair<raft::NodeId, uint32_t>> to_drop_;  // replicas removed for good, to shut down
  raft::NodeId damaged_ = 0;  // the one node whose log is damaged in this run (0: none yet)
  // Elections a failure detector in the shell starts (RawNode::campaign), by time.
  struct ForcedCampaign {
    uint64_t at_ns = 0;
    raft::NodeId node = 0;
    uint32_t group = 0;
    raft::NodeId suspect = 0;  // the leader it suspects: no election once another one leads
  };
  std::vector<ForcedCampaign> forced_;
  // Per-seed shape of the cluster's Raft configuration.
  uint32_t max_size_per_msg_ = 0;
  uint32_t max_inflight_msgs_ = 0;
  uint32_t compact_every_entries_ = 0;  // 0: this seed never compacts its logs
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  bool lease_ = false;
  bool async_tally_ = false;
  bool early_send_ = false;  // Config::leader_sends_before_persist
  uint64_t net_delay_min_ns_ = 100'000;  // one-way delay of a healthy link
  uint64_t net_delay_max_ns_ = 3 * kMs;
  uint64_t lease_drift_max_ms_ = kLeaseDriftMaxMs;
  uint64_t attack_until_ns_ = 0;  // a lease attack runs: no other faults meanwhile
};

}  // namespace tally::sim
