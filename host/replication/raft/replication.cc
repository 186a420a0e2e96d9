// Log replication: the leader's appends, snapshots, heartbeats and flow control, the commit rule
// through the tally seam, and the follower's handling of appends, heartbeats and snapshots.
#include <algorithm>

#include "host/replication/raft/core.h"
#include "host/replication/raft/mutant.h"

namespace tally::raft {

// ---------------------------------------------------------------------------------------------
// Leader.

FlowLimits Core::flow_limits() const {
  return FlowLimits{config_.max_inflight_msgs, config_.max_inflight_entries, config_.max_inflight_bytes};
}

bool Core::send_append(NodeId to, bool send_if_empty) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(to);
  TALLY_ASSERT(to != id_ && pr.next > pr.match);
  if (pr.paused(flow_limits())) return false;
  const Index prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  // A message carries no more entries than the follower's entry window has room for.
  const uint64_t room = config_.max_inflight_entries -
                        (pr.state == ProgressState::kReplicate ? pr.inflights.entries() : 0);
  TALLY_ASSERT(room > 0);
  const Index hi = std::min<Index>(log_.last_index() + 1, pr.next + room);
  auto ents = log_.entries(std::min(pr.next, hi), hi, config_.max_size_per_msg);
  if (!prev_term.is_ok() || !ents.is_ok()) {
    // The follower needs entries we compacted: send the snapshot instead.
    TALLY_ASSERT(prev_term.status().code() == Code::kOutOfRange || ents.status().code() == Code::kOutOfRange);
    auto snap = storage_->snapshot();
    if (!snap.is_ok() || snap->empty()) return false;  // not ready yet; retried on the next heartbeat
    Message m;
    m.type = MessageType::kSnapshot;
    m.to = to;
    m.snapshot = std::move(snap.value());
    pr.become_snapshot(m.snapshot.metadata.index);
    send(std::move(m));
    return true;
  }
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = prev_term.value();
  m.commit = log_.committed();
  m.entries = std::move(ents.value());
  if (!m.entries.empty() && pr.state == ProgressState::kReplicate) {
    // Optimistically assume delivery; a rejection or a heartbeat resets the window.
    uint64_t bytes = 0;
    for (const Entry& e : m.entries) bytes += entry_bytes(e);
    pr.optimistic_update(m.entries.back().index, m.entries.size(), bytes);
  }
  if (pr.state == ProgressState::kProbe) pr.probe_sent = true;
  send(std::move(m));
  return true;
}

void Core::bcast_append() {
  for (auto& [n, pr] : prs_) {
    if (n == id_ || !send_append(n, true)) continue;
    // Streaming followers get as many messages as their window allows.
    for (uint32_t k = 0; k < config_.max_inflight_msgs && pr.state == ProgressState::kReplicate; ++k) {
      if (!send_append(n, false)) break;
    }
  }
}

void Core::bcast_heartbeat() {
  TALLY_ASSERT(role_ == Role::kLeader);
  const uint64_t round = read_only_.next_round(config_.lease_read.enabled ? lease_clock_ns() : 0);
  round_requested_ = false;  // this round covers every read waiting for one
  for (auto& [n, pr] : prs_) {
    if (n == id_) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = n;
    // Never tell a follower to commit past what it is known to hold.
    m.commit = TALLY_MUTANT(heartbeat_commit_uncapped) ? log_.committed() : std::min(pr.match, log_.committed());
    m.round = round;
    send(std::move(m));
  }
}

void Core::become_probe(NodeId peer) { prs_.at(peer).become_probe(); }

void Core::handle_append_resp(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(m.from);
  pr.recent_active = true;
  if (m.reject) {
    // Stale rejections (for an index we no longer probe) are ignored.
    if (pr.state == ProgressState::kReplicate) {
      if (m.index <= pr.match) return;
      pr.become_probe();
    } else if (pr.state == ProgressState::kProbe) {
      if (pr.next == 0 || m.index != pr.next - 1) return;
      // Skip our own entries whose term exceeds the follower's term at its hint.
      Index probe = m.reject_hint;
      if (m.log_term > 0 && probe <= log_.last_index()) probe = log_.find_conflict_by_term(probe, m.log_term);
      pr.next = std::max(pr.match + 1, std::min(m.index, probe + 1));
      pr.probe_sent = false;
    } else {
      return;
    }
    TALLY_ASSERT(pr.next > pr.match);
    send_append(m.from, true);
    return;
  }
  const bool updated = m.index > pr.match;
  if (updated) pr.match = m.index;
  if (pr.next < m.index + 1) pr.next = m.index + 1;
  pr.inflights.free_to(m.index);
  if (pr.state == ProgressState::kProbe) {
    pr.become_replicate();
  } else if (pr.state == ProgressState::kSnapshot && pr.match >= pr.pending_snapshot) {
    pr.become_replicate();
  }
  if (updated) maybe_commit();
  // Keep streaming while the window allows.
  for (uint32_t k = 0; k < config_.max_inflight_msgs && pr.state == ProgressState::kReplicate; ++k) {
    if (!send_append(m.from, false)) break;
  }
  maybe_finish_transfer(m.from);
}

