// The core's inputs (ticks, messages, proposals) and outputs (the outbox and the Ready): this file
// dispatches; elections, replication, reads, membership and transfer each live in their own file.
#include "host/replication/raft/core.h"

#include <algorithm>

#include "host/replication/raft/confchange.h"
#include "host/replication/raft/mutant.h"

namespace tally::raft {

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
  // A node that restarts has forgotten which leader it last heard from, and when: it may have
  // acknowledged a heartbeat round a leader's lease counts on. It stays sticky for a whole
  // election timeout from its start, as if it had just heard from that leader. (A brand-new
  // node, at term 0, never acknowledged anything.)
  if (config_.lease_read.enabled && init.hard_state.term > 0 && !TALLY_MUTANT(restart_votes_at_once)) {
    sticky_until_ns_ = lease_clock_ns() + stickiness_ns();
  }
  TALLY_ASSERT(log_.committed() <= log_.last_index());
}

// ---------------------------------------------------------------------------------------------
// Inputs.

void Core::tick() {
  if (role_ == Role::kLeader) {
    tick_leader();
  } else {
    tick_election();
  }
}

void Core::tick_leader() {
  TALLY_ASSERT(role_ == Role::kLeader);
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_tick) {
    election_elapsed_ = 0;
    // Step down when a quorum of voters has not been heard from for an election timeout: a
    // leader that can send but not receive must not keep the group (and its clients) hostage.
    if (config_.check_quorum && !quorum_recently_active()) {
      become_follower(term_, kNoNode);
      return;
    }
    lead_transferee_ = kNoNode;  // a transfer that did not finish in an election timeout is aborted
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat();
  }
}

void Core::tick_election() {
  TALLY_ASSERT(role_ != Role::kLeader);
  tick_forwarded_reads();
  ++election_elapsed_;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    // With leases on, a node that acknowledged a round must not vote for itself either while a
    // lease may still count on it; it campaigns at the first tick after its stickiness ends.
    if (sticky_in_time()) return;
    election_elapsed_ = 0;
    hup(false);
  }
}

uint64_t Core::lease_clock_ns() {
  TALLY_ASSERT(config_.lease_read.enabled && config_.lease_read.clock != nullptr);
  const uint64_t now = config_.lease_read.clock->monotonic_ns();
  TALLY_ASSERT_MSG(now >= last_clock_ns_, "raft: monotonic clock went backwards");
  last_clock_ns_ = now;
  return now;
}

Status Core::campaign() {
  if (!promotable()) return Status::unavailable("not a voter");
  if (role_ == Role::kLeader) return Status::ok();
  // A node that heard from a leader within an election timeout may be part of the quorum that
  // leader's lease counts on: with leases on it must not vote, for itself either.
  if (sticky_in_time()) return Status::unavailable("heard from a leader within an election timeout (lease)");
  hup(false);
  return Status::ok();
}

