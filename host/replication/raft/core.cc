// The Raft protocol: elections with pre-vote and check-quorum, log replication with flow control,
// the commit rule through the tally op, ReadIndex and lease reads, snapshots, membership, transfer.
#include "host/replication/raft/core.h"

#include <algorithm>

namespace tally::raft {

namespace {

void insert_sorted(std::vector<NodeId>& v, NodeId n) {
  auto it = std::lower_bound(v.begin(), v.end(), n);
  if (it == v.end() || *it != n) v.insert(it, n);
}

void erase_sorted(std::vector<NodeId>& v, NodeId n) {
  auto it = std::lower_bound(v.begin(), v.end(), n);
  if (it != v.end() && *it == n) v.erase(it);
}

bool contains(const std::vector<NodeId>& v, NodeId n) { return std::binary_search(v.begin(), v.end(), n); }

ConfState normalized(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  std::sort(voters.begin(), voters.end());
  voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
  std::sort(learners.begin(), learners.end());
  learners.erase(std::unique(learners.begin(), learners.end()), learners.end());
  return ConfState{std::move(voters), std::move(learners)};
}

// The membership after one single-server change.
ConfState conf_after_change(ConfState cs, const ConfChange& cc) {
  switch (cc.type) {
    case ConfChangeType::kAddVoter:
      erase_sorted(cs.learners, cc.node);
      insert_sorted(cs.voters, cc.node);
      break;
    case ConfChangeType::kAddLearner:
      erase_sorted(cs.voters, cc.node);
      insert_sorted(cs.learners, cc.node);
      break;
    case ConfChangeType::kRemoveNode:
      erase_sorted(cs.voters, cc.node);
      erase_sorted(cs.learners, cc.node);
      break;
  }
  return cs;
}

}  // namespace

Core::Core(const Config& config, const Storage* storage)
    : config_(config),
      storage_(storage),
      id_(config.id),
      log_(storage, storage->initial_state().hard_state.commit,
           std::min(storage->initial_state().hard_state.commit,
                    std::max(config.applied, storage->first_index() - 1)),
           !config.bugs.count_prior_term_replicas && !config.bugs.accept_mismatched_prev_term),
      rng_(config.seed != 0 ? config.seed : config.id) {
  TALLY_ASSERT(id_ != kNoNode);
  const InitialState init = storage->initial_state();
  term_ = init.hard_state.term;
  vote_ = init.hard_state.vote;
  prev_hard_state_ = init.hard_state;
  if (!init.conf.voters.empty() || !init.conf.learners.empty()) {
    apply_conf_state(init.conf);
  } else {
    apply_conf_state(normalized(config.voters, config.learners));
  }
  become_follower(term_, kNoNode);
  prev_soft_state_ = SoftState{lead_, role_};
  TALLY_ASSERT(log_.committed() <= log_.last_index());
}

// ---------------------------------------------------------------------------------------------
// Membership.

void Core::apply_conf_state(const ConfState& cs) {
  TALLY_ASSERT(cs.voters.size() + cs.learners.size() <= kernels::kTallyReplicasMax);
  conf_ = cs;
  // Keep the progress of nodes that stay; new ones start probing from the end of our log.
  std::map<NodeId, Progress> next;
  for (NodeId n : replicas()) {
    auto it = prs_.find(n);
    Progress pr = it != prs_.end() ? it->second : Progress{};
    if (it == prs_.end()) {
      pr.next = log_.last_index() + 1;
      pr.recent_active = true;  // a node just added gets one check-quorum round to show up
    }
    pr.learner = is_learner(n);
    next[n] = pr;
  }
  for (auto it = inflights_.begin(); it != inflights_.end();) {
    it = next.count(it->first) ? std::next(it) : inflights_.erase(it);
  }
  prs_ = std::move(next);
  TALLY_ASSERT(prs_.size() == conf_.voters.size() + conf_.learners.size());
}

std::vector<NodeId> Core::replicas() const {
  std::vector<NodeId> all = conf_.voters;
  all.insert(all.end(), conf_.learners.begin(), conf_.learners.end());
  std::sort(all.begin(), all.end());
  return all;
}

bool Core::is_voter(NodeId n) const { return contains(conf_.voters, n); }
bool Core::is_learner(NodeId n) const { return contains(conf_.learners, n); }
size_t Core::quorum() const { return conf_.voters.size() / 2 + 1; }
bool Core::promotable() const { return is_voter(id_); }

ConfState Core::apply_conf_change(const ConfChange& cc) {
  TALLY_ASSERT(cc.node != kNoNode);
  // Entries carry the full result; a change without one (hand-built by a shell) is applied as a delta.
  const ConfState cs = cc.conf_after.empty() ? conf_after_change(conf_, cc) : cc.conf_after;
  TALLY_ASSERT(cs.voters.size() + cs.learners.size() <= kernels::kTallyReplicasMax);
  apply_conf_state(cs);
  if (role_ == Role::kLeader) {
    if (!is_voter(id_)) {
      // A leader removed (or demoted) from the voters steps down; the others elect a new one.
      become_follower(term_, kNoNode);
    } else {
      if (lead_transferee_ != kNoNode && !is_voter(lead_transferee_)) lead_transferee_ = kNoNode;
      maybe_commit();  // the quorum changed
      pending_bcast_ = true;
    }
  }
  return conf_;
}

Status Core::propose_conf_change(const ConfChange& cc) {
  if (role_ != Role::kLeader) return Status::unavailable("not leader");
  if (lead_transferee_ != kNoNode) return Status::unavailable("leadership transfer in progress");
  if (cc.node == kNoNode) return Status::invalid("conf change names node 0");
  // Single-server changes are safe one at a time, and only once this leader has committed an
  // entry of its own term (otherwise an older leader's uncommitted change could still win).
  if (pending_conf_index_ > log_.applied()) return Status::unavailable("a membership change is pending");
  if (!committed_in_term()) return Status::unavailable("leader has not committed an entry of its term");
  const bool known = prs_.count(cc.node) != 0;
  if (cc.type != ConfChangeType::kRemoveNode && !known &&
      prs_.size() + 1 > kernels::kTallyReplicasMax) {
    return Status::exhausted("group would exceed kTallyReplicasMax replicas");
  }
  if (cc.type == ConfChangeType::kRemoveNode && is_voter(cc.node) && conf_.voters.size() == 1) {
    return Status::invalid("cannot remove the last voter");
  }
  ConfChange full = cc;
  full.conf_after = conf_after_change(conf_, cc);
  Entry e{term_, log_.last_index() + 1, EntryType::kConfChange, full.encode()};
  pending_conf_index_ = e.index;
  append_entries({std::move(e)});
  return Status::ok();
}

// ---------------------------------------------------------------------------------------------
// Roles.

void Core::reset(Term term) {
  if (term != term_) {
    TALLY_ASSERT(term > term_);
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  randomized_election_timeout_ =
      config_.election_tick + static_cast<uint32_t>(rng_.uniform(config_.election_tick));
  lead_transferee_ = kNoNode;
  timeout_now_sent_ = false;
  votes_.clear();
  inflights_.clear();
  snapshot_wait_.clear();
  acked_round_.clear();
  pending_reads_.clear();
  round_sent_ms_.clear();
  pending_conf_index_ = 0;
  for (auto& [n, pr] : prs_) {
    const bool learner = pr.learner;
    pr = Progress{};
    pr.learner = learner;
    pr.next = log_.last_index() + 1;
    if (n == id_) pr.match = log_.last_index();
  }
}

void Core::become_follower(Term term, NodeId lead) {
  reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
}

void Core::become_pre_candidate() {
  TALLY_ASSERT(role_ != Role::kLeader);
  // A pre-candidate changes neither term nor vote: a partitioned node that keeps failing pre-votes
  // does not inflate its term and disrupt the group when it comes back.
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void Core::become_candidate() {
  TALLY_ASSERT(role_ != Role::kLeader);
  const Term before = term_;
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
  TALLY_ASSERT(term_ == before + 1);
}

void Core::become_leader() {
  TALLY_ASSERT(role_ == Role::kCandidate);
  reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  for (auto& [n, pr] : prs_) pr.recent_active = true;
  // No conf change until everything before this term's no-op is applied.
  pending_conf_index_ = log_.last_index();
  // The no-op lets this leader commit (and so learn the commit point of) earlier entries: entries
  // of older terms are only ever committed indirectly, by committing one of the current term.
  append_entries({Entry{term_, log_.last_index() + 1, EntryType::kNoop, {}}});
  TALLY_ASSERT(log_.last_term() == term_);
}

void Core::hup(bool transfer) {
  if (role_ == Role::kLeader || !promotable()) return;
  // Campaigning with committed but unapplied conf changes could use a stale membership.
  const auto pending = log_.next_entries_to_apply(log_.committed(), UINT64_MAX);
  for (const Entry& e : pending) {
    if (e.type == EntryType::kConfChange) return;
  }
  start_campaign(config_.pre_vote && !transfer, transfer);
}

void Core::start_campaign(bool pre_vote, bool transfer) {
  Term vote_term;
  if (pre_vote) {
    become_pre_candidate();
    vote_term = term_ + 1;
  } else {
    become_candidate();
    vote_term = term_;
  }
  votes_[id_] = true;
  if (votes_.size() >= quorum()) {
    // A single voter wins at once.
    if (pre_vote) {
      start_campaign(false, transfer);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId n : conf_.voters) {
    if (n == id_) continue;
    Message m;
    m.type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
    m.to = n;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.transfer = transfer;
    send(std::move(m));
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs.

void Core::tick() {
  if (role_ == Role::kLeader) {
    ++heartbeat_elapsed_;
    ++election_elapsed_;
    if (election_elapsed_ >= config_.election_tick) {
      election_elapsed_ = 0;
      if (config_.check_quorum) {
        // Step down when a quorum of voters has not been heard from for an election timeout:
        // a leader that can send but not receive must not keep the group (and its clients) hostage.
        size_t active = 0;
        for (auto& [n, pr] : prs_) {
          if (n == id_ || (pr.recent_active && !pr.learner)) active += is_voter(n) ? 1 : 0;
          if (n != id_) pr.recent_active = false;
        }
        if (active < quorum()) {
          become_follower(term_, kNoNode);
          return;
        }
      }
      lead_transferee_ = kNoNode;  // a transfer that did not finish in an election timeout is aborted
    }
    if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
      heartbeat_elapsed_ = 0;
      bcast_heartbeat();
    }
    return;
  }
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    hup(false);
  }
}

void Core::set_time_ms(uint64_t monotonic_ms) {
  TALLY_ASSERT_MSG(monotonic_ms >= now_ms_, "raft: monotonic clock went backwards");
  now_ms_ = monotonic_ms;
}

Status Core::campaign() {
  if (!promotable()) return Status::unavailable("not a voter");
  if (role_ == Role::kLeader) return Status::ok();
  hup(false);
  return Status::ok();
}

Status Core::step(const Message& m) {
  if (m.to != id_ || m.from == kNoNode || m.from == id_) return Status::invalid("misaddressed message");
  if (m.term > term_) {
    if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // Leader stickiness: while we hear from a live leader, ignore disruptive campaigns. This is
      // also what keeps a leader's lease valid. Transfers are invited, so they pass.
      const bool in_lease = config_.check_quorum && lead_ != kNoNode && election_elapsed_ < config_.election_tick;
      if (in_lease && !m.transfer) return Status::ok();
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote never moves our term.
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // Granted pre-votes carry the future term the pre-candidate asked about.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader (e.g. back from a partition whose pre-votes failed) learns our term and steps down.
      Message r;
      r.type = MessageType::kAppendResp;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResp;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    return Status::ok();
  }

  if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
    handle_vote_request(m);
    return Status::ok();
  }
  switch (role_) {
    case Role::kLeader: step_leader(m); break;
    case Role::kCandidate:
    case Role::kPreCandidate: step_candidate(m); break;
    case Role::kFollower: step_follower(m); break;
  }
  return Status::ok();
}

void Core::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  TALLY_ASSERT(m.term >= term_);
  TALLY_ASSERT(pre || m.term == term_);  // step() adopted a higher term before a real vote
  const bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
  Message r;
  r.type = pre ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  r.to = m.from;
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    // A granted pre-vote answers at the asked term, so the pre-candidate counts it.
    r.term = m.term;
    if (!pre) {
      TALLY_ASSERT(m.term == term_);
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  send(std::move(r));
}

void Core::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      become_follower(m.term, m.from);
      handle_append(m);
      return;
    case MessageType::kHeartbeat:
      become_follower(m.term, m.from);
      handle_heartbeat(m);
      return;
    case MessageType::kSnapshot:
      become_follower(m.term, m.from);
      handle_snapshot(m);
      return;
    case MessageType::kPreVoteResp:
    case MessageType::kVoteResp: {
      const bool mine = (role_ == Role::kPreCandidate) == (m.type == MessageType::kPreVoteResp);
      if (!mine || !is_voter(m.from)) return;
      votes_.emplace(m.from, !m.reject);
      size_t granted = 0;
      size_t rejected = 0;
      for (auto& [n, v] : votes_) (v ? granted : rejected) += 1;
      if (granted >= quorum()) {
        if (role_ == Role::kPreCandidate) {
          start_campaign(false, false);
        } else {
          become_leader();
        }
      } else if (rejected >= quorum()) {
        become_follower(term_, kNoNode);
      }
      return;
    }
    case MessageType::kTimeoutNow:
    case MessageType::kReadIndex:
    case MessageType::kReadIndexResp:
    default:
      return;  // no leader known: dropped, the sender retries
  }
}

void Core::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_append(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_heartbeat(m);
      return;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_snapshot(m);
      return;
    case MessageType::kTimeoutNow:
      // Leadership transfer: campaign at once, skipping pre-vote and the lease of other followers.
      if (promotable()) start_campaign(false, true);
      return;
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.index, m.context});
      return;
    default:
      return;
  }
}

