// The node shell: the Ready contract, the replicated key-value state machine, message delivery,
// the asynchronous tally, and the answers a replica owes every request it accepted.
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
  c.lease_read.enabled = lease_;
  c.lease_read.tick_interval_ms = kTickMs;
  c.lease_read.clock_drift_max_ms = lease_drift_max_ms_;
  c.lease_read.clock = node(id).clock.get();
  c.bugs = raft_bugs_;
  return c;
}

bool World::start_replica(Node& n, uint32_t group) {
  Replica& r = n.replicas[group];
  r.group = group;
  if (!r.disk) r.disk = std::make_unique<MemoryDisk>();
  r.kv.clear();
  r.applied = 0;
  r.snapshot_index = 0;
  r.pending_reads.clear();
  r.pending_writes.clear();
  r.write_at.clear();
  r.reads_waiting_apply.clear();
  Result<raft::Snapshot> snap = r.disk->storage().snapshot();
  if (snap.is_ok() && !snap->empty()) restore_snapshot(n, r, *snap);
  raft::Config config = raft_config(n.id, group);
  // A replica that joined later knows no membership: it learns the group from the log (or its
  // disk, once it applied a change or installed a snapshot).
  if (r.joined) {
    config.voters.clear();
    config.learners.clear();
  }
  config.applied = r.applied;  // the snapshot's index: the state machine already holds those
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::create(config, &r.disk->storage());
  if (!raw.is_ok()) {
    // What survived the crash is inconsistent (a commit index past the stored log, say): the
    // node cannot come back. Only a protocol bug can leave a disk like that.
    violate("durable state", "group " + std::to_string(group) + " node " + std::to_string(n.id) +
                                 " cannot restart from its disk: " + raw.status().to_string());
    return false;
  }
  r.raft = std::move(raw).value();
  return true;
}

void World::drop_replica(Node& n, uint32_t group) {
  auto it = n.replicas.find(group);
  if (it == n.replicas.end()) return;
  if (n.up) abandon_requests(n, it->second);
  n.tally->in_flight = false;  // its batch may point at this replica
  n.replicas.erase(it);
  checker_.forget(group, n.id);
}

