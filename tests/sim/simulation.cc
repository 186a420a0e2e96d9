#include "tests/sim/simulation.h"

#include "tests/sim/linearizability.h"
#include "tests/sim/world.h"

namespace tally::sim {

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
  const uint64_t size_pick = rng_.uniform(4);
  max_size_per_msg_ = size_pick <= 1 ? 1 : size_pick == 2 ? 64 : static_cast<uint32_t>(rng_.range(2, 4)) * 64;
  max_inflight_msgs_ = static_cast<uint32_t>(rng_.range(1, 8));
  pre_vote_ = rng_.chance(3, 4);
  // Half the seeds snapshot and compact often, so lagging and restarted replicas need snapshots.
  compact_every_entries_ = rng_.chance(1, 2) ? static_cast<uint32_t>(rng_.range(8, 32)) : 0;
  fault_end_ns_ = rng_.range(1000, 2000) * kMs;

  nodes_.resize(n);
  faults_.blocked.assign(n + 1, std::vector<bool>(n + 1, false));
  for (raft::NodeId id = 1; id <= n; ++id) {
    Node& nd = node(id);
    nd.id = id;
    nd.drift_ppm = static_cast<int64_t>(rng_.uniform(40'001)) - 20'000;  // up to ±2 %
    nd.next_tick_mono_ns = rng_.uniform(kTickMs * kMs);
    nd.clock = std::make_unique<NodeClock>(*this, id);
    nd.eventual = std::make_unique<EventualReplica>(id, *nd.clock, kHlcMaxSkewMs, crdt_bugs_);
  }
  groups_.resize(group_count);
  for (uint32_t g = 0; g < group_count; ++g) {
    const uint32_t replicas = n == 3 ? 3 : (rng_.chance(1, 2) ? 3 : 5);
    std::vector<raft::NodeId> all;
    for (raft::NodeId id = 1; id <= n; ++id) all.push_back(id);
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

void World::violate(const std::string& kind, const std::string& detail) {
  if (report_.violation) return;
  report_.violation = true;
  report_.kind = kind;
  report_.detail = detail;
}

void World::complete(Client& c, const ClientReply& rep) {
  TALLY_ASSERT(c.busy && c.uid == rep.uid);
  TALLY_ASSERT(c.history_index < history_.size());
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
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on the chained operator+ form.
    op.key.reserve(16);
    op.key.append(1, 'g').append(std::to_string(c.group)).append(1, 'k').append(std::to_string(req.key));
    op.op = req.op;
    if (req.op != OpKind::kRead) op.arg = req.arg;
    if (req.op == OpKind::kCas) op.expect = req.expect;
    op.call_ns = now_ns_;
    op.outcome = Outcome::kUnknown;
    c.history_index = history_.size();
    history_.push_back(std::move(op));
    TALLY_ASSERT(history_.size() < kHistoryOpsMax);
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
  const size_t node_count = nodes_.size();
  if (write && rng_.chance(1, 2)) {
    Node& w = nodes_[rng_.uniform(node_count)];
    if (w.up) {
      std::string key(1, 'e');
      key += std::to_string(rng_.uniform(3));
      std::string value(1, 'n');
      value.append(std::to_string(w.id)).append(1, '.').append(std::to_string(report_.eventual_ops));
      EventualState delta = rng_.chance(3, 4)
                                ? w.eventual->set(key, std::move(value))
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
    raft::NodeId to = rng_.range(1, node_count);
    if (to == a.id) to = to % node_count + 1;
    Envelope e;
    e.kind = MsgKind::kEventual;
    e.from = a.id;
    e.to = to;
    e.eventual = std::make_shared<const EventualState>(a.eventual->state());
    send(std::move(e), !lossless);
  }
}

void World::check_logs() {
  TALLY_ASSERT(!groups_.empty());
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
    for (raft::NodeId id : groups_[g].members) {
      Node& n = node(id);
      if (n.up) logs.emplace_back(id, &n.replicas[g].disk.live());
    }
    if (!checker_.check_log_matching(g, logs)) return;
  }
}

namespace {
std::string ids_text(const std::vector<raft::NodeId>& ids) {
  std::string out = "(";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + ")";
}
}  // namespace

void World::check_liveness() {
  TALLY_ASSERT(heal_ns_ != 0 && now_ns_ >= heal_ns_);
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
      const raft::ConfState conf = rn.status().conf;
      roles += " node " + std::to_string(id) + "=" + raft::role_name(rn.role()) + "/t" + std::to_string(rn.term()) +
               "/c" + std::to_string(rn.commit_index()) + "/voters" + ids_text(conf.voters) + "/learners" + ids_text(conf.learners);
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
