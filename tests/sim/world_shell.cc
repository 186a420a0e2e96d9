// The node shell around the production replica group (group::ReplicaGroup): what its groups send,
// apply and show of each Ready (the checkers and the targeted crashes), the replicated key-value state
// machine, the group commit at the end of each input, crashes and restarts from the node's log, the
// asynchronous tally, and the answers a replica owes every request it accepted.
#include "tests/sim/world.h"

namespace tally::sim {

raft::Config World::raft_config(raft::NodeId id, uint32_t group) {
  raft::Config c;
  c.id = id;
  c.voters = groups_[group].initial.voters;
  c.learners = groups_[group].initial.learners;
  c.election_tick = kElectionTicks;
  c.heartbeat_tick = 1;
  c.pre_vote = pre_vote_;
  c.check_quorum = check_quorum_;
  c.seed = rng_.next() | 1;
  c.max_inflight_msgs = max_inflight_msgs_;
  c.max_size_per_msg = max_size_per_msg_;
  c.external_tally = async_tally_;
  c.leader_sends_before_persist = early_send_;
  c.lease_read.enabled = lease_;
  c.lease_read.tick_interval_ms = kTickMs;
  c.lease_read.clock_drift_max_ms = lease_drift_max_ms_;
  c.lease_read.clock = node(id).clock.get();
  c.bugs = raft_bugs_;
  return c;
}

// ---------------------------------------------------------------------------------------------
// The node's side of the loop.

void World::NodeShell::send(uint32_t group, std::vector<raft::Message> messages) {
  World& w = w_;
  Node& n = w.node(node_);
  for (const raft::Message& m : messages) {
    w.send_raft(m, group);
    // Targeted fault: crash right after granting a vote, so a vote that was not durable would be
    // forgotten while the election is still running.
    if (m.type == raft::MessageType::kVoteResp && !m.reject && w.buggify() && n.crash_at_ns == 0 &&
        w.rng_.chance(1, 4)) {
      n.crash_at_ns = w.now_ns_ + w.rng_.range(0, 2) * kMs;
    }
  }
}

void World::NodeShell::apply(uint32_t group, const raft::Entry& entry) {
  if (w_.violated()) return;
  w_.apply_entry(w_.node(node_), *w_.replica(node_, group), entry);
}

void World::NodeShell::apply_internal(uint32_t group, const raft::Entry& entry, const raft::ConfState* conf) {
  if (w_.violated()) return;
  Node& n = w_.node(node_);
  Replica& r = *w_.replica(node_, group);
  w_.apply_entry(n, r, entry);
  if (conf == nullptr || w_.violated()) return;
  // The membership as applied is stored with the apply.
  n.disk->save_conf(group, *conf);
  Result<raft::ConfChange> cc = raft::ConfChange::decode(entry.data);
  TALLY_ASSERT(cc.is_ok());
  w_.apply_conf_change(n, r, *cc);
}

void World::NodeShell::applied_to(uint32_t group, raft::Index) {
  if (w_.violated()) return;
  w_.serve_reads(w_.node(node_), *w_.replica(node_, group));
}

void World::NodeShell::restore(uint32_t group, const raft::Snapshot& snapshot) {
  ++w_.report_.snapshots_installed;
  Replica& r = *w_.replica(node_, group);
  w_.restore_snapshot(w_.node(node_), r, snapshot);
  // Reads waiting for an index the snapshot covers run now: nothing may be applied after it.
  w_.serve_reads(w_.node(node_), r);
}

void World::NodeShell::read_ready(uint32_t group, const raft::ReadState& rs) {
  if (w_.violated()) return;
  Replica& r = *w_.replica(node_, group);
  auto it = r.pending_reads.find(rs.context);
  if (it == r.pending_reads.end()) return;
  r.reads_waiting_apply.emplace_back(rs.index, it->second);
  r.pending_reads.erase(it);
  w_.serve_reads(w_.node(node_), r);
}

void World::NodeShell::read_failed(uint32_t group, const std::string& context) {
  Replica& r = *w_.replica(node_, group);
  auto it = r.pending_reads.find(context);
  if (it == r.pending_reads.end()) return;
  ++w_.report_.failed_reads;
  w_.reply(it->second.request, Outcome::kFail, std::nullopt, r.rg->leader(), node_);  // never ran: no effect
  r.pending_reads.erase(it);
}

bool World::NodeShell::before_persist(uint32_t group, const raft::Ready& rd) {
  return w_.before_persist(w_.node(node_), *w_.replica(node_, group), rd);
}

void World::NodeShell::after_advance(uint32_t group) {
  if (w_.violated()) return;
  w_.maybe_compact(w_.node(node_), *w_.replica(node_, group));
}

bool World::before_persist(Node& n, Replica& r, const raft::Ready& rd) {
  if (violated()) return false;
  group::ReplicaGroup& rg = *r.rg;
  const raft::Role role = rg.role();
  if (!checker_.observe_ready(r.group, n.id, role, rg.term(), rd, rg.storage())) return false;
  if (role == raft::Role::kLeader &&
      !checker_.check_one_conf_change(r.group, n.id, rd, rg.applied(), rg.storage())) {
    return false;
  }
  SimLogIo& io = n.disk->io();
  // Targeted fault: a node dies in the Ready that makes it leader, before its first entry is synced
  // or sent; the torn tail may keep that entry, stranding it on this node alone.
  if (rd.soft_state && rd.soft_state->role == raft::Role::kLeader && buggify() && rng_.chance(1, 6)) {
    io.crash_at(CrashPoint::kBeforeSync);
  }
  const bool commits = rd.hard_state && role == raft::Role::kLeader &&
                       rd.hard_state->commit > rg.storage().initial_state().hard_state.commit;
  if (commits) {
    if (!checker_.check_commit_durable(r.group, n.id, rd.hard_state->commit,
                                       voter_logs(r.group, rg.status().conf.voters))) {
      return false;
    }
    // Targeted fault: a leader dies the moment it decides a commit, its Ready durable but nothing
    // sent, so the next leader must already hold what it committed.
    if (buggify() && rng_.chance(1, 12)) io.crash_at(CrashPoint::kAfterSync);
  }
  // Targeted fault: membership records lost before their sync — the node dies with a Ready that
  // appends a membership change written and not synced.
  const bool conf_change = std::any_of(rd.entries.begin(), rd.entries.end(), [](const raft::Entry& e) {
    return e.type == raft::EntryType::kConfChange;
  });
  if (conf_change && buggify() && io.crash_point() == CrashPoint::kNone && rng_.chance(1, 6)) {
    io.crash_at(CrashPoint::kBeforeSync);
    ++report_.conf_change_crashes;
  }
  return true;
}

void World::after_input(Node& n, Replica& r) {
  if (!n.up || r.rg == nullptr) return;
  r.rg->process();
  settle(n);
}

void World::settle(Node& n) {
  if (!n.up) return;
  n.disk->flush();
  if (n.disk->io().dead()) {
    crash(n);  // the power went out in the middle of that group commit
    return;
  }
  if (violated()) return;
  observe_roles(n);
}

void World::observe_roles(Node& n) {
  for (auto& [g, r] : n.replicas) {
    if (r.rg == nullptr) continue;
    const raft::Role role = r.rg->role();
    const raft::Term term = r.rg->term();
    if (!checker_.observe_role(g, n.id, role, term, r.rg->storage())) return;
    // Targeted fault: a fresh leader sometimes dies before its first entries replicate, which
    // leaves entries of several terms on minorities (the Figure 8 situation).
    raft::Term& led = n.led_term[g];
    if (role == raft::Role::kLeader && term > led) {
      led = term;
      if (buggify() && n.crash_at_ns == 0 && rng_.chance(1, 4)) n.crash_at_ns = now_ns_ + rng_.range(1, 40) * kMs;
    }
  }
}

std::vector<std::pair<raft::NodeId, const raft::Storage*>> World::voter_logs(uint32_t group,
                                                                               const std::vector<raft::NodeId>& voters) {
  static const raft::MemoryStorage kEmpty;
  std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
  for (raft::NodeId v : voters) {
    const Replica* vr = replica(v, group);
    if (vr == nullptr) continue;
    const raft::Storage* log = &kEmpty;
    if (!vr->corrupt.empty()) {
      log = nullptr;  // stays down: never votes
    } else if (vr->rg != nullptr) {
      log = &vr->rg->storage();
    } else if (vr->down_log != nullptr) {
      log = vr->down_log.get();
    }
    logs.emplace_back(v, log);
  }
  return logs;
}

// ---------------------------------------------------------------------------------------------
// Starting, crashing and restarting replicas.

bool World::start_replica(Node& n, uint32_t group) {
  TALLY_ASSERT(n.up && n.disk->is_open());
  Replica& r = n.replicas[group];
  r.group = group;
  r.kv.clear();
  r.applied = 0;
  r.snapshot_index = 0;
  forget_requests(r);
  if (!r.corrupt.empty()) return true;  // stays down
  std::unique_ptr<raft::MemoryStorage> storage = std::move(r.down_log);
  if (storage == nullptr) storage = std::make_unique<raft::MemoryStorage>();
  Result<raft::Snapshot> snap = storage->snapshot();
  if (snap.is_ok() && !snap->empty()) restore_snapshot(n, r, *snap);
  group::GroupOptions options;
  options.raft = raft_config(n.id, group);
  // A replica that joined later knows no membership: it learns the group from the log (or its
  // disk, once it applied a change or installed a snapshot).
  if (r.joined) {
    options.raft.voters.clear();
    options.raft.learners.clear();
  }
  options.raft.applied = r.applied;  // the snapshot's index: the state machine already holds those
  options.log_entries_kept = UINT64_MAX;  // the shell compacts (maybe_compact)
  options.observer = n.shell.get();
  auto rg = group::ReplicaGroup::create(group, std::move(options), std::move(storage), n.disk->group_log(), *n.shell,
                                        *n.shell);
  if (!rg.is_ok()) {
    // What survived the crash is inconsistent (a commit index past the stored log, say): the
    // node cannot come back. Only a protocol bug can leave a disk like that.
    violate("durable state", "group " + std::to_string(group) + " node " + std::to_string(n.id) +
                                 " cannot restart from its disk: " + rg.status().to_string());
    return false;
  }
  r.rg = std::move(rg).value();
  return true;
}

void World::drop_replica(Node& n, uint32_t group) {
  auto it = n.replicas.find(group);
  if (it == n.replicas.end()) return;
  if (n.up) abandon_requests(n, it->second);
  n.tally->in_flight = false;  // its batch may point at this replica
  n.replicas.erase(it);
  n.disk->forget(group);
  if (n.up) n.disk->release(group, UINT64_MAX);  // its records are needed no more
  checker_.forget(group, n.id);
}

void World::forget_requests(Replica& r) {
  // The process died with them: their clients time out.
  r.pending_reads.clear();
  r.pending_writes.clear();
  r.write_at.clear();
  r.reads_waiting_apply.clear();
}

void World::abandon_requests(Node& n, Replica& r) {
  // The replica shuts down: what it accepted may or may not take effect elsewhere.
  for (auto& [uid, a] : r.pending_writes) reply(a.request, Outcome::kUnknown, std::nullopt, raft::kNoNode, n.id);
  for (auto& [ctx, a] : r.pending_reads) reply(a.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
  for (auto& [index, a] : r.reads_waiting_apply) reply(a.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
  forget_requests(r);
}

void World::expire_writes(Node& n, Replica& r) {
  // A write whose entry is no longer in our log was cut by a later leader. Only its index being
  // applied here decides its fate; if the group's log never gets there, give up: unknown.
  for (auto it = r.pending_writes.begin(); it != r.pending_writes.end();) {
    const Accepted& a = it->second;
    Result<raft::Term> t = r.rg->storage().term(a.index);
    const bool in_log = t.is_ok() && *t == a.term;
    if (in_log || now_ns_ < a.accepted_ns + kWriteTimeoutMs * kMs) {
      ++it;
      continue;
    }
    reply(a.request, Outcome::kUnknown, std::nullopt, raft::kNoNode, n.id);
    r.write_at.erase(a.index);
    it = r.pending_writes.erase(it);
  }
}

void World::crash(Node& n) {
  if (!n.up) return;
  n.up = false;
  n.paused_until_ns = 0;
  n.held.clear();
  n.tally->in_flight = false;
  ++report_.crashes;
  // What each replica had acknowledged as durable, and what it was still writing.
  std::map<uint32_t, AckedLog> acked;
  for (auto& [g, r] : n.replicas) {
    checker_.forget(g, n.id);
    forget_requests(r);
    if (r.rg == nullptr) continue;
    acked.emplace(g, capture_acked(r.rg->storage(), r.rg->in_flight()));
    r.rg.reset();
  }
  n.disk->crash(rng_);
  if (n.damage_at_crash) {
    n.damage_at_crash = false;
    const std::string what = n.disk->damage(rng_);
    if (!what.empty()) {
      damaged_ = n.id;
      ++report_.logs_damaged;
    }
  }
  recover(n, acked);
  n.crash_at_ns = 0;
  // Often back almost at once (faster than a lease), so a lost vote or a torn tail meets the
  // same election again; otherwise after up to 300 ms (slower than a lease).
  n.restart_at_ns = now_ns_ + (rng_.chance(1, 2) ? rng_.range(1, 15) : rng_.range(20, 300)) * kMs;
}

void World::recover(Node& n, const std::map<uint32_t, AckedLog>& acked) {
  std::set<uint32_t> hosted;
  for (const auto& [g, r] : n.replicas) hosted.insert(g);
  NodeRecovery rec = n.disk->recover(hosted, options_.bug != PlantedBug::kBadHeaderSparesItsGroup);
  report_.torn_tails += rec.torn_tail ? 1 : 0;
  for (auto& [g, r] : n.replicas) {
    r.down_log.reset();
    if (!r.corrupt.empty()) continue;
    RecoveredGroup& found = rec.groups.at(g);
    if (!found.start.unavailable.empty()) {
      if (damaged_ != n.id) {
        // Nothing damaged this log: recovery must find everything the replica wrote.
        violate("durable state", "group " + std::to_string(g) + " node " + std::to_string(n.id) +
                                     " has an unavailable log after a crash: " + found.start.unavailable);
        return;
      }
      if (options_.bug != PlantedBug::kServeCorruptLog) {
        r.corrupt = found.start.unavailable;
        ++report_.replicas_kept_down;
        continue;
      }
      // The planted bug: serve what could be read, as if nothing were missing.
      found.start.unavailable.clear();
    }
    auto it = acked.find(g);
    if (it != acked.end()) {
      const std::string lost = check_recovered(it->second, image_of(found.start));
      if (!lost.empty()) {
        violate("durable state", "group " + std::to_string(g) + " node " + std::to_string(n.id) + " after a crash: " +
                                     lost);
        return;
      }
    }
    raft::ConfState conf;
    if (found.conf) conf = *found.conf;
    auto storage = group::make_storage(found.start, conf, found.snapshot ? &*found.snapshot : nullptr);
    if (!storage.is_ok()) {
      violate("durable state", "group " + std::to_string(g) + " node " + std::to_string(n.id) +
                                   " cannot rebuild its log: " + storage.status().to_string());
      return;
    }
    r.down_log = std::move(storage).value();
  }
}

void World::restart(Node& n) {
  TALLY_ASSERT(!n.up);
  n.up = true;
  std::set<uint32_t> hosted;
  for (const auto& [g, r] : n.replicas) hosted.insert(g);
  n.disk->open(hosted);
  for (auto& [g, r] : n.replicas) {
    if (!start_replica(n, g)) {
      n.up = false;  // stays down; the run ends on the violation
      return;
    }
  }
}

void World::pause(Node& n, uint64_t until_ns) {
  if (!n.up || paused(n)) return;
  n.paused_until_ns = until_ns;
  ++report_.pauses;
}

void World::resume(Node& n) {
  TALLY_ASSERT(paused(n));
  n.paused_until_ns = 0;
  // Its clock ran on; what arrived meanwhile is handled now, in arrival order, before its next tick.
  std::vector<Envelope> held = std::move(n.held);
  n.held.clear();
  for (Envelope& e : held) {
    if (!n.up || violated()) break;
    deliver(e);
  }
}

// ---------------------------------------------------------------------------------------------
// The network.

void World::send(Envelope e, bool faulty_link) {
  TALLY_ASSERT(e.kind == MsgKind::kClientReply || (e.to >= 1 && e.to <= nodes_.size()));
  if (queue_.size() >= kMessagesInFlightMax) return;  // the network sheds load like a full switch
  uint64_t delay_ns = rng_.range(net_delay_min_ns_, net_delay_max_ns_);
  if (faulty_link) {
    if (e.kind != MsgKind::kClientRequest && e.kind != MsgKind::kClientReply) {
      if (link_down(e.from, e.to)) return;
      if (faults_.clogged != 0 && (e.from == faults_.clogged || e.to == faults_.clogged)) {
        if (rng_.chance(1, 3)) return;
        delay_ns += rng_.range(20, 100) * kMs;
      }
    }
    if (rng_.uniform(1000) < faults_.drop_per_mille) return;
    if (rng_.uniform(1000) < faults_.long_delay_per_mille) delay_ns += rng_.range(10, 60) * kMs;
    // Client connections are streams: never duplicated (a duplicate request would run twice).
    const bool peer_message = e.kind == MsgKind::kRaft || e.kind == MsgKind::kEventual;
    // Snapshots are often delivered twice, the copy late, so an install races the appends that
    // follow it.
    const bool late_snapshot_copy = e.kind == MsgKind::kRaft && e.raft.type == raft::MessageType::kSnapshot &&
                                    rng_.chance(1, 3);
    if (peer_message && (late_snapshot_copy || rng_.uniform(1000) < faults_.dup_per_mille)) {
      Envelope copy = e;
      copy.deliver_ns = now_ns_ + delay_ns + rng_.range(0, late_snapshot_copy ? 50 * kMs : 20 * kMs);
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

void World::reply(const ClientRequest& req, Outcome outcome, std::optional<int64_t> result, raft::NodeId hint,
                  raft::NodeId from) {
  Envelope e;
  e.kind = MsgKind::kClientReply;
  e.from = from;
  e.reply = ClientReply{req.uid, req.client, outcome, result, hint};
  if (outcome == Outcome::kUnknown && req.op != OpKind::kRead) ++report_.writes_unknown;
  send(std::move(e), now_ns_ < fault_end_ns_);
}

// ---------------------------------------------------------------------------------------------
// The state machine.

void World::apply_entry(Node& n, Replica& r, const raft::Entry& e) {
  // A restart may hand out again entries its snapshot already holds (its durable commit index
  // can trail the snapshot); the state machine must not apply them twice.
  if (e.index <= r.snapshot_index) return;
  if (!checker_.observe_apply(r.group, n.id, e)) return;
  TALLY_ASSERT(e.index > r.applied || raft_bugs_.apply_before_commit);
  r.applied = std::max(r.applied, e.index);
  std::optional<ClientRequest> req;
  if (e.type == raft::EntryType::kNormal && !e.data.empty()) {
    req = decode_op(e.data);
    TALLY_ASSERT(req.has_value());
  }
  // A write this replica proposed at this index that is not the entry applied here lost its
  // place in the log: it can never take effect (one proposal, one index).
  auto at = r.write_at.find(e.index);
  if (at != r.write_at.end()) {
    const uint64_t uid = at->second;
    r.write_at.erase(at);
    auto p = r.pending_writes.find(uid);
    if (p != r.pending_writes.end() && (!req || req->uid != uid)) {
      reply(p->second.request, Outcome::kFail, std::nullopt, r.rg->leader(), n.id);
      r.pending_writes.erase(p);
    }
  }
  if (!req) return;
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
  first_apply_.emplace(req->uid, FirstApply{now_ns_, result});
  auto p = r.pending_writes.find(req->uid);
  if (p != r.pending_writes.end()) {
    reply(p->second.request, Outcome::kOk, result, raft::kNoNode, n.id);
    r.pending_writes.erase(p);
  }
}

void World::apply_conf_change(Node& n, Replica& r, const raft::ConfChange& cc) {
  // Learners in the group now, for the report.
  const raft::NodeStatus st = r.rg->status();
  report_.learners_max = std::max(report_.learners_max, static_cast<uint32_t>(st.conf.learners.size()));
  if (cc.type != raft::ConfChangeType::kRemoveNode) return;
  // The removal is committed: the removed replica shuts down for good, like a decommissioned
  // member, whether or not it applied the change itself.
  Group& group = groups_[r.group];
  auto it = std::find(group.members.begin(), group.members.end(), cc.node);
  if (it == group.members.end()) return;
  const uint32_t g = r.group;
  group.members.erase(it);
  group.departed.push_back(cc.node);
  ++report_.leaves;
  // Shut down once the current input is handled: the replica may be the one applying this.
  to_drop_.emplace_back(cc.node, g);
  (void)n;
}

void World::drop_departed() {
  // A replica whose Ready waits on a failed log goes once the log gave it back.
  std::vector<std::pair<raft::NodeId, uint32_t>> later;
  for (const auto& [id, g] : to_drop_) {
    const Replica* r = replica(id, g);
    if (r != nullptr && r->rg != nullptr && r->rg->persisting()) {
      later.emplace_back(id, g);
      continue;
    }
    drop_replica(node(id), g);
  }
  to_drop_ = std::move(later);
}

void World::restore_snapshot(Node& n, Replica& r, const raft::Snapshot& snap) {
  TALLY_ASSERT(!snap.empty());
  r.kv = decode_kv(snap.data);
  r.applied = std::max(r.applied, snap.metadata.index);
  r.snapshot_index = std::max(r.snapshot_index, snap.metadata.index);
  TALLY_ASSERT(r.applied >= snap.metadata.index);
  // Writes proposed at or below the snapshot: the image does not say whether they are in it.
  for (auto at = r.write_at.begin(); at != r.write_at.end() && at->first <= snap.metadata.index;) {
    auto p = r.pending_writes.find(at->second);
    if (p != r.pending_writes.end()) {
      reply(p->second.request, Outcome::kUnknown, std::nullopt, raft::kNoNode, n.id);
      r.pending_writes.erase(p);
    }
    at = r.write_at.erase(at);
  }
}

void World::maybe_compact(Node& n, Replica& r) {
  if (compact_every_entries_ == 0) return;
  const raft::MemoryStorage& log = r.rg->storage();
  const raft::Index first = log.first_index();
  if (r.applied < first + compact_every_entries_ || r.applied > log.last_index() || r.applied > r.rg->applied()) {
    return;
  }
  // Keep a few entries behind the snapshot, so followers just behind it still get appends.
  const raft::Index compact_to = r.applied - rng_.uniform(4);
  TALLY_ASSERT(compact_to >= first);
  Status st = r.rg->compact(r.applied, encode_kv(r.kv), compact_to);
  TALLY_ASSERT_MSG(st.is_ok(), st.to_string().c_str());
  // The snapshot is durable beside the log; the log may then drop the records it covers.
  Result<raft::Snapshot> snap = log.snapshot();
  TALLY_ASSERT(snap.is_ok() && snap->metadata.index == r.applied);
  n.disk->save_snapshot(r.group, std::move(snap).value());
  n.disk->release(r.group, r.applied);
}

void World::serve_reads(Node& n, Replica& r) {
  auto& waiting = r.reads_waiting_apply;
  for (size_t i = 0; i < waiting.size();) {
    if (waiting[i].first > r.applied) {
      ++i;
      continue;
    }
    const ClientRequest& req = waiting[i].second.request;
    auto it = r.kv.find(req.key);
    const raft::Term term = r.rg->term();
    if (r.rg->role() == raft::Role::kLeader && checker_.max_leader_term(r.group) > term) {
      ++report_.stale_leader_reads_ok;
    }
    reply(req, Outcome::kOk, it == r.kv.end() ? std::nullopt : std::optional<int64_t>(it->second), raft::kNoNode,
          n.id);
    waiting.erase(waiting.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void World::note_stale_leader(const Replica& r) {
  // A node that believes it leads in term T while the group already elected a leader in a
  // later term: the window in which stale reads and lost writes would come from.
  if (r.rg->role() != raft::Role::kLeader || checker_.max_leader_term(r.group) <= r.rg->term()) return;
  ++report_.stale_leader_requests;
}

// ---------------------------------------------------------------------------------------------
// Inputs.

void World::deliver(Envelope& e) {
  TALLY_ASSERT(e.deliver_ns <= now_ns_);
  if (e.kind == MsgKind::kClientReply) {
    ++report_.messages;
    Client& c = clients_[e.reply.client];
    if (c.busy && c.uid == e.reply.uid) {
      complete(c, e.reply);
    } else {
      late_reply(e.reply);
    }
    return;
  }
  Node& n = node(e.to);
  if (!n.up) return;
  if (paused(n)) {
    // A frozen process: the message waits in its socket buffer.
    if (n.held.size() < kHeldMessagesMax) n.held.push_back(std::move(e));
    return;
  }
  ++report_.messages;
  if (e.kind == MsgKind::kEventual) {
    if (link_down(e.from, e.to)) return;
    if (!n.eventual->receive(*e.eventual)) ++report_.hlc_rejected;
    return;
  }
  Replica* r = replica(n.id, e.group);
  if (r == nullptr || r->rg == nullptr) {
    // Not hosted here, or a replica kept down: the node refuses.
    if (e.kind == MsgKind::kClientRequest) reply(e.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
    return;
  }
  if (e.kind == MsgKind::kRaft) {
    if (link_down(e.from, e.to)) return;  // a partition that began while it was in flight
    (void)r->rg->step(e.raft);            // stale or misdirected messages are not errors
    after_input(n, *r);
    return;
  }
  handle_client_request(n, e.request, e.group);
}

void World::handle_client_request(Node& n, const ClientRequest& req, uint32_t group) {
  Replica& r = *replica(n.id, group);
  note_stale_leader(r);
  if (r.pending_reads.size() + r.pending_writes.size() >= kPendingPerReplicaMax) {
    reply(req, Outcome::kFail, std::nullopt, r.rg->leader(), n.id);
    return;
  }
  const std::string context = std::to_string(req.uid);
  Status st = req.op == OpKind::kRead ? r.rg->read_index(context) : r.rg->propose(encode_op(req));
  if (!st.is_ok()) {
    reply(req, Outcome::kFail, std::nullopt, r.rg->leader(), n.id);  // refused: it never entered the log
    after_input(n, r);
    return;
  }
  const bool leader = r.rg->role() == raft::Role::kLeader;
  if (req.op == OpKind::kRead) {
    r.pending_reads.emplace(context, Accepted{req, now_ns_});
  } else {
    r.pending_writes.emplace(req.uid, Accepted{req, now_ns_, r.rg->last_index(), r.rg->term()});
    uint64_t& at = r.write_at[r.rg->last_index()];
    // An earlier proposal of ours at this index was cut from our log; another node may still
    // hold it and a later leader commit it, so its fate is unknown.
    auto earlier = r.pending_writes.find(at);
    if (at != 0 && earlier != r.pending_writes.end()) {
      reply(earlier->second.request, Outcome::kUnknown, std::nullopt, raft::kNoNode, n.id);
      r.pending_writes.erase(earlier);
    }
    at = req.uid;
  }
  after_input(n, r);
  // Answered in the Ready that followed the call: no heartbeat round, so from the lease.
  if (req.op == OpKind::kRead && leader && lease_ && n.up && r.pending_reads.count(context) == 0) {
    ++report_.lease_reads;
  }
}

void World::run_tallies(Node& n) {
  TallyInFlight& t = *n.tally;
  if (t.in_flight && now_ns_ >= t.apply_at_ns) {
    // The tally op's result comes back: every group whose leader kept its term and voters commits.
    std::vector<uint64_t> commit(t.batch.groups());
    raft::quorum::committed_indexes(t.batch.match(), t.batch.voter_mask(), commit);
    t.in_flight = false;
    t.batch.apply(commit);
    for (auto& [g, r] : n.replicas) {
      if (r.rg != nullptr) r.rg->process();
    }
    settle(n);
    if (!n.up || violated()) return;
  }
  if (t.in_flight) return;
  std::vector<raft::RawNode*> leaders;
  for (auto& [g, r] : n.replicas) {
    if (r.rg != nullptr && r.rg->is_leader()) leaders.push_back(&r.rg->raw());
  }
  if (t.batch.build(leaders) == 0) return;
  t.in_flight = true;
  // Usually back within a few milliseconds; sometimes a queue holds it long enough for the
  // leader to change terms or voters meanwhile.
  t.apply_at_ns = now_ns_ + (rng_.chance(1, 8) ? rng_.range(20, 200) : rng_.range(0, 3)) * kMs;
}

void World::run_forced_campaigns() {
  // A failure detector in the shell suspects the leader and starts an election. With leases on,
  // the core refuses while the node may still be holding up a lease.
  for (size_t i = 0; i < forced_.size();) {
    const ForcedCampaign f = forced_[i];
    if (f.at_ns > now_ns_) {
      ++i;
      continue;
    }
    forced_[i] = forced_.back();
    forced_.pop_back();
    Node& n = node(f.node);
    Replica* r = replica(f.node, f.group);
    // Not while this node is already campaigning: a detector waits for the election it started.
    if (!n.up || paused(n) || r == nullptr || r->rg == nullptr || r->rg->role() != raft::Role::kFollower) continue;
    const raft::NodeId lead = newest_leader(f.group);
    if (f.suspect != raft::kNoNode && lead != raft::kNoNode && lead != f.suspect) continue;
    (void)r->rg->campaign();  // refused while the node may hold up a lease
    after_input(n, *r);
    if (violated()) return;
  }
}

void World::tick_nodes() {
  TALLY_ASSERT(!nodes_.empty());
  for (Node& n : nodes_) {
    if (!n.up) {
      if (now_ns_ >= n.restart_at_ns) restart(n);
      continue;
    }
    if (paused(n)) {
      if (now_ns_ < n.paused_until_ns) continue;
      resume(n);
      if (violated()) return;
      if (!n.up) continue;
    }
    if (n.crash_at_ns != 0 && now_ns_ >= n.crash_at_ns) {
      crash(n);
      continue;
    }
    if (n.disk->failed()) {
      // The shard's tick in tallyd: a failed log rewrites what was not known durable, then the
      // groups whose Readys it held go on.
      n.disk->retry();
      settle(n);
      if (violated()) return;
      if (!n.up) continue;
    }
    const uint64_t mono = local_mono_ns(n.id);
    for (uint32_t t = 0; t < kTicksPerStepMax && n.up && mono >= n.next_tick_mono_ns; ++t) {
      n.next_tick_mono_ns += kTickMs * kMs;
      // Every group ticks, then their Readys share one group commit.
      for (auto& [g, r] : n.replicas) {
        if (r.rg == nullptr) continue;
        r.rg->tick();
        r.rg->process();
      }
      settle(n);
      if (violated()) return;
    }
    if (!n.up) continue;
    if (mono >= n.next_tick_mono_ns) n.next_tick_mono_ns = mono + kTickMs * kMs;
    for (auto& [g, r] : n.replicas) {
      if (r.rg != nullptr) expire_writes(n, r);
    }
    if (async_tally_) run_tallies(n);
    if (violated()) return;
  }
}

}  // namespace tally::sim