void Core::handle_append(const Message& m) {
  TALLY_ASSERT(m.term == term_ && lead_ == m.from);
  TALLY_ASSERT(role_ == Role::kFollower);
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
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message r;
  r.type = MessageType::kHeartbeatResp;
  r.to = m.from;
  r.round = m.round;
  send(std::move(r));
}

void Core::handle_snapshot(const Message& m) {
  TALLY_ASSERT(m.term == term_ && lead_ == m.from);
  const SnapshotMetadata& md = m.snapshot.metadata;
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  if (md.index <= log_.committed()) {
    r.index = log_.committed();
  } else if (log_.match_term(md.index, md.term)) {
    // We already have the entry the snapshot ends at: just move the commit index forward. Reply
    // with the commit index, not our last index: entries past it may be stale, from an old term.
    log_.commit_to(md.index);
    r.index = log_.committed();
  } else {
    log_.restore(m.snapshot);
    apply_conf_state(md.conf);
    r.index = log_.last_index();
    TALLY_ASSERT(r.index == md.index && log_.committed() == md.index);
  }
  send(std::move(r));
}

// ---------------------------------------------------------------------------------------------
// Leader.

void Core::step_leader(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader && m.term == term_);
  auto it = prs_.find(m.from);
  switch (m.type) {
    case MessageType::kAppendResp:
      if (it != prs_.end()) handle_append_resp(m);
      return;
    case MessageType::kHeartbeatResp:
      if (it != prs_.end()) handle_heartbeat_resp(m);
      return;
    case MessageType::kReadIndex:
      if (!committed_in_term() || pending_reads_.size() >= config_.max_pending_reads) return;
      handle_leader_read(PendingRead{m.context, log_.committed(), 0, m.from});
      return;
    default:
      return;
  }
}

