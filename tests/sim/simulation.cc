// One simulation run: the cluster's shape from the seed, the clients, the checks, and the loop.
#include "tests/sim/simulation.h"

#include <cstdlib>

#include "host/common/log.h"
#include "tests/sim/linearizability.h"
#include "tests/sim/world.h"

namespace tally::sim {

namespace {
// The write-ahead log warns of every torn tail and failed write it meets, which a simulation makes by
// the thousand; TALLY_LOG_LEVEL=warn shows them.
void quiet_logs() {
  static const bool once = [] {
    const char* level = std::getenv("TALLY_LOG_LEVEL");
    return log::set_level(level != nullptr ? level : "off");
  }();
  (void)once;
}
}  // namespace

World::World(const SimOptions& options)
    : options_(options), rng_(options.seed), checker_(1) {
  quiet_logs();
  // Sizes first, from the seed, so every later choice replays.
  uint32_t n = options.nodes;
  if (n == 0) {
    // Five- and seven-node clusters have nodes outside each group, which can join it.
    const uint64_t pick = rng_.uniform(20);
    n = pick < 9 ? 3 : pick < 17 ? 5 : 7;
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
  // Check-quorum off in a fifth of the seeds: a cut-off leader then stays leader until it hears
  // of a newer term, so clients keep reaching deposed leaders. Leases (which need check-quorum)
  // in half of the others.
  check_quorum_ = !rng_.chance(1, 5);
  lease_ = check_quorum_ && rng_.chance(1, 2);
  // A quarter of the seeds commit through an asynchronous tally (TallyBatch build, apply later).
  async_tally_ = rng_.chance(1, 4);
  // Half of the seeds (by a bit of the seed, leaving the random stream of older seeds as it was):
  // leaders send their appends before their own copy is durable.
  early_send_ = (options.seed & 2) != 0;
  // Some seeds run on a fast network (20-300 us per hop), where a whole election and a commit
  // fit in the last millisecond of a lease; lease seeds more often, and half of those with tight
  // clocks (±0.5 % drift, a 2 ms bound) so the lease lasts nearly as long as stickiness.
  if (rng_.chance(1, lease_ ? 3 : 6)) {
    net_delay_min_ns_ = 20'000;
    net_delay_max_ns_ = 300'000;
  }
  const bool tight_clocks = lease_ && rng_.chance(1, 2);
  if (tight_clocks) lease_drift_max_ms_ = kTightLeaseDriftMaxMs;
  const int64_t drift_ppm_max = tight_clocks ? 5'000 : 20'000;
  // Two seeds in three snapshot and compact often, so lagging, paused and restarted replicas need
  // snapshots, and installs race the appends that follow them.
  compact_every_entries_ = rng_.chance(2, 3) ? static_cast<uint32_t>(rng_.range(4, 16)) : 0;
  fault_end_ns_ = rng_.range(1000, 2000) * kMs;

  nodes_.resize(n);
  faults_.blocked.assign(n + 1, std::vector<bool>(n + 1, false));
  for (raft::NodeId id = 1; id <= n; ++id) {
    Node& nd = node(id);
    nd.id = id;
    nd.drift_ppm = static_cast<int64_t>(rng_.uniform(2 * drift_ppm_max + 1)) - drift_ppm_max;
    nd.next_tick_mono_ns = rng_.uniform(kTickMs * kMs);
    nd.clock = std::make_unique<NodeClock>(*this, id);
    nd.eventual = std::make_unique<EventualReplica>(id, *nd.clock, kHlcMaxSkewMs, crdt_bugs_);
    nd.tally = std::make_unique<TallyInFlight>();
    nd.disk = std::make_unique<NodeDisk>(rng_.next());
    nd.disk->io().skip_fsync = options.bug == PlantedBug::kSkipFsync;
    nd.disk->open({});
    nd.shell = std::make_unique<NodeShell>(*this, id);
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
    // Some groups of the larger clusters start with two learners beside three voters (a commit
    // quorum that wrongly counted them would be leader plus learners).
    const uint32_t learners = n > 3 && rng_.chance(1, 2) ? 2 : 0;
    if (learners > 0 && replicas == 3) {
      for (uint32_t i = replicas; i < replicas + learners; ++i) groups_[g].members.push_back(all[i]);
    }
    groups_[g].initial.voters.assign(groups_[g].members.begin(), groups_[g].members.begin() + 3);
    groups_[g].initial.learners.assign(groups_[g].members.begin() + 3, groups_[g].members.end());
    if (learners == 0) groups_[g].initial = raft::ConfState{groups_[g].members, {}};
    std::sort(groups_[g].initial.voters.begin(), groups_[g].initial.voters.end());
    std::sort(groups_[g].initial.learners.begin(), groups_[g].initial.learners.end());
    std::sort(groups_[g].members.begin(), groups_[g].members.end());
    report_.learners_max = std::max(report_.learners_max, static_cast<uint32_t>(groups_[g].initial.learners.size()));
    for (raft::NodeId id : groups_[g].members) start_replica(node(id), g);
    for (uint32_t c = 0; c < kClientsPerGroup; ++c) {
      Client client;
      client.id = static_cast<uint32_t>(clients_.size());
      client.group = g;
      client.follows_newest_leader = c == 0;
      client.probes_previous_leader = c == 1;
      client.next_issue_ns = rng_.uniform(20 * kMs);
      clients_.push_back(client);
    }
  }
  report_.nodes = n;
  report_.groups = group_count;
  report_.leases = lease_;
  report_.check_quorum = check_quorum_;
  report_.pre_vote = pre_vote_;
  report_.async_tally = async_tally_;
  report_.early_send = early_send_;
}

void World::violate(const std::string& kind, const std::string& detail) {
  if (report_.violation) return;
  report_.violation = true;
  report_.kind = kind;
  report_.detail = detail;
}

World::Replica* World::replica(raft::NodeId id, uint32_t group) {
  auto& replicas = node(id).replicas;
  auto it = replicas.find(group);
  return it == replicas.end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// Clients.

void World::complete(Client& c, const ClientReply& rep) {
  TALLY_ASSERT(c.busy && c.uid == rep.uid);
  TALLY_ASSERT(c.history_index < history_.size());
  Operation& op = history_[c.history_index];
  op.return_ns = now_ns_;
  op.outcome = rep.outcome;
  if (rep.outcome == Outcome::kOk && op.op != OpKind::kWrite) op.result = rep.result;
  c.busy = false;
  ++report_.client_ops;
  const auto& members = groups_[c.group].members;
  if (rep.outcome == Outcome::kFail) {
    // Refused: go where the node says the leader is, or anywhere if it does not know.
    const bool hint_ok = std::find(members.begin(), members.end(), rep.leader_hint) != members.end();
    c.target = hint_ok ? rep.leader_hint : members[rng_.uniform(members.size())];
  }
  // The next call never touches this return: a client's operations are strictly sequential.
  c.next_issue_ns = now_ns_ + rng_.range(1000, (rep.outcome == Outcome::kOk ? 8 : 20) * kMs);
  if (c.probes_previous_leader && rep.outcome == Outcome::kOk && op.op == OpKind::kWrite && c.previous_leader != 0) {
    c.read_next = true;
    c.next_issue_ns = now_ns_ + rng_.range(1000, 200'000);
  }
}

void World::late_reply(const ClientReply& rep) {
  // The client gave up on it, but the answer is still a fact about the operation: refused means
  // it never took effect; done means it took effect before now (the answer's arrival).
  auto it = gave_up_.find(rep.uid);
  if (it == gave_up_.end() || rep.outcome == Outcome::kUnknown) return;
  Operation& op = history_[it->second];
  TALLY_ASSERT(op.outcome == Outcome::kUnknown);
  op.outcome = rep.outcome;
  op.return_ns = now_ns_;
  if (rep.outcome == Outcome::kOk && op.op != OpKind::kWrite) op.result = rep.result;
  gave_up_.erase(it);
}

void World::resolve_unknowns() {
  // The simulator sees what the clients could not: a write whose client gave up either reached
  // a state machine (first at some time, with some result) or never did before the run ended.
  // Either fact is sound to record — in a correct cluster a write takes effect when it commits,
  // before any replica applies it — and it keeps the search small: an unknown write may
  // otherwise take effect at any point after its call, which multiplies the orders to try.
  for (const auto& [uid, index] : gave_up_) {
    Operation& op = history_[index];
    if (op.outcome != Outcome::kUnknown || op.op == OpKind::kRead) continue;
    auto applied = first_apply_.find(uid);
    if (applied == first_apply_.end()) {
      op.outcome = Outcome::kFail;  // took no effect within the history
      continue;
    }
    op.outcome = Outcome::kOk;
    op.return_ns = std::max(op.call_ns, applied->second.at_ns);
    if (op.op != OpKind::kWrite) op.result = applied->second.result;
    ++report_.unknowns_resolved;
  }
}

void World::expire_clients() {
  for (Client& c : clients_) {
    if (!c.busy) continue;
    // Routing-aware clients give up as soon as a newer leader than the one they asked exists
    // (the prober only for its writes: its reads go to an older leader on purpose).
    const raft::NodeId lead = newest_leader(c.group);
    const bool routed = c.follows_newest_leader || (c.probes_previous_leader && history_[c.history_index].op != OpKind::kRead);
    const bool moved_on = routed && lead != raft::kNoNode && lead != c.target;
    if (now_ns_ < c.deadline_ns && !moved_on) continue;
    // Timed out: it may still take effect, so it is recorded as unknown.
    Operation& op = history_[c.history_index];
    op.outcome = Outcome::kUnknown;
    op.return_ns = now_ns_;
    gave_up_.emplace(c.uid, c.history_index);
    c.busy = false;
    ++report_.client_ops;
    // Most clients keep trying the node they last saw as leader, so a deposed leader that is
    // slow, paused or cut off keeps getting requests while a newer leader exists.
    const auto& members = groups_[c.group].members;
    const bool still_member = std::find(members.begin(), members.end(), c.target) != members.end();
    if (!still_member || rng_.chance(1, 4)) c.target = members[rng_.uniform(members.size())];
    c.next_issue_ns = now_ns_ + (routed && moved_on ? rng_.range(1000, 200'000) : rng_.range(1000, 10 * kMs));
  }
}

uint64_t World::next_client_issue_ns() const {
  uint64_t next = UINT64_MAX;
  if (!issuing_) return next;
  for (const Client& c : clients_) {
    if (!c.busy) next = std::min(next, c.next_issue_ns);
  }
  return next;
}

raft::NodeId World::newest_leader(uint32_t group) {
  raft::NodeId best = raft::kNoNode;
  raft::Term best_term = 0;
  for (raft::NodeId id : groups_[group].members) {
    Replica* r = replica(id, group);
    if (r == nullptr || !node(id).up || r->rg == nullptr || !r->rg->is_leader() || r->rg->term() < best_term) continue;
    best = id;
    best_term = r->rg->term();
  }
  return best;
}

void World::issue_client(Client& c) {
  TALLY_ASSERT(!c.busy && issuing_);
  ClientRequest req;
  req.client = c.id;
  req.uid = (static_cast<uint64_t>(c.id) << 32) | ++c.seq;
  req.key = static_cast<uint32_t>(rng_.uniform(kKeysPerGroup));
  const uint64_t kind = rng_.uniform(100);
  req.op = kind < 35 ? OpKind::kRead : kind < 60 ? OpKind::kWrite : kind < 80 ? OpKind::kCas : OpKind::kIncr;
  if (c.probes_previous_leader) {
    // Writes to the newest leader; right after one is acknowledged, a read of the same key from
    // the leader before it.
    const raft::NodeId lead = newest_leader(c.group);
    if (lead != raft::kNoNode && lead != c.leader_seen) {
      c.previous_leader = c.leader_seen;
      c.leader_seen = lead;
    }
    req.op = c.read_next ? OpKind::kRead : OpKind::kWrite;
    if (c.read_next) {
      req.key = c.seq == 0 ? req.key : c.last_key;
      c.target = c.previous_leader != raft::kNoNode ? c.previous_leader : c.target;
    } else if (lead != raft::kNoNode) {
      c.target = lead;
    }
    c.read_next = false;
    c.last_key = req.key;
  }
  req.arg = static_cast<int64_t>(rng_.uniform(5));
  if (req.op == OpKind::kCas && rng_.chance(9, 10)) req.expect = static_cast<int64_t>(rng_.uniform(5));
  if (req.op == OpKind::kIncr) req.arg = static_cast<int64_t>(rng_.range(1, 3));
  const auto& members = groups_[c.group].members;
  if (c.follows_newest_leader) {
    const raft::NodeId lead = newest_leader(c.group);
    if (lead != raft::kNoNode) c.target = lead;
  }
  if (c.target == 0 || std::find(members.begin(), members.end(), c.target) == members.end()) {
    c.target = members[rng_.uniform(members.size())];
  }
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

void World::run_eventual(bool write, bool lossless) {
  const size_t node_count = nodes_.size();
  if (write && rng_.chance(1, 2)) {
    Node& w = nodes_[rng_.uniform(node_count)];
    if (w.up && !paused(w)) {
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
    if (!a.up || paused(a) || now_ns_ < a.next_anti_entropy_ns) continue;
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

// ---------------------------------------------------------------------------------------------
// Checks.

void World::check_logs() {
  TALLY_ASSERT(!groups_.empty());
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
    for (raft::NodeId id : groups_[g].members) {
      Node& n = node(id);
      Replica* r = replica(id, g);
      if (n.up && r != nullptr && r->rg != nullptr) logs.emplace_back(id, &r->rg->storage());
    }
    if (!checker_.check_log_matching(g, logs)) return;
  }
}

namespace {
std::string ids_text(const std::vector<raft::NodeId>& ids) {
  std::string out = "(";
  for (size_t i = 0; i < ids.size(); ++i) out.append(i ? "," : "").append(std::to_string(ids[i]));
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
        Replica* r = replica(id, g);
        if (r == nullptr || !node(id).up || r->rg == nullptr || r->rg->role() != raft::Role::kLeader) continue;
        Result<raft::Term> t = r->rg->storage().term(r->rg->commit_index());
        if (t.is_ok() && *t == r->rg->term()) group.live = true;
      }
    }
    all_live = all_live && group.live;
  }
  if (all_live || now_ns_ < heal_ns_ + kLivenessTicksMax * kTickMs * kMs) return;
  for (uint32_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].live) continue;
    violate("liveness", "group " + std::to_string(g) + " has no leader that committed in its term " +
                            std::to_string(kLivenessTicksMax) + " ticks after the faults stopped:" + group_state(g));
    return;
  }
}

std::string World::group_state(uint32_t g) {
  std::string out;
  for (raft::NodeId id : groups_[g].members) {
    Replica* r = replica(id, g);
    if (r == nullptr || !node(id).up || r->rg == nullptr) {
      out += " node " + std::to_string(id) + (r != nullptr && !r->corrupt.empty() ? "=kept down (corrupt log)" : "=down");
      continue;
    }
    const group::ReplicaGroup& rg = *r->rg;
    const raft::ConfState conf = rg.status().conf;
    out += " node " + std::to_string(id) + "=" + raft::role_name(rg.role()) + "/t" + std::to_string(rg.term()) + "/c" +
           std::to_string(rg.commit_index()) + "/last" + std::to_string(rg.last_index()) + "/voters" +
           ids_text(conf.voters) + "/learners" + ids_text(conf.learners) + (rg.log_error().is_ok() ? "" : "/log failed");
  }
  return out;
}

size_t World::outstanding_requests() const {
  size_t total = 0;
  for (const Node& n : nodes_) {
    if (!n.up) continue;
    for (const auto& [g, r] : n.replicas) {
      total += r.pending_writes.size() + r.pending_reads.size() + r.reads_waiting_apply.size();
    }
  }
  return total;
}

bool World::check_operations(bool final) {
  TALLY_ASSERT(heal_ns_ != 0);
  // A request a replica accepted must be answered within kOpLivenessMs of the heal (or of its
  // acceptance, if later), as long as the replica lives: a read that hangs is a violation, not
  // an `unknown` the client records and forgets. At the end, every request still open counts.
  auto overdue = [&](const Accepted& a) {
    return final || now_ns_ >= std::max(a.accepted_ns, heal_ns_) + kOpLivenessMs * kMs;
  };
  for (Node& n : nodes_) {
    if (!n.up) continue;
    for (auto& [g, r] : n.replicas) {
      const Accepted* late = nullptr;
      const char* what = "";
      for (const auto& [ctx, a] : r.pending_reads) {
        if (overdue(a)) late = &a, what = "read waiting for its ReadState";
      }
      for (const auto& [index, a] : r.reads_waiting_apply) {
        if (overdue(a)) late = &a, what = "read waiting for its index to apply";
      }
      for (const auto& [uid, a] : r.pending_writes) {
        if (overdue(a)) late = &a, what = "write waiting for its entry";
      }
      if (late == nullptr) continue;
      violate("operation liveness",
              "group " + std::to_string(g) + " node " + std::to_string(n.id) + ": " + what + " (client " +
                  std::to_string(late->request.client) + ", accepted at " +
                  std::to_string(late->accepted_ns / 1000) + " us) still unanswered at " +
                  std::to_string(now_ns_ / 1000) + " us; the faults stopped at " + std::to_string(heal_ns_ / 1000) +
                  " us; applied " + std::to_string(r.applied) + ";" + group_state(g));
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The loop.

SimReport World::run() {
  enum class Phase { kFaults, kHealing, kSettling, kQuiescing };
  Phase phase = Phase::kFaults;
  uint64_t phase_end_ns = 0;
  uint64_t next_log_check_ns = kLogCheckEveryMs * kMs;
  // Bounded: the liveness deadline ends the healing phase at the latest.
  const uint64_t end_max_ns = fault_end_ns_ + (kLivenessTicksMax * kTickMs * 2 + kSettleMs + kQuiesceMaxMs) * kMs;
  while (!violated() && now_ns_ < end_max_ns) {
    const uint64_t step_end = now_ns_ + kStepNs;
    // Messages and client calls at their own times within the step, in time order.
    while (!violated()) {
      const uint64_t msg_ns = queue_.empty() ? UINT64_MAX : queue_.front().deliver_ns;
      const uint64_t call_ns = next_client_issue_ns();
      const uint64_t t = std::min(msg_ns, call_ns);
      if (t > step_end) break;
      now_ns_ = std::max(now_ns_, t);
      if (msg_ns <= call_ns) {
        std::pop_heap(queue_.begin(), queue_.end(), EnvelopeLater{});
        Envelope e = std::move(queue_.back());
        queue_.pop_back();
        deliver(e);
        drop_departed();
      } else {
        for (Client& c : clients_) {
          if (!c.busy && c.next_issue_ns == t) {
            issue_client(c);
            break;
          }
        }
        drop_departed();
      }
    }
    if (violated()) break;
    now_ns_ = step_end;
    if (phase == Phase::kFaults) {
      if (now_ns_ >= fault_end_ns_) {
        heal();
        phase = Phase::kHealing;
      } else {
        inject_faults();
      }
    }
    drop_departed();
    run_forced_campaigns();
    tick_nodes();
    drop_departed();
    if (violated()) break;
    expire_clients();
    run_eventual(phase != Phase::kQuiescing, phase == Phase::kQuiescing);
    if (now_ns_ >= next_log_check_ns) {
      check_logs();
      next_log_check_ns = now_ns_ + kLogCheckEveryMs * kMs;
    }
    if (phase != Phase::kFaults && now_ns_ % (10 * kMs) == 0 && !check_operations(false)) break;
    if (phase == Phase::kHealing) {
      check_liveness();
      if (std::all_of(groups_.begin(), groups_.end(), [](const Group& g) { return g.live; })) {
        phase = Phase::kSettling;
        phase_end_ns = now_ns_ + kSettleMs * kMs;
      }
    } else if (phase == Phase::kSettling && now_ns_ >= phase_end_ns) {
      phase = Phase::kQuiescing;
      issuing_ = false;
      phase_end_ns = now_ns_ + kQuiesceMaxMs * kMs;
    } else if (phase == Phase::kQuiescing) {
      if (now_ns_ >= phase_end_ns) break;
      if (now_ns_ % (10 * kMs) == 0 && eventual_converged() && outstanding_requests() == 0) break;
    }
  }
  report_.simulated_ms = now_ns_ / kMs;
  if (!checker_.ok()) violate(checker_.violation_kind(), checker_.violation());
  if (!violated()) check_logs();
  if (!checker_.ok()) violate(checker_.violation_kind(), checker_.violation());
  if (!violated() && heal_ns_ != 0) check_operations(true);
  for (uint32_t g = 0; g < groups_.size(); ++g) report_.committed += checker_.max_commit(g);
  for (const Node& n : nodes_) {
    const DiskStats d = n.disk->stats();
    report_.disk_failures += d.failures;
    report_.log_retries += d.retries;
    report_.segments_deleted += d.segments_deleted;
  }
  report_.prior_term_commits = checker_.prior_term_commits();
  if (violated()) return report_;
  // Every client still waiting gets its unknown outcome.
  for (Client& c : clients_) {
    if (!c.busy) continue;
    history_[c.history_index].outcome = Outcome::kUnknown;
    history_[c.history_index].return_ns = now_ns_;
    gave_up_.emplace(c.uid, c.history_index);
    ++report_.client_ops;
  }
  resolve_unknowns();
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
