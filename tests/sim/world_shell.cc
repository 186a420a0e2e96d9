// The node shell: the Ready contract, the replicated key-value state machine, message delivery.
#include "tests/sim/world.h"

namespace tally::sim {

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
  r.snapshot_index = 0;
  r.pending_reads.clear();
  r.pending_writes.clear();
  r.reads_waiting_apply.clear();
  Result<raft::Snapshot> snap = r.disk.live().snapshot();
  if (snap.is_ok() && !snap->empty()) restore_snapshot(r, *snap);
  raft::Config config = raft_config(n.id, group);
  config.applied = r.applied;  // the snapshot's index: the state machine already holds those
  Result<std::unique_ptr<raft::RawNode>> raw = raft::RawNode::create(config, &r.disk.live());
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

void World::send(Envelope e, bool faulty_link) {
  TALLY_ASSERT(e.kind == MsgKind::kClientReply || (e.to >= 1 && e.to <= nodes_.size()));
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
  for (uint32_t cycle = 0; cycle < kReadyCyclesMax && n.up && r.raft->has_ready(); ++cycle) {
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
    // Targeted fault: a node dies in the Ready that makes it leader, before its first entry is
    // synced or sent; the torn tail may keep that entry, stranding it on this node alone.
    if (rd.soft_state && rd.soft_state->role == raft::Role::kLeader && now_ns_ < fault_end_ns_ &&
        rng_.chance(1, 6)) {
      crash(n);
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
    if (rd.snapshot) restore_snapshot(r, *rd.snapshot);
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
    for (const std::string& context : rd.failed_reads) {
      auto it = r.pending_reads.find(context);
      if (it == r.pending_reads.end()) continue;
      reply(it->second, false, std::nullopt, r.raft->leader(), n.id);  // a read that never ran: no effect
      r.pending_reads.erase(it);
    }
    serve_reads(n, r);
    // 4. Acknowledge.
    r.raft->advance();
    if (r.disk.unsynced() == 0) maybe_compact(r);
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

void World::restore_snapshot(Replica& r, const raft::Snapshot& snap) {
  TALLY_ASSERT(!snap.empty());
  r.kv = decode_kv(snap.data);
  r.applied = std::max(r.applied, snap.metadata.index);
  r.snapshot_index = std::max(r.snapshot_index, snap.metadata.index);
  TALLY_ASSERT(r.applied >= snap.metadata.index);
}

void World::maybe_compact(Replica& r) {
  if (compact_every_entries_ == 0) return;
  const raft::Index first = r.disk.live().first_index();
  if (r.applied < first + compact_every_entries_ || r.applied > r.disk.live().last_index()) return;
  // Keep a few entries behind the snapshot, so followers just behind it still get appends.
  const raft::Index compact_to = r.applied - rng_.uniform(4);
  TALLY_ASSERT(compact_to >= first);
  Status st = r.disk.snapshot_and_compact(r.applied, r.raft->status().conf, encode_kv(r.kv), compact_to);
  TALLY_ASSERT_MSG(st.is_ok(), st.to_string().c_str());
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
  TALLY_ASSERT(e.deliver_ns <= now_ns_);
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
  TALLY_ASSERT(!nodes_.empty());
  for (Node& n : nodes_) {
    if (!n.up) {
      if (now_ns_ >= n.restart_at_ns) restart(n);
      continue;
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
  }
}

}  // namespace tally::sim
