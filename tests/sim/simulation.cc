#include "tests/sim/simulation.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "host/common/clock.h"
#include "host/common/rng.h"
#include "host/replication/raft/raft.h"
#include "tests/sim/eventual.h"
#include "tests/sim/linearizability.h"
#include "tests/sim/raft_checker.h"
#include "tests/sim/sim_disk.h"

namespace tally::sim {

namespace {

constexpr uint64_t kMs = 1'000'000;  // simulated nanoseconds per millisecond
constexpr uint64_t kStepNs = kMs;     // the loop's time step
constexpr uint64_t kTickMs = 10;      // Raft tick period on a node's (drifting) clock
constexpr uint32_t kElectionTicks = 10;
constexpr uint64_t kLivenessTicksMax = 150;  // after healing, every group commits within this
constexpr uint64_t kSettleMs = 150;          // clients keep going after liveness is proven
// No faults, no loss: anti-entropy must converge within this. It covers the largest clock
// jump, since stamps that far ahead wait until physical time is within the HLC's skew bound.
constexpr uint64_t kQuiesceMaxMs = 2500;
constexpr uint64_t kLogCheckEveryMs = 100;
constexpr uint32_t kKeysPerGroup = 2;
constexpr uint32_t kClientsPerGroup = 3;
constexpr uint64_t kMessagesInFlightMax = 200'000;
constexpr uint32_t kReadyRoundsMax = 64;     // Ready cycles per input before we call it a livelock
constexpr uint32_t kTicksPerStepMax = 3;
constexpr uint64_t kHlcMaxSkewMs = 500;
constexpr uint64_t kEpochNs = 1'700'000'000'000ULL * kMs;
constexpr uint64_t kPendingPerReplicaMax = 1024;

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

std::string encode_op(const ClientRequest& r) {
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

std::optional<ClientRequest> decode_op(const std::string& data) {
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

}  // namespace

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
  };

  // A node's clocks: ticks follow the drifting monotonic clock, the HLC reads the wall clock,
  // which also jumps.
  class NodeClock final : public Clock {
   public:
    explicit NodeClock(const World& w, size_t node) : w_(w), node_(node) {}
    uint64_t monotonic_ns() const override { return w_.local_mono_ns(node_); }
    uint64_t wall_ms() const override { return w_.local_wall_ns(node_) / kMs; }

   private:
    const World& w_;
    size_t node_;
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

  uint64_t local_mono_ns(size_t n) const {
    const Node& node = nodes_[n];
    return static_cast<uint64_t>(static_cast<int64_t>(now_ns_) +
                                 static_cast<int64_t>(now_ns_) / 1'000'000 * node.drift_ppm);
  }
  uint64_t local_wall_ns(size_t n) const {
    return static_cast<uint64_t>(static_cast<int64_t>(kEpochNs + local_mono_ns(n)) + nodes_[n].wall_offset_ns);
  }