Status Core::step(const Message& m) {
  if (m.to != id_ || m.from == kNoNode || m.from == id_) return Status::invalid("misaddressed message");
  if (m.term > term_) {
    if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // Leader stickiness: while we hear from a live leader, ignore disruptive campaigns. A lease
      // read relies on it (reads.cc). Transfers are invited, so they pass.
      if (heard_from_leader_recently() && !m.transfer) return Status::ok();
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

void Core::step_leader(const Message& m) {
  TALLY_ASSERT(role_ == Role::kLeader && m.term == term_);
  const bool known = prs_.count(m.from) != 0;
  switch (m.type) {
    case MessageType::kAppendResp:
      if (known) handle_append_resp(m);
      return;
    case MessageType::kHeartbeatResp:
      if (known) handle_heartbeat_resp(m);
      return;
    case MessageType::kReadIndex:
      if ((!committed_in_term() && !TALLY_MUTANT(read_before_term_commit)) ||
          read_only_.pending() >= config_.max_pending_reads) {
        refuse_forwarded_read(m);
        return;
      }
      handle_leader_read(ReadOnly::PendingRead{m.context, log_.committed(), 0, m.from});
      return;
    default:
      return;
  }
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
    case MessageType::kVoteResp:
      handle_vote_response(m);
      return;
    case MessageType::kReadIndex:
      refuse_forwarded_read(m);  // no leader known
      return;
    case MessageType::kReadIndexResp:
      handle_read_index_resp(m);
      return;
    case MessageType::kTimeoutNow:
    default:
      return;
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
      // Leadership transfer: campaign at once, skipping pre-vote and the stickiness of other followers.
      if (promotable()) start_campaign(false, true);
      return;
    case MessageType::kReadIndex:
      refuse_forwarded_read(m);  // sent to us as if we led: the sender's view is stale
      return;
    case MessageType::kReadIndexResp:
      handle_read_index_resp(m);
      return;
    default:
      return;
  }
}

Status Core::may_propose(size_t entries) const {
  if (role_ != Role::kLeader) return Status::unavailable("not leader");
  if (lead_transferee_ != kNoNode) return Status::unavailable("leadership transfer in progress");
  const uint64_t uncommitted = log_.last_index() - log_.committed();
  if (uncommitted + entries > config_.max_uncommitted_entries) {
    return Status::exhausted("too many uncommitted entries");
  }
  return Status::ok();
}

Status Core::propose_one(std::string data) {
  TALLY_RETURN_IF_ERROR(may_propose(1));
  std::vector<Entry> ents;
  ents.push_back(Entry{term_, log_.last_index() + 1, EntryType::kNormal, std::move(data)});
  append_entries(std::move(ents));
  return Status::ok();
}

Status Core::propose(std::span<const std::string> batch) {
  TALLY_RETURN_IF_ERROR(may_propose(batch.size()));
  if (batch.empty()) return Status::ok();
  std::vector<Entry> ents;
  ents.reserve(batch.size());
  Index i = log_.last_index();
  for (const std::string& d : batch) ents.push_back(Entry{term_, ++i, EntryType::kNormal, d});
  append_entries(std::move(ents));
  return Status::ok();
}

void Core::report_unreachable(NodeId to) {
  if (role_ != Role::kLeader) return;
  auto it = prs_.find(to);
  if (it == prs_.end()) return;
  if (it->second.state != ProgressState::kProbe) become_probe(to);
}

// ---------------------------------------------------------------------------------------------
// Outputs: the outbox and the Ready.

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
  if (pending_bcast_ || tally_dirty_ || round_requested_ || !msgs_.empty() || !read_states_.empty() ||
      !failed_reads_.empty()) {
    return true;
  }
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
  if (round_requested_) {
    TALLY_ASSERT(role_ == Role::kLeader);
    bcast_heartbeat();
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
  rd.failed_reads = std::move(failed_reads_);
  failed_reads_.clear();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 (rd.hard_state && (rd.hard_state->term != prev_hard_state_.term ||
                                    rd.hard_state->vote != prev_hard_state_.vote));
  if (config_.leader_sends_before_persist && role_ == Role::kLeader && !rd.snapshot &&
      (!rd.hard_state || (rd.hard_state->term == prev_hard_state_.term && rd.hard_state->vote == prev_hard_state_.vote))) {
    // A leader whose term and vote are durable already: what it sends as leader depends on nothing
    // this Ready persists (it counts its own entries only once durable), so it may go first.
    std::vector<Message> late;
    for (Message& m : rd.messages) {
      const bool leaderly = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                            m.type == MessageType::kSnapshot || m.type == MessageType::kReadIndexResp ||
                            m.type == MessageType::kTimeoutNow;
      (leaderly && m.term == term_ ? rd.early_messages : late).push_back(std::move(m));
    }
    rd.messages = std::move(late);
  }

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
  if (ready_last_index_ != 0 && role_ == Role::kLeader && config_.leader_sends_before_persist) {
    // The leader's own copy of what it sent early is durable now: it counts toward the quorum.
    Progress& self = prs_.at(id_);
    self.match = std::max(self.match, own_match());
    maybe_commit();
  }
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