void Core::handle_heartbeat_resp(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(m.from);
  pr.recent_active = true;
  pr.probe_sent = false;
  // A full window with a live follower means some appends were lost: free the oldest slot.
  if (pr.state == ProgressState::kReplicate && pr.paused(flow_limits())) pr.inflights.free_first();
  if (pr.state == ProgressState::kSnapshot && ++pr.snapshot_wait_heartbeats > kSnapshotWaitHeartbeatsMax) {
    pr.become_probe();  // the snapshot was lost: probe again, which re-sends it if still needed
  }
  read_only_.ack(m.from, m.round);
  confirm_rounds();
  if (pr.match < log_.last_index()) send_append(m.from, true);
}

bool Core::committed_in_term() const { return log_.term_or_zero(log_.committed()) == term_; }

void Core::append_entries(std::vector<Entry> ents) {
  TALLY_ASSERT(role_ == Role::kLeader);
  log_.append(ents);
  prs_.at(id_).match = own_match();
  prs_.at(id_).next = log_.last_index() + 1;
  maybe_commit();
  pending_bcast_ = true;  // sent once per Ready: proposals between two Readys share one append
}

TallyInput Core::tally_input() const {
  TALLY_ASSERT(role_ == Role::kLeader);
  TallyInput in;
  uint32_t slot = 0;
  for (auto& [n, pr] : prs_) {
    TALLY_ASSERT(slot < kernels::kTallyReplicasMax);
    in.match[slot] = n == id_ ? own_match() : pr.match;
    ++slot;
  }
  in.voter_mask = voter_mask();
  if (TALLY_MUTANT(learners_in_quorum)) in.voter_mask = (1u << slot) - 1;
  in.term = term_;
  in.conf_version = conf_version_;
  return in;
}

void Core::maybe_commit() {
  if (role_ != Role::kLeader) return;
  if (config_.external_tally) {
    tally_dirty_ = true;
    return;
  }
  commit_quorum_index(quorum::committed_index(tally_input()));
}

bool Core::commit_to_quorum_index(const TallyInput& input, Index quorum_index) {
  if (role_ != Role::kLeader) return false;
  // A tally that ran while this node lost and regained leadership, or while the voters changed,
  // counted replicas that may not hold this term's entries, or voters that no longer form a
  // majority: drop it; the next tally starts from fresh input.
  if ((input.term != term_ || input.conf_version != conf_version_) && !TALLY_MUTANT(stale_tally_result)) return false;
  return commit_quorum_index(quorum_index);
}

bool Core::commit_quorum_index(Index quorum_index) {
  if (role_ != Role::kLeader || quorum_index <= log_.committed()) return false;
  TALLY_ASSERT(quorum_index <= log_.last_index());
  // Figure 8: a leader counts replicas only of entries of its own term; earlier entries commit
  // with them. The planted bug counts replicas of any entry.
  if (log_.term_or_zero(quorum_index) != term_ && !config_.bugs.count_prior_term_replicas) return false;
  const Index before = log_.committed();
  log_.commit_to(quorum_index);
  TALLY_ASSERT(log_.committed() > before);
  pending_bcast_ = true;  // followers learn the new commit index
  return true;
}

// ---------------------------------------------------------------------------------------------
// Follower.

void Core::handle_append(const Message& m) {
  TALLY_ASSERT(m.term == term_ && lead_ == m.from);
  TALLY_ASSERT(role_ == Role::kFollower);
  note_leader_contact();
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is already known to match.
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  auto last_new = log_.maybe_append(m.index, m.log_term, m.commit, m.entries,
                                    !config_.bugs.accept_mismatched_prev_term);
  if (last_new) {
    r.index = *last_new;
  } else {
    // Point the leader past every entry of ours whose term exceeds the leader's term at m.index:
    // none of them can match, so it can skip them all in one round trip.
    r.index = m.index;
    r.reject = true;
    r.reject_hint = log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
    r.log_term = log_.term_or_zero(r.reject_hint);
  }
  send(std::move(r));
}

void Core::handle_heartbeat(const Message& m) {
  TALLY_ASSERT(m.term == term_ && lead_ == m.from);
  note_leader_contact();
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message r;
  r.type = MessageType::kHeartbeatResp;
  r.to = m.from;
  r.round = m.round;
  send(std::move(r));
}

void Core::handle_snapshot(const Message& m) {
  TALLY_ASSERT(m.term == term_ && lead_ == m.from);
  note_leader_contact();
  const SnapshotMetadata& md = m.snapshot.metadata;
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  if (md.index <= log_.committed()) {
    r.index = TALLY_MUTANT(snapshot_ack_beyond) ? log_.last_index() : log_.committed();
  } else if (log_.match_term(md.index, md.term)) {
    // We already have the entry the snapshot ends at: just move the commit index forward. Reply
    // with the commit index, not our last index: entries past it may be stale, from an old term.
    log_.commit_to(md.index);
    r.index = TALLY_MUTANT(snapshot_ack_beyond) ? log_.last_index() : log_.committed();
  } else {
    log_.restore(m.snapshot);
    apply_conf_state(md.conf);
    r.index = log_.last_index();
    TALLY_ASSERT(r.index == md.index && log_.committed() == md.index);
  }
  send(std::move(r));
}

}  // namespace tally::raft