  Node& node(raft::NodeId id) {
    TALLY_ASSERT(id >= 1 && id <= nodes_.size());
    return nodes_[id - 1];
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
  bool pre_vote_ = true;
};

const char* planted_bug_name(PlantedBug b) {
  switch (b) {
    case PlantedBug::kNone: return "none";
    case PlantedBug::kCountPriorTermReplicas: return "count_prior_term_replicas";
    case PlantedBug::kVoteWithoutPersist: return "vote_without_persist";
    case PlantedBug::kApplyBeforeCommit: return "apply_before_commit";
    case PlantedBug::kAcceptMismatchedPrevTerm: return "accept_mismatched_prev_term";
    case PlantedBug::kLwwIgnoreNodeId: return "lww_ignore_node_id";
  }
  TALLY_UNREACHABLE();
}

std::optional<PlantedBug> parse_planted_bug(const std::string& name) {
  for (PlantedBug b : {PlantedBug::kNone, PlantedBug::kCountPriorTermReplicas, PlantedBug::kVoteWithoutPersist,
                       PlantedBug::kApplyBeforeCommit, PlantedBug::kAcceptMismatchedPrevTerm,
                       PlantedBug::kLwwIgnoreNodeId}) {
    if (name == planted_bug_name(b)) return b;
  }
  return std::nullopt;
}

std::string replay_command(const SimOptions& options, uint32_t nodes) {
  std::string cmd = "tally-sim --seed " + std::to_string(options.seed);
  if (options.nodes != 0) cmd += " --nodes " + std::to_string(nodes);
  if (options.bug != PlantedBug::kNone) cmd += std::string(" --bug ") + planted_bug_name(options.bug);
  return cmd;
}

World::World(const SimOptions& options)
    : options_(options), rng_(options.seed), checker_(1) {
  // Sizes first, from the seed, so every later choice replays.
  uint32_t n = options.nodes;
  if (n == 0) {
    const uint64_t pick = rng_.uniform(10);
    n = pick < 6 ? 3 : pick < 9 ? 5 : 7;
  }
  TALLY_ASSERT(n == 3 || n == 5 || n == 7);
  const uint32_t group_count = n == 3 ? static_cast<uint32_t>(rng_.range(2, 3)) : n == 5 ? 3 : 4;
  checker_ = RaftChecker(group_count);
  crdt_bugs_.lww_ignore_node_id = options.bug == PlantedBug::kLwwIgnoreNodeId;
  raft_bugs_.count_prior_term_replicas = options.bug == PlantedBug::kCountPriorTermReplicas;
  raft_bugs_.vote_without_persist = options.bug == PlantedBug::kVoteWithoutPersist;
  raft_bugs_.apply_before_commit = options.bug == PlantedBug::kApplyBeforeCommit;
  raft_bugs_.accept_mismatched_prev_term = options.bug == PlantedBug::kAcceptMismatchedPrevTerm;
  // Small messages and windows make replication advance in many steps, which is where
  // commit-rule and log-repair bugs show.
  // (1 byte means one entry per append, as the core always sends at least one.)
  const uint64_t size_pick = rng_.uniform(3);
  max_size_per_msg_ = size_pick == 0 ? 1 : size_pick == 1 ? 64 : static_cast<uint32_t>(rng_.range(2, 4)) * 64;
  max_inflight_msgs_ = static_cast<uint32_t>(rng_.range(1, 8));
  pre_vote_ = rng_.chance(3, 4);
  fault_end_ns_ = rng_.range(1000, 2000) * kMs;

  nodes_.resize(n);
  faults_.blocked.assign(n + 1, std::vector<bool>(n + 1, false));
  for (uint32_t i = 0; i < n; ++i) {
    Node& node = nodes_[i];
    node.id = i + 1;
    node.drift_ppm = static_cast<int64_t>(rng_.uniform(40'001)) - 20'000;  // up to ±2 %
    node.next_tick_mono_ns = rng_.uniform(kTickMs * kMs);
    node.clock = std::make_unique<NodeClock>(*this, i);
    node.eventual = std::make_unique<EventualReplica>(node.id, *node.clock, kHlcMaxSkewMs, crdt_bugs_);
  }
  groups_.resize(group_count);
  for (uint32_t g = 0; g < group_count; ++g) {
    const uint32_t replicas = n == 3 ? 3 : (rng_.chance(1, 2) ? 3 : 5);
    std::vector<raft::NodeId> all;
    for (uint32_t i = 1; i <= n; ++i) all.push_back(i);
    for (uint32_t i = 0; i < replicas; ++i) {  // a seeded partial shuffle picks the members
      const size_t j = i + rng_.uniform(all.size() - i);
      std::swap(all[i], all[j]);
      groups_[g].members.push_back(all[i]);
    }
    std::sort(groups_[g].members.begin(), groups_[g].members.end());
    for (raft::NodeId id : groups_[g].members) start_replica(node(id), g);
    for (uint32_t c = 0; c < kClientsPerGroup; ++c) {
      Client client;
      client.id = static_cast<uint32_t>(clients_.size());
      client.group = g;
      client.next_issue_ns = rng_.uniform(20) * kMs;
      clients_.push_back(client);
    }
  }
  report_.nodes = n;
  report_.groups = group_count;
}

raft::Config World::raft_config(raft::NodeId id, uint32_t group) {
  raft::Config c;
  c.id = id;
  c.voters = groups_[group].members;
  c.election_tick = kElectionTicks;
  c.heartbeat_tick = 1;
  c.pre_vote = pre_vote_;
  c.check_quorum = true;
  c.seed = rng_.next() | 1;
  c.max_inflight_msgs = max_inflight_msgs_;
  c.max_size_per_msg = max_size_per_msg_;
  c.bugs = raft_bugs_;
  return c;
}

void World::start_replica(Node& n, uint32_t group) {
  Replica& r = n.replicas[group];
  r.group = group;
  r.kv.clear();
  r.applied = 0;
  r.pending_reads.clear();
  r.pending_writes.clear();
  r.reads_waiting_apply.clear();
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::create(raft_config(n.id, group), &r.disk.live());
  TALLY_ASSERT_MSG(raw.is_ok(), raw.status().to_string().c_str());
  r.raft = std::move(raw).value();
}

void World::crash(Node& n) {
  if (!n.up) return;
  n.up = false;
  n.crash_mid_ready = false;
  ++report_.crashes;
  for (auto& [g, r] : n.replicas) {
    r.raft.reset();
    r.disk.crash(rng_);
    checker_.forget(g, n.id);
  }
  n.crash_at_ns = 0;
  // Often back almost at once, so a lost vote or a torn tail meets the same election again.
  n.restart_at_ns = now_ns_ + (rng_.chance(1, 2) ? rng_.range(1, 15) : rng_.range(20, 300)) * kMs;
}

void World::restart(Node& n) {
  TALLY_ASSERT(!n.up);
  n.up = true;
  for (auto& [g, r] : n.replicas) start_replica(n, g);
}

void World::violate(const std::string& kind, const std::string& detail) {
  if (report_.violation) return;
  report_.violation = true;
  report_.kind = kind;
  report_.detail = detail;
}

void World::send(Envelope e, bool faulty_link) {
  if (queue_.size() >= kMessagesInFlightMax) return;  // the network sheds load like a full switch
  uint64_t delay_ns = rng_.range(100'000, 3 * kMs);
  if (faulty_link) {
    if (e.kind != MsgKind::kClientRequest && e.kind != MsgKind::kClientReply) {
      if (e.from != 0 && e.to != 0 && faults_.blocked[e.from][e.to]) return;
      if (faults_.clogged != 0 && (e.from == faults_.clogged || e.to == faults_.clogged)) {
        if (rng_.chance(1, 3)) return;
        delay_ns += rng_.range(20, 100) * kMs;
      }
    }
    if (rng_.uniform(1000) < faults_.drop_per_mille) return;
    if (rng_.uniform(1000) < faults_.long_delay_per_mille) delay_ns += rng_.range(10, 60) * kMs;
    // Client connections are streams: never duplicated (a duplicate request would run twice).
    const bool peer_message = e.kind == MsgKind::kRaft || e.kind == MsgKind::kEventual;
    if (peer_message && rng_.uniform(1000) < faults_.dup_per_mille) {
      Envelope copy = e;
      copy.deliver_ns = now_ns_ + delay_ns + rng_.range(0, 20) * kMs;
      copy.seq = seq_++;
      queue_.push_back(std::move(copy));
      std::push_heap(queue_.begin(), queue_.end(), EnvelopeLater{});
    }
  }
  e.deliver_ns = now_ns_ + delay_ns;
  e.seq = seq_++;
  queue_.push_back(std::move(e));
  std::push_heap(queue_.begin(), queue_.end(), EnvelopeLater{});
}

void World::send_raft(const raft::Message& m, uint32_t group) {
  Envelope e;
  e.kind = MsgKind::kRaft;
  e.from = m.from;
  e.to = m.to;
  e.group = group;
  e.raft = m;
  send(std::move(e), true);
}

void World::reply(const ClientRequest& req, bool ok, std::optional<int64_t> result, raft::NodeId hint,
                  raft::NodeId from) {
  Envelope e;
  e.kind = MsgKind::kClientReply;
  e.from = from;
  e.reply = ClientReply{req.uid, req.client, ok, result, hint};
  send(std::move(e), now_ns_ < fault_end_ns_);
}

void World::after_input(Node& n, Replica& r) {
  handle_ready(n, r);
  if (!n.up || violated()) return;
  const raft::Role role = r.raft->role();
  const raft::Term term = r.raft->term();
  checker_.observe_role(r.group, n.id, role, term, r.disk.live());
  // Targeted fault: a fresh leader sometimes dies before its first entries replicate, which
  // leaves entries of several terms on minorities (the Figure 8 situation).
  raft::Term& led = n.led_term[r.group];
  if (role == raft::Role::kLeader && term > led) {
    led = term;
    if (now_ns_ < fault_end_ns_ && n.crash_at_ns == 0 && rng_.chance(1, 4)) {
      n.crash_at_ns = now_ns_ + rng_.range(1, 40) * kMs;
    }
  }
}

void World::handle_ready(Node& n, Replica& r) {
  for (uint32_t round = 0; round < kReadyRoundsMax && n.up && r.raft->has_ready(); ++round) {
    raft::Ready rd = r.raft->ready();
    if (!checker_.observe_ready(r.group, n.id, r.raft->role(), r.raft->term(), rd, r.disk.live())) return;
    const raft::Index commit_before = r.disk.live().initial_state().hard_state.commit;
    // 1. Persist: snapshot, entries, hard state; then sync when asked.
    Status st = r.disk.write(rd.snapshot, rd.entries, rd.hard_state);
    TALLY_ASSERT_MSG(st.is_ok(), st.to_string().c_str());
    if (n.crash_mid_ready && (rd.must_sync || !rd.entries.empty())) {
      crash(n);  // written but not synced, nothing sent: the torn-tail case
      return;
    }
    if (rd.hard_state && rd.hard_state->commit > commit_before && r.raft->role() == raft::Role::kLeader) {
      std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
      for (raft::NodeId v : r.raft->status().conf.voters) logs.emplace_back(v, &node(v).replicas[r.group].disk.live());
      if (!checker_.check_commit_durable(r.group, n.id, rd.hard_state->commit, logs)) return;
    }
    // Targeted fault: a leader dies the moment it decides a commit, before telling anyone, so
    // the next leader must already hold what it committed.
    if (rd.hard_state && rd.hard_state->commit > commit_before && r.raft->role() == raft::Role::kLeader && now_ns_ < fault_end_ns_ && rng_.chance(1, 12)) {
      if (rd.must_sync) r.disk.sync();
      crash(n);
      return;
    }
    if (rd.must_sync) r.disk.sync();
    // 2. Send.
    for (const raft::Message& m : rd.messages) {
      send_raft(m, r.group);
      // Targeted fault: crash right after granting a vote, so a vote that was not durable
      // would be forgotten while the election is still running.
      if (m.type == raft::MessageType::kVoteResp && !m.reject && now_ns_ < fault_end_ns_ && n.crash_at_ns == 0 &&
          rng_.chance(1, 4)) {
        n.crash_at_ns = now_ns_ + rng_.range(0, 2) * kMs;
      }
    }
    // 3. Apply committed entries, then serve reads whose index is applied.
    for (const raft::Entry& e : rd.committed_entries) {
      apply_entry(n, r, e);
      if (violated()) return;
    }
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = r.pending_reads.find(rs.context);
      if (it == r.pending_reads.end()) continue;
      r.reads_waiting_apply.emplace_back(rs.index, it->second);
      r.pending_reads.erase(it);
    }
    serve_reads(n, r);
    // 4. Acknowledge.
    r.raft->advance();
  }
  TALLY_ASSERT_MSG(!n.up || !r.raft->has_ready() || violated(), "Ready loop did not settle");
}

void World::apply_entry(Node& n, Replica& r, const raft::Entry& e) {
  if (!checker_.observe_apply(r.group, n.id, e)) return;
  TALLY_ASSERT(e.index > r.applied || raft_bugs_.apply_before_commit);
  r.applied = std::max(r.applied, e.index);
  if (e.type == raft::EntryType::kConfChange) {
    Result<raft::ConfChange> cc = raft::ConfChange::decode(e.data);
    TALLY_ASSERT(cc.is_ok());
    r.disk.write_conf(r.raft->apply_conf_change(*cc));
    return;
  }
  if (e.type != raft::EntryType::kNormal || e.data.empty()) return;
  std::optional<ClientRequest> req = decode_op(e.data);
  TALLY_ASSERT(req.has_value());
  std::optional<int64_t> result;
  auto it = r.kv.find(req->key);
  const std::optional<int64_t> current = it == r.kv.end() ? std::nullopt : std::optional<int64_t>(it->second);
  switch (req->op) {
    case OpKind::kWrite: r.kv[req->key] = req->arg; break;
    case OpKind::kCas: {
      const bool swap = current == req->expect;
      if (swap) r.kv[req->key] = req->arg;
      result = swap ? 1 : 0;
      break;
    }
    case OpKind::kIncr: {
      const int64_t v = current.value_or(0) + req->arg;
      r.kv[req->key] = v;
      result = v;
      break;
    }
    case OpKind::kRead: TALLY_UNREACHABLE();
  }
  auto p = r.pending_writes.find(req->uid);
  if (p != r.pending_writes.end()) {
    reply(p->second, true, result, raft::kNoNode, n.id);
    r.pending_writes.erase(p);
  }
}

void World::serve_reads(Node& n, Replica& r) {
  auto& waiting = r.reads_waiting_apply;
  for (size_t i = 0; i < waiting.size();) {
    if (waiting[i].first > r.applied) {
      ++i;
      continue;
    }
    const ClientRequest& req = waiting[i].second;
    auto it = r.kv.find(req.key);
    reply(req, true, it == r.kv.end() ? std::nullopt : std::optional<int64_t>(it->second), raft::kNoNode, n.id);
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void World::deliver(Envelope& e) {
  ++report_.messages;
  if (e.kind == MsgKind::kClientReply) {
    Client& c = clients_[e.reply.client];
    if (c.busy && c.uid == e.reply.uid) complete(c, e.reply);
    return;
  }
  Node& n = node(e.to);
  if (!n.up) return;
  if (e.kind == MsgKind::kEventual) {
    if (e.from != 0 && faults_.blocked[e.from][e.to]) return;
    if (!n.eventual->receive(*e.eventual)) ++report_.hlc_rejected;
    return;
  }
  auto it = n.replicas.find(e.group);
  if (it == n.replicas.end()) return;
  Replica& r = it->second;
  if (e.kind == MsgKind::kRaft) {
    if (faults_.blocked[e.from][e.to]) return;  // a partition that began while it was in flight
    (void)r.raft->step(e.raft);                 // stale or misdirected messages are not errors
    after_input(n, r);
    return;
  }
  const ClientRequest& req = e.request;
  if (r.pending_reads.size() + r.pending_writes.size() >= kPendingPerReplicaMax) {
    reply(req, false, std::nullopt, r.raft->leader(), n.id);
    return;
  }
  const std::string context = std::to_string(req.uid);
  Status st = req.op == OpKind::kRead ? r.raft->read_index(context) : r.raft->propose(encode_op(req));
  if (!st.is_ok()) {
    reply(req, false, std::nullopt, r.raft->leader(), n.id);  // refused: it never entered the log
  } else if (req.op == OpKind::kRead) {
    r.pending_reads.emplace(context, req);
  } else {
    r.pending_writes.emplace(req.uid, req);
  }
  after_input(n, r);
}

void World::tick_nodes() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Node& n = nodes_[i];
    if (!n.up) {
      if (now_ns_ >= n.restart_at_ns) restart(n);
      continue;
    }
    if (n.crash_at_ns != 0 && now_ns_ >= n.crash_at_ns) {
      crash(n);
      continue;
    }
    const uint64_t mono = local_mono_ns(i);
    for (uint32_t t = 0; t < kTicksPerStepMax && n.up && mono >= n.next_tick_mono_ns; ++t) {
      n.next_tick_mono_ns += kTickMs * kMs;
      for (auto& [g, r] : n.replicas) {
        r.raft->tick();
        after_input(n, r);
        if (violated()) return;
        if (!n.up) break;  // crashed while persisting this tick's Ready
      }
    }
    if (mono >= n.next_tick_mono_ns) n.next_tick_mono_ns = mono + kTickMs * kMs;
  }
}

void World::complete(Client& c, const ClientReply& rep) {
  Operation& op = history_[c.history_index];
  op.return_ns = now_ns_;
  op.outcome = rep.ok ? Outcome::kOk : Outcome::kFail;
  if (rep.ok && op.op != OpKind::kWrite) op.result = rep.result;
  c.busy = false;
  ++report_.client_ops;
  const auto& members = groups_[c.group].members;
  if (!rep.ok) {
    const bool hint_ok = std::find(members.begin(), members.end(), rep.leader_hint) != members.end();
    c.target = hint_ok ? rep.leader_hint : members[rng_.uniform(members.size())];
  }
  c.next_issue_ns = now_ns_ + rng_.range(0, rep.ok ? 8 : 20) * kMs;
}

void World::run_clients(bool issue) {
  for (Client& c : clients_) {
    if (c.busy && now_ns_ >= c.deadline_ns) {
      // Timed out: it may still take effect, so it is recorded as unknown.
      Operation& op = history_[c.history_index];
      op.outcome = Outcome::kUnknown;
      op.return_ns = now_ns_;
      c.busy = false;
      ++report_.client_ops;
      const auto& members = groups_[c.group].members;
      c.target = members[rng_.uniform(members.size())];
      c.next_issue_ns = now_ns_ + rng_.range(1, 10) * kMs;
    }
    if (c.busy || !issue || now_ns_ < c.next_issue_ns) continue;
    ClientRequest req;
    req.client = c.id;
    req.uid = (static_cast<uint64_t>(c.id) << 32) | ++c.seq;
    req.key = static_cast<uint32_t>(rng_.uniform(kKeysPerGroup));
    const uint64_t kind = rng_.uniform(100);
    req.op = kind < 35 ? OpKind::kRead : kind < 60 ? OpKind::kWrite : kind < 80 ? OpKind::kCas : OpKind::kIncr;
    req.arg = static_cast<int64_t>(rng_.uniform(5));
    if (req.op == OpKind::kCas && rng_.chance(9, 10)) req.expect = static_cast<int64_t>(rng_.uniform(5));
    if (req.op == OpKind::kIncr) req.arg = static_cast<int64_t>(rng_.range(1, 3));
    if (c.target == 0) c.target = groups_[c.group].members[rng_.uniform(groups_[c.group].members.size())];
    Operation op;
    op.client = c.id;
    op.key = "g" + std::to_string(c.group) + "k" + std::to_string(req.key);
    op.op = req.op;
    if (req.op != OpKind::kRead) op.arg = req.arg;
    if (req.op == OpKind::kCas) op.expect = req.expect;
    op.call_ns = now_ns_;
    op.outcome = Outcome::kUnknown;
    c.history_index = history_.size();
    history_.push_back(std::move(op));
    c.busy = true;
    c.uid = req.uid;
    c.deadline_ns = now_ns_ + rng_.range(150, 400) * kMs;
    Envelope e;
    e.kind = MsgKind::kClientRequest;
    e.to = c.target;
    e.group = c.group;
    e.request = req;
    send(std::move(e), now_ns_ < fault_end_ns_);
  }
}

void World::run_eventual(bool write, bool lossless) {
  const size_t n = nodes_.size();
  if (write && rng_.chance(1, 2)) {
    Node& w = nodes_[rng_.uniform(n)];
    if (w.up) {
      const std::string key = "e" + std::to_string(rng_.uniform(3));
      EventualState delta = rng_.chance(3, 4)
                                ? w.eventual->set(key, "n" + std::to_string(w.id) + "." + std::to_string(report_.eventual_ops))
                                : w.eventual->incr(key, static_cast<int64_t>(rng_.uniform(7)) - 3);
      ++report_.eventual_ops;
      oracle_ = join(oracle_, delta, crdt::CrdtBugs{});
      auto shared = std::make_shared<const EventualState>(std::move(delta));
      for (Node& peer : nodes_) {
        if (peer.id == w.id) continue;
        Envelope e;
        e.kind = MsgKind::kEventual;
        e.from = w.id;
        e.to = peer.id;
        e.eventual = shared;
        send(std::move(e), !lossless);
      }
    }
  }
  // Anti-entropy: each node pushes its whole state to one random peer now and then.
  for (Node& a : nodes_) {
    if (!a.up || now_ns_ < a.next_anti_entropy_ns) continue;
    a.next_anti_entropy_ns = now_ns_ + (lossless ? 10 : 60) * kMs;
    raft::NodeId to = static_cast<raft::NodeId>(rng_.range(1, n));
    if (to == a.id) to = to % n + 1;
    Envelope e;
    e.kind = MsgKind::kEventual;
    e.from = a.id;
    e.to = to;
    e.eventual = std::make_shared<const EventualState>(a.eventual->state());
    send(std::move(e), !lossless);
  }
}

void World::inject_faults() {
  const size_t n = nodes_.size();
  if (faults_.partition_heal_ns != 0 && now_ns_ >= faults_.partition_heal_ns) {
    for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
    faults_.partition_heal_ns = 0;
  }
  if (faults_.clogged != 0 && now_ns_ >= faults_.clogged_until_ns) faults_.clogged = 0;
  if (!rng_.chance(1, 25)) return;
  switch (rng_.uniform(10)) {
    case 0: {  // symmetric partition: a random side against the rest
      for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
      std::vector<bool> side(n + 1);
      for (size_t i = 1; i <= n; ++i) side[i] = rng_.chance(1, 2);
      for (size_t a = 1; a <= n; ++a) {
        for (size_t b = 1; b <= n; ++b) faults_.blocked[a][b] = side[a] != side[b];
      }
      faults_.partition_heal_ns = now_ns_ + rng_.range(50, 400) * kMs;
      break;
    }
    case 1: {  // one-way partition
      const size_t a = rng_.range(1, n), b = rng_.range(1, n);
      if (a != b) faults_.blocked[a][b] = true;
      if (faults_.partition_heal_ns == 0) faults_.partition_heal_ns = now_ns_ + rng_.range(50, 400) * kMs;
      break;
    }
    case 2:  // clog one node's links
      faults_.clogged = static_cast<raft::NodeId>(rng_.range(1, n));
      faults_.clogged_until_ns = now_ns_ + rng_.range(50, 300) * kMs;
      break;
    case 3:
    case 4: {  // crash, sometimes in the middle of persisting a Ready
      Node& victim = nodes_[rng_.uniform(n)];
      if (rng_.chance(1, 3)) victim.crash_mid_ready = true;
      else crash(victim);
      break;
    }
    case 5: {  // clock jump, rarely beyond the HLC's tolerated skew
      Node& j = nodes_[rng_.uniform(n)];
      const int64_t bound_ms = rng_.chance(1, 8) ? 900 : 300;
      j.wall_offset_ns += (static_cast<int64_t>(rng_.uniform(2 * bound_ms + 1)) - bound_ms) * static_cast<int64_t>(kMs);
      break;
    }
    case 6:  // lossy, duplicating, slow network for a while
      faults_.drop_per_mille = static_cast<uint32_t>(rng_.uniform(150));
      faults_.dup_per_mille = static_cast<uint32_t>(rng_.uniform(100));
      faults_.long_delay_per_mille = static_cast<uint32_t>(rng_.uniform(200));
      break;
    case 7: {  // membership: demote a voter to learner, or promote a learner back
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      for (raft::NodeId id : groups_[g].members) {
        Node& ln = node(id);
        if (!ln.up) continue;
        Replica& r = ln.replicas[g];
        if (r.raft->role() != raft::Role::kLeader) continue;
        const raft::NodeStatus st = r.raft->status();
        raft::ConfChange cc;
        if (!st.conf.learners.empty()) {
          cc = {raft::ConfChangeType::kAddVoter, st.conf.learners[rng_.uniform(st.conf.learners.size())]};
        } else if (st.conf.voters.size() >= 3) {
          const raft::NodeId v = st.conf.voters[rng_.uniform(st.conf.voters.size())];
          if (v == id) break;
          cc = {raft::ConfChangeType::kAddLearner, v};
        } else {
          break;
        }
        (void)r.raft->propose_conf_change(cc);  // refused while another change is pending
        after_input(ln, r);
        break;
      }
      break;
    }
    default:  // calm down: heal partitions and the network
      faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
      faults_.partition_heal_ns = now_ns_;
      break;
  }
}

void World::heal() {
  for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
  faults_.partition_heal_ns = 0;
  faults_.clogged = 0;
  faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
  for (Node& n : nodes_) {
    n.crash_mid_ready = false;
    n.crash_at_ns = 0;
    n.wall_offset_ns = 0;  // time service resynchronises the wall clocks
    if (!n.up) restart(n);
  }
  heal_ns_ = now_ns_;
}

void World::check_logs() {
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
    for (raft::NodeId id : groups_[g].members) {
      Node& n = node(id);
      if (n.up) logs.emplace_back(id, &n.replicas[g].disk.live());
    }
    if (!checker_.check_log_matching(g, logs)) return;
  }
}

void World::check_liveness() {
  bool all_live = true;
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    Group& group = groups_[g];
    if (!group.live) {
      for (raft::NodeId id : group.members) {
        Replica& r = node(id).replicas[g];
        if (r.raft->role() != raft::Role::kLeader) continue;
        Result<raft::Term> t = r.disk.live().term(r.raft->commit_index());
        if (t.is_ok() && *t == r.raft->term()) group.live = true;
      }
    }
    all_live = all_live && group.live;
  }
  if (all_live || now_ns_ < heal_ns_ + kLivenessTicksMax * kTickMs * kMs) return;
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].live) continue;
    std::string roles;
    for (raft::NodeId id : groups_[g].members) {
      const raft::RawNode& rn = *node(id).replicas[g].raft;
      roles += " node " + std::to_string(id) + "=" + raft::role_name(rn.role()) + "/t" + std::to_string(rn.term()) +
               "/c" + std::to_string(rn.commit_index());
    }
    violate("liveness", "group " + std::to_string(g) + " has no leader that committed in its term " +
                            std::to_string(kLivenessTicksMax) + " ticks after the faults stopped:" + roles);
    return;
  }
}