void World::abandon_requests(Node& n, Replica& r) {
  // The replica shuts down: what it accepted may or may not take effect elsewhere.
  for (auto& [uid, a] : r.pending_writes) reply(a.request, Outcome::kUnknown, std::nullopt, raft::kNoNode, n.id);
  for (auto& [ctx, a] : r.pending_reads) reply(a.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
  for (auto& [index, a] : r.reads_waiting_apply) reply(a.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
  r.pending_writes.clear();
  r.write_at.clear();
  r.pending_reads.clear();
  r.reads_waiting_apply.clear();
}

void World::expire_writes(Node& n, Replica& r) {
  // A write whose entry is no longer in our log was cut by a later leader. Only its index being
  // applied here decides its fate; if the group's log never gets there, give up: unknown.
  for (auto it = r.pending_writes.begin(); it != r.pending_writes.end();) {
    const Accepted& a = it->second;
    Result<raft::Term> t = r.disk->storage().term(a.index);
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
  n.crash_mid_ready = false;
  n.paused_until_ns = 0;
  n.held.clear();
  n.tally->in_flight = false;
  ++report_.crashes;
  for (auto& [g, r] : n.replicas) {
    r.raft.reset();
    r.disk->crash(rng_);
    checker_.forget(g, n.id);
  }
  n.crash_at_ns = 0;
  // Often back almost at once (faster than a lease), so a lost vote or a torn tail meets the
  // same election again; otherwise after up to 300 ms (slower than a lease).
  n.restart_at_ns = now_ns_ + (rng_.chance(1, 2) ? rng_.range(1, 15) : rng_.range(20, 300)) * kMs;
}

void World::restart(Node& n) {
  TALLY_ASSERT(!n.up);
  n.up = true;
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

void World::after_input(Node& n, Replica& r) {
  handle_ready(n, r);
  if (!n.up || violated()) return;
  const raft::Role role = r.raft->role();
  const raft::Term term = r.raft->term();
  checker_.observe_role(r.group, n.id, role, term, r.disk->storage());
  // Targeted fault: a fresh leader sometimes dies before its first entries replicate, which
  // leaves entries of several terms on minorities (the Figure 8 situation).
  raft::Term& led = n.led_term[r.group];
  if (role == raft::Role::kLeader && term > led) {
    led = term;
    if (buggify() && n.crash_at_ns == 0 && rng_.chance(1, 4)) {
      n.crash_at_ns = now_ns_ + rng_.range(1, 40) * kMs;
    }
  }
}

void World::handle_ready(Node& n, Replica& r) {
  for (uint32_t cycle = 0; cycle < kReadyCyclesMax && n.up && r.raft->has_ready(); ++cycle) {
    raft::Ready rd = r.raft->ready();
    if (!checker_.observe_ready(r.group, n.id, r.raft->role(), r.raft->term(), rd, r.disk->storage())) return;
    if (r.raft->role() == raft::Role::kLeader &&
        !checker_.check_one_conf_change(r.group, n.id, rd, r.raft->applied_index(), r.disk->storage())) {
      return;
    }
    const raft::Index commit_before = r.disk->storage().initial_state().hard_state.commit;
    // 1. Persist: snapshot, entries, hard state; then sync when asked.
    Status st = r.disk->write(rd.snapshot, rd.entries, rd.hard_state);
    TALLY_ASSERT_MSG(st.is_ok(), st.to_string().c_str());
    if (n.crash_mid_ready && (rd.must_sync || !rd.entries.empty())) {
      crash(n);  // written but not synced, nothing sent: the torn-tail case
      return;
    }
    // Targeted fault: a node dies in the Ready that makes it leader, before its first entry is
    // synced or sent; the torn tail may keep that entry, stranding it on this node alone.
    if (rd.soft_state && rd.soft_state->role == raft::Role::kLeader && buggify() &&
        rng_.chance(1, 6)) {
      crash(n);
      return;
    }
    if (rd.hard_state && rd.hard_state->commit > commit_before && r.raft->role() == raft::Role::kLeader) {
      std::vector<std::pair<raft::NodeId, const raft::Storage*>> logs;
      for (raft::NodeId v : r.raft->status().conf.voters) {
        const Replica* vr = replica(v, r.group);
        if (vr != nullptr) logs.emplace_back(v, &vr->disk->storage());
      }
      if (!checker_.check_commit_durable(r.group, n.id, rd.hard_state->commit, logs)) return;
    }
    // Targeted fault: a leader dies the moment it decides a commit, before telling anyone, so
    // the next leader must already hold what it committed.
    if (rd.hard_state && rd.hard_state->commit > commit_before && r.raft->role() == raft::Role::kLeader &&
        buggify() && rng_.chance(1, 12)) {
      if (rd.must_sync) r.disk->sync();
      crash(n);
      return;
    }
    if (rd.must_sync) r.disk->sync();
    if (rd.snapshot) {
      ++report_.snapshots_installed;
      restore_snapshot(n, r, *rd.snapshot);
    }
    // 2. Send.
    for (const raft::Message& m : rd.messages) {
      send_raft(m, r.group);
      // Targeted fault: crash right after granting a vote, so a vote that was not durable
      // would be forgotten while the election is still running.
      if (m.type == raft::MessageType::kVoteResp && !m.reject && buggify() && n.crash_at_ns == 0 &&
          rng_.chance(1, 4)) {
        n.crash_at_ns = now_ns_ + rng_.range(0, 2) * kMs;
      }
    }
    // 3. Apply committed entries, then serve reads whose index is applied and fail failed reads.
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
    for (const std::string& context : rd.failed_reads) {
      auto it = r.pending_reads.find(context);
      if (it == r.pending_reads.end()) continue;
      ++report_.failed_reads;
      reply(it->second.request, Outcome::kFail, std::nullopt, r.raft->leader(), n.id);  // never ran: no effect
      r.pending_reads.erase(it);
    }
    serve_reads(n, r);
    // 4. Acknowledge.
    r.raft->advance();
    if (r.disk->unsynced() == 0) maybe_compact(r);
  }
  TALLY_ASSERT_MSG(!n.up || !r.raft->has_ready() || violated(), "Ready loop did not settle");
}

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
      reply(p->second.request, Outcome::kFail, std::nullopt, r.raft->leader(), n.id);
      r.pending_writes.erase(p);
    }
  }
  if (e.type == raft::EntryType::kConfChange) {
    Result<raft::ConfChange> cc = raft::ConfChange::decode(e.data);
    TALLY_ASSERT(cc.is_ok());
    r.disk->write_conf(r.raft->apply_conf_change(*cc));
    apply_conf_change(n, r, *cc);
    return;
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
  const raft::NodeStatus st = r.raft->status();
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
  for (const auto& [id, g] : to_drop_) drop_replica(node(id), g);
  to_drop_.clear();
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

void World::maybe_compact(Replica& r) {
  if (compact_every_entries_ == 0) return;
  const raft::Index first = r.disk->storage().first_index();
  if (r.applied < first + compact_every_entries_ || r.applied > r.disk->storage().last_index()) return;
  // Keep a few entries behind the snapshot, so followers just behind it still get appends.
  const raft::Index compact_to = r.applied - rng_.uniform(4);
  TALLY_ASSERT(compact_to >= first);
  Status st = r.disk->snapshot_and_compact(r.applied, r.raft->status().conf, encode_kv(r.kv), compact_to);
  TALLY_ASSERT_MSG(st.is_ok(), st.to_string().c_str());
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
    const raft::Term term = r.raft->term();
    if (r.raft->role() == raft::Role::kLeader && checker_.max_leader_term(r.group) > term) {
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
  if (r.raft->role() != raft::Role::kLeader || checker_.max_leader_term(r.group) <= r.raft->term()) return;
  ++report_.stale_leader_requests;
}

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
  if (r == nullptr) {
    if (e.kind == MsgKind::kClientRequest) reply(e.request, Outcome::kFail, std::nullopt, raft::kNoNode, n.id);
    return;
  }
  if (e.kind == MsgKind::kRaft) {
    if (link_down(e.from, e.to)) return;  // a partition that began while it was in flight
    (void)r->raft->step(e.raft);                // stale or misdirected messages are not errors
    after_input(n, *r);
    return;
  }
  handle_client_request(n, e.request, e.group);
}

void World::handle_client_request(Node& n, const ClientRequest& req, uint32_t group) {
  Replica& r = *replica(n.id, group);
  note_stale_leader(r);
  if (r.pending_reads.size() + r.pending_writes.size() >= kPendingPerReplicaMax) {
    reply(req, Outcome::kFail, std::nullopt, r.raft->leader(), n.id);
    return;
  }
  const std::string context = std::to_string(req.uid);
  Status st = req.op == OpKind::kRead ? r.raft->read_index(context) : r.raft->propose(encode_op(req));
  if (!st.is_ok()) {
    reply(req, Outcome::kFail, std::nullopt, r.raft->leader(), n.id);  // refused: it never entered the log
    after_input(n, r);
    return;
  }
  const bool leader = r.raft->role() == raft::Role::kLeader;
  if (req.op == OpKind::kRead) {
    r.pending_reads.emplace(context, Accepted{req, now_ns_});
  } else {
    r.pending_writes.emplace(req.uid, Accepted{req, now_ns_, r.raft->last_index(), r.raft->term()});
    uint64_t& at = r.write_at[r.raft->last_index()];
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
      after_input(n, r);
      if (!n.up || violated()) return;
    }
  }
  if (t.in_flight) return;
  std::vector<raft::RawNode*> leaders;
  for (auto& [g, r] : n.replicas) {
    if (r.raft->is_leader()) leaders.push_back(r.raft.get());
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
    if (!n.up || paused(n) || r == nullptr || r->raft->role() != raft::Role::kFollower) continue;
    const raft::NodeId lead = newest_leader(f.group);
    if (f.suspect != raft::kNoNode && lead != raft::kNoNode && lead != f.suspect) continue;
    (void)r->raft->campaign();  // refused while the node may hold up a lease
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
    const uint64_t mono = local_mono_ns(n.id);
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
    for (auto& [g, r] : n.replicas) {
      if (n.up) expire_writes(n, r);
    }
    if (async_tally_ && n.up) run_tallies(n);
    if (violated()) return;
  }
}

}  // namespace tally::sim