void Core::handle_append_resp(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(m.from);
  pr.recent_active = true;
  if (m.reject) {
    // Stale rejections (for an index we no longer probe) are ignored.
    if (pr.state == ProgressState::kReplicate) {
      if (m.index <= pr.match) return;
      become_probe(m.from);
    } else if (pr.state == ProgressState::kProbe) {
      if (pr.next == 0 || m.index != pr.next - 1) return;
      // Likewise skip our own entries whose term exceeds the follower's term at its hint.
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
  free_inflights_to(m.from, m.index);
  if (pr.state == ProgressState::kProbe) {
    become_replicate(pr);
  } else if (pr.state == ProgressState::kSnapshot && pr.match >= pr.pending_snapshot) {
    become_replicate(pr);
  }
  if (updated) maybe_commit();
  // Keep streaming while the window allows.
  for (uint32_t k = 0; k < config_.max_inflight_msgs && pr.state == ProgressState::kReplicate; ++k) {
    if (!send_append(m.from, false)) break;
  }
  if (m.from == lead_transferee_ && pr.match == log_.last_index()) {
    timeout_now_sent_ = true;
    Message t;
    t.type = MessageType::kTimeoutNow;
    t.to = m.from;
    send(std::move(t));
  }
}

void Core::handle_heartbeat_resp(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(m.from);
  pr.recent_active = true;
  pr.probe_sent = false;
  if (pr.state == ProgressState::kReplicate && paused(pr)) {
    // A full window with a live follower means some appends were lost: free the oldest slot.
    auto& q = inflights_[m.from];
    if (!q.empty()) {
      pr.inflight_bytes -= q.front().bytes;
      pr.inflight_entries -= q.front().entries;
      pr.inflight_msgs -= 1;
      q.pop_front();
    }
  }
  if (pr.state == ProgressState::kSnapshot && ++snapshot_wait_[m.from] > kSnapshotWaitHeartbeatsMax) {
    become_probe(m.from);  // the snapshot was lost: probe again, which re-sends it if still needed
  }
  auto& acked = acked_round_[m.from];
  acked = std::max(acked, m.round);
  release_reads();
  if (pr.match < log_.last_index()) send_append(m.from, true);
}

bool Core::paused(const Progress& pr) const {
  switch (pr.state) {
    case ProgressState::kProbe: return pr.probe_sent;
    case ProgressState::kReplicate:
      return pr.inflight_msgs >= config_.max_inflight_msgs || pr.inflight_entries >= config_.max_inflight_entries ||
             pr.inflight_bytes >= config_.max_inflight_bytes;
    case ProgressState::kSnapshot: return true;
  }
  TALLY_UNREACHABLE();
}

void Core::become_probe(NodeId n) {
  Progress& pr = prs_.at(n);
  pr.state = ProgressState::kProbe;
  pr.next = pr.match + 1;
  pr.probe_sent = false;
  pr.inflight_msgs = 0;
  pr.inflight_entries = 0;
  pr.inflight_bytes = 0;
  pr.pending_snapshot = 0;
  inflights_.erase(n);
  snapshot_wait_.erase(n);
  TALLY_ASSERT(pr.next > pr.match);
}

void Core::become_replicate(Progress& pr) {
  pr.state = ProgressState::kReplicate;
  pr.next = std::max(pr.next, pr.match + 1);
  pr.probe_sent = false;
  pr.pending_snapshot = 0;
}

void Core::free_inflights_to(NodeId to, Index index) {
  Progress& pr = prs_.at(to);
  auto& q = inflights_[to];
  while (!q.empty() && q.front().last <= index) {
    TALLY_ASSERT(pr.inflight_msgs > 0 && pr.inflight_bytes >= q.front().bytes);
    TALLY_ASSERT(pr.inflight_entries >= q.front().entries);
    pr.inflight_msgs -= 1;
    pr.inflight_entries -= q.front().entries;
    pr.inflight_bytes -= q.front().bytes;
    q.pop_front();
  }
}

bool Core::send_append(NodeId to, bool send_if_empty) {
  TALLY_ASSERT(role_ == Role::kLeader);
  Progress& pr = prs_.at(to);
  TALLY_ASSERT(to != id_ && pr.next > pr.match);
  if (paused(pr)) return false;
  const Index prev = pr.next - 1;
  auto prev_term = log_.term(prev);
  // A message carries no more entries than the follower's entry window has room for.
  const uint64_t room = config_.max_inflight_entries -
                        (pr.state == ProgressState::kReplicate ? pr.inflight_entries : 0);
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
    pr.state = ProgressState::kSnapshot;
    pr.pending_snapshot = m.snapshot.metadata.index;
    snapshot_wait_[to] = 0;
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
  if (!m.entries.empty()) {
    if (pr.state == ProgressState::kReplicate) {
      // Optimistically assume delivery; a rejection or a heartbeat resets the window.
      uint64_t bytes = 0;
      for (const Entry& e : m.entries) bytes += entry_bytes(e);
      pr.next = m.entries.back().index + 1;
      pr.inflight_msgs += 1;
      pr.inflight_entries += m.entries.size();
      pr.inflight_bytes += bytes;
      inflights_[to].push_back(Inflight{m.entries.back().index, m.entries.size(), bytes});
    }
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
  ++round_;
  round_sent_ms_.emplace_back(round_, now_ms_);
  if (round_sent_ms_.size() > kLeaseRoundsMax) round_sent_ms_.pop_front();
  for (auto& [n, pr] : prs_) {
    if (n == id_) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = n;
    // Never tell a follower to commit past what it is known to hold.
    m.commit = std::min(pr.match, log_.committed());
    m.round = round_;
    send(std::move(m));
  }
}

bool Core::committed_in_term() const { return log_.term_or_zero(log_.committed()) == term_; }

void Core::append_entries(std::vector<Entry> ents) {
  TALLY_ASSERT(role_ == Role::kLeader);
  log_.append(ents);
  prs_.at(id_).match = log_.last_index();
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
    in.match[slot] = n == id_ ? log_.last_index() : pr.match;
    if (is_voter(n)) in.voter_mask |= 1u << slot;
    ++slot;
  }
  return in;
}

void Core::maybe_commit() {
  if (role_ != Role::kLeader) return;
  if (config_.external_tally) {
    tally_dirty_ = true;
    return;
  }
  const TallyInput in = tally_input();
  uint64_t quorum_index = 0;
  kernels::tally_commit_cpu(in.match, &in.voter_mask, 1, &quorum_index);
  commit_to_quorum_index(quorum_index);
}

bool Core::commit_to_quorum_index(Index quorum_index) {
  if (role_ != Role::kLeader || quorum_index <= log_.committed()) return false;
  TALLY_ASSERT(quorum_index <= log_.last_index());
  // Figure 8: a leader counts replicas only of entries of its own term; earlier entries commit
  // with them. The planted bug counts replicas of any entry.
  if (log_.term_or_zero(quorum_index) != term_ && !config_.bugs.count_prior_term_replicas) return false;
  const Index before = log_.committed();
  log_.commit_to(quorum_index);
  TALLY_ASSERT(log_.committed() > before);
  pending_bcast_ = true;  // followers learn the new commit index
  release_reads();        // reads waiting on the first commit of this term
  return true;
}

// ---------------------------------------------------------------------------------------------
// Proposals, reads, transfer.

Status Core::propose(std::span<const std::string> batch) {
  if (role_ != Role::kLeader) return Status::unavailable("not leader");
  if (lead_transferee_ != kNoNode) return Status::unavailable("leadership transfer in progress");
  if (batch.empty()) return Status::ok();
  const uint64_t uncommitted = log_.last_index() - log_.committed();
  if (uncommitted + batch.size() > config_.max_uncommitted_entries) {
    return Status::exhausted("too many uncommitted entries");
  }
  std::vector<Entry> ents;
  ents.reserve(batch.size());
  Index i = log_.last_index();
  for (const std::string& d : batch) ents.push_back(Entry{term_, ++i, EntryType::kNormal, d});
  append_entries(std::move(ents));
  return Status::ok();
}

Status Core::read_index(std::string context) {
  if (role_ != Role::kLeader) {
    if (lead_ == kNoNode) return Status::unavailable("no leader");
    Message m;
    m.type = MessageType::kReadIndex;
    m.to = lead_;
    m.context = std::move(context);
    send(std::move(m));
    return Status::ok();
  }
  // The commit index is only known to be current once this term committed its no-op.
  if (!committed_in_term()) return Status::unavailable("leader has not committed an entry of its term");
  if (pending_reads_.size() >= config_.max_pending_reads) return Status::exhausted("too many pending reads");
  handle_leader_read(PendingRead{std::move(context), log_.committed(), 0, id_});
  return Status::ok();
}

void Core::handle_leader_read(PendingRead read) {
  TALLY_ASSERT(role_ == Role::kLeader);
  auto complete = [this](PendingRead& r) {
    if (r.from == id_) {
      read_states_.push_back(ReadState{r.index, std::move(r.context)});
    } else {
      Message m;
      m.type = MessageType::kReadIndexResp;
      m.to = r.from;
      m.index = r.index;
      m.context = std::move(r.context);
      send(std::move(m));
    }
  };
  if (conf_.voters.size() == 1 || lease_valid()) {
    complete(read);
    return;
  }
  // Confirm we are still leader: a quorum must acknowledge a heartbeat round sent after the read.
  bcast_heartbeat();
  read.round = round_;
  pending_reads_.push_back(std::move(read));
}

uint64_t Core::quorum_acked_round() const {
  std::vector<uint64_t> acked;
  for (NodeId n : conf_.voters) {
    if (n == id_) {
      acked.push_back(round_);
    } else {
      auto it = acked_round_.find(n);
      acked.push_back(it == acked_round_.end() ? 0 : it->second);
    }
  }
  std::sort(acked.begin(), acked.end(), [](uint64_t a, uint64_t b) { return a > b; });
  TALLY_ASSERT(acked.size() >= quorum());
  return acked[quorum() - 1];
}

void Core::release_reads() {
  if (role_ != Role::kLeader || pending_reads_.empty()) return;
  const uint64_t acked = quorum_acked_round();
  while (!pending_reads_.empty() && pending_reads_.front().round <= acked) {
    PendingRead r = std::move(pending_reads_.front());
    pending_reads_.pop_front();
    if (r.from == id_) {
      read_states_.push_back(ReadState{r.index, std::move(r.context)});
    } else {
      Message m;
      m.type = MessageType::kReadIndexResp;
      m.to = r.from;
      m.index = r.index;
      m.context = std::move(r.context);
      send(std::move(m));
    }
  }
}

bool Core::lease_valid() const {
  // After a TimeoutNow the target may win the next term at any moment, even if this transfer is
  // later aborted here: no more lease reads in this term.
  if (!config_.lease_read.enabled || !config_.check_quorum || lead_transferee_ != kNoNode || timeout_now_sent_) {
    return false;
  }
  const uint64_t acked = quorum_acked_round();
  const uint64_t lease_ms = static_cast<uint64_t>(config_.election_tick) * config_.lease_read.tick_interval_ms;
  for (const auto& [round, sent_ms] : round_sent_ms_) {
    if (round != acked) continue;
    // The followers that acknowledged `round` will not vote for anyone else for an election
    // timeout after they received it, which was after sent_ms; drift shortens what we can rely on.
    return now_ms_ + config_.lease_read.clock_drift_max_ms < sent_ms + lease_ms;
  }
  return false;
}

Status Core::transfer_leader(NodeId target) {
  if (role_ != Role::kLeader) return Status::unavailable("not leader");
  if (target == id_) return Status::ok();
  if (!is_voter(target)) return Status::invalid("transfer target is not a voter");
  if (lead_transferee_ == target) return Status::ok();
  lead_transferee_ = target;
  election_elapsed_ = 0;  // the transfer must finish within an election timeout
  Progress& pr = prs_.at(target);
  if (pr.match == log_.last_index()) {
    timeout_now_sent_ = true;
    Message t;
    t.type = MessageType::kTimeoutNow;
    t.to = target;
    send(std::move(t));
  } else {
    send_append(target, true);
  }
  return Status::ok();
}

void Core::report_unreachable(NodeId to) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(to);
  if (it == prs_.end()) return;
  if (it->second.state != ProgressState::kProbe) become_probe(to);
}

// ---------------------------------------------------------------------------------------------
// Ready.

void Core::send(Message m) {
  TALLY_ASSERT(m.to != kNoNode && m.to != id_);
  TALLY_ASSERT_MSG(msgs_.size() < kOutboxMessagesMax, "raft: outbox full, ready() not called");
  m.from = id_;
  // Pre-vote requests carry the future term, and answers to them the asked one; everything else
  // goes out at our current term (which the Ready persists before it is sent).
  if (m.type != MessageType::kPreVote && !(m.type == MessageType::kPreVoteResp && m.term != 0)) m.term = term_;
  msgs_.push_back(std::move(m));
}

HardState Core::hard_state() const {
  HardState hs{term_, vote_, log_.committed()};
  if (config_.bugs.vote_without_persist && hs.vote != prev_hard_state_.vote) {
    // Planted bug: the vote stays in memory only.
    hs.vote = prev_hard_state_.term == term_ ? prev_hard_state_.vote : kNoNode;
  }
  return hs;
}

bool Core::has_ready() const {
  if (ready_in_progress_) return false;  // the shell still owes an advance()
  if (pending_bcast_ || tally_dirty_ || !msgs_.empty() || !read_states_.empty()) return true;
  if (SoftState{lead_, role_} != prev_soft_state_) return true;
  if (hard_state() != prev_hard_state_) return true;
  if (!log_.unstable_entries().empty() || log_.unstable_snapshot()) return true;
  const Index limit = config_.bugs.apply_before_commit ? log_.last_index() : log_.committed();
  return log_.has_entries_to_apply(limit);
}

Ready Core::ready() {
  TALLY_ASSERT_MSG(!ready_in_progress_, "raft: ready() called again before advance()");
  if (pending_bcast_) {
    pending_bcast_ = false;
    if (role_ == Role::kLeader) bcast_append();
  }
  tally_dirty_ = false;
  Ready rd;
  const SoftState ss{lead_, role_};
  if (ss != prev_soft_state_) {
    rd.soft_state = ss;
    prev_soft_state_ = ss;
  }
  const HardState hs = hard_state();
  if (hs != prev_hard_state_) rd.hard_state = hs;
  rd.entries = log_.unstable_entries();
  rd.snapshot = log_.unstable_snapshot();
  const Index limit = config_.bugs.apply_before_commit ? log_.last_index() : log_.committed();
  rd.committed_entries = log_.next_entries_to_apply(limit, config_.max_committed_bytes_per_ready);
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 (rd.hard_state && (rd.hard_state->term != prev_hard_state_.term ||
                                    rd.hard_state->vote != prev_hard_state_.vote));

  // Invariant: the term and vote a message depends on are persisted (earlier, or in this Ready)
  // before the message is sent.
  const HardState persisted = rd.hard_state.value_or(prev_hard_state_);
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResp) continue;
    TALLY_ASSERT_MSG(m.term <= persisted.term, "raft: message sent at an unpersisted term");
    // A grant is safe once its vote is persisted, or once a later term is (that term forbids
    // voting again in the grant's term).
    if (m.type == MessageType::kVoteResp && !m.reject && !config_.bugs.vote_without_persist) {
      TALLY_ASSERT_MSG(persisted.term > m.term || persisted.vote == m.to, "raft: vote granted but not persisted");
    }
  }
  // Invariant: entries to apply continue exactly where the last Ready stopped (or after a snapshot).
  if (!rd.committed_entries.empty()) {
    const Index from = std::max(log_.applied(), rd.snapshot ? rd.snapshot->metadata.index : 0);
    TALLY_ASSERT_MSG(rd.committed_entries.front().index == from + 1 ||
                         rd.committed_entries.front().index == log_.first_index(),
                     "raft: committed entries do not continue the applied index");
  }
  // Invariant: nothing is applied before it is committed (unless that bug is planted).
  if (!rd.committed_entries.empty() && !config_.bugs.apply_before_commit) {
    TALLY_ASSERT(rd.committed_entries.back().index <= hs.commit);
  }
  TALLY_ASSERT(hs.commit >= prev_hard_state_.commit);

  ready_in_progress_ = true;
  ready_last_index_ = rd.entries.empty() ? 0 : rd.entries.back().index;
  ready_last_term_ = rd.entries.empty() ? 0 : rd.entries.back().term;
  ready_snapshot_index_ = rd.snapshot ? rd.snapshot->metadata.index : 0;
  ready_applied_to_ = rd.committed_entries.empty() ? 0 : rd.committed_entries.back().index;
  if (rd.hard_state) prev_hard_state_ = *rd.hard_state;
  return rd;
}

void Core::advance() {
  TALLY_ASSERT_MSG(ready_in_progress_, "raft: advance() without a Ready");
  ready_in_progress_ = false;
  if (ready_snapshot_index_ != 0) {
    log_.stable_snapshot_to(ready_snapshot_index_);
    log_.applied_to(ready_snapshot_index_);
  }
  if (ready_last_index_ != 0) log_.stable_to(ready_last_index_, ready_last_term_);
  if (ready_applied_to_ != 0) log_.applied_to(ready_applied_to_);
  TALLY_ASSERT(config_.bugs.apply_before_commit || log_.applied() <= log_.committed());
}

NodeStatus Core::status() const {
  NodeStatus st;
  st.id = id_;
  st.hard_state = HardState{term_, vote_, log_.committed()};
  st.soft_state = SoftState{lead_, role_};
  st.applied = log_.applied();
  st.last_index = log_.last_index();
  st.first_index = log_.first_index();
  st.lead_transferee = lead_transferee_;
  st.conf = conf_;
  if (role_ == Role::kLeader) st.progress = prs_;
  return st;
}

}  // namespace tally::raft