SimReport World::run() {
  enum class Phase { kFaults, kHealing, kSettling, kQuiescing };
  Phase phase = Phase::kFaults;
  uint64_t phase_end_ns = 0;
  uint64_t next_log_check_ns = kLogCheckEveryMs * kMs;
  // Bounded: the liveness deadline ends the healing phase at the latest.
  const uint64_t end_max_ns = fault_end_ns_ + (kLivenessTicksMax * kTickMs * 2 + kSettleMs + kQuiesceMaxMs) * kMs;
  while (!violated() && now_ns_ < end_max_ns) {
    now_ns_ += kStepNs;
    if (phase == Phase::kFaults) {
      if (now_ns_ >= fault_end_ns_) {
        heal();
        phase = Phase::kHealing;
      } else {
        inject_faults();
      }
    }
    while (!queue_.empty() && queue_.front().deliver_ns <= now_ns_ && !violated()) {
      std::pop_heap(queue_.begin(), queue_.end(), EnvelopeLater{});
      Envelope e = std::move(queue_.back());
      queue_.pop_back();
      deliver(e);
    }
    if (violated()) break;
    tick_nodes();
    if (violated()) break;
    run_clients(phase != Phase::kQuiescing);
    run_eventual(phase != Phase::kQuiescing, phase == Phase::kQuiescing);
    if (now_ns_ >= next_log_check_ns) {
      check_logs();
      next_log_check_ns = now_ns_ + kLogCheckEveryMs * kMs;
    }
    if (phase == Phase::kHealing) {
      check_liveness();
      if (std::all_of(groups_.begin(), groups_.end(), [](const Group& g) { return g.live; })) {
        phase = Phase::kSettling;
        phase_end_ns = now_ns_ + kSettleMs * kMs;
      }
    } else if (phase == Phase::kSettling && now_ns_ >= phase_end_ns) {
      phase = Phase::kQuiescing;
      phase_end_ns = now_ns_ + kQuiesceMaxMs * kMs;
    } else if (phase == Phase::kQuiescing) {
      if (now_ns_ >= phase_end_ns || (now_ns_ % (10 * kMs) == 0 && eventual_converged())) break;
    }
  }
  report_.simulated_ms = now_ns_ / kMs;
  if (!checker_.ok()) violate(checker_.violation_kind(), checker_.violation());
  if (!violated()) check_logs();
  if (!checker_.ok()) violate(checker_.violation_kind(), checker_.violation());
  for (uint32_t g = 0; g < groups_.size(); ++g) report_.committed += checker_.max_commit(g);
  report_.prior_term_commits = checker_.prior_term_commits();
  if (violated()) return report_;
  // Every client still waiting gets its unknown outcome.
  for (Client& c : clients_) {
    if (!c.busy) continue;
    history_[c.history_index].outcome = Outcome::kUnknown;
    history_[c.history_index].return_ns = now_ns_;
    ++report_.client_ops;
  }
  CheckResult lin = check_history(history_);
  report_.lin_steps = lin.steps;
  if (lin.verdict == Verdict::kNotLinearizable) {
    violate("linearizability", lin.detail);
    return report_;
  }
  if (lin.verdict == Verdict::kTooBig) {
    violate("linearizability (search too big)", lin.detail);
    return report_;
  }
  // CRDT convergence: every replica equal, and equal to the join of every delta ever issued.
  for (Node& n : nodes_) {
    report_.hlc_rejected += n.eventual->hlc_rejected();
    if (!(n.eventual->state() == oracle_)) {
      violate("crdt convergence", "node " + std::to_string(n.id) + " differs from the join of all writes: " +
                                      describe_difference(n.eventual->state(), oracle_));
      return report_;
    }
  }
  return report_;
}

Simulation::Simulation(const SimOptions& options) : world_(std::make_unique<World>(options)) {}
Simulation::~Simulation() = default;
SimReport Simulation::run() { return world_->run(); }
const std::vector<Operation>& Simulation::history() const { return world_->history(); }

}  // namespace tally::sim
