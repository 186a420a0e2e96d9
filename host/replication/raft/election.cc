// Roles and elections: randomized timeouts, pre-vote, the vote restriction, leader stickiness,
// check-quorum, and the no-op a new leader appends.
#include <algorithm>

#include "host/replication/raft/core.h"
#include "host/replication/raft/mutant.h"

namespace tally::raft {

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
  fail_waiting_reads();
  read_only_.reset();
  pending_conf_index_ = 0;
  for (auto& [n, pr] : prs_) {
    const bool learner = pr.learner;
    pr = Progress{};
    pr.learner = learner;
    pr.next = log_.last_index() + 1;
    if (n == id_) pr.match = own_match();
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

bool Core::promotable() const { return is_voter(id_); }

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
  if (quorum::vote_result(conf_.voters.size(), votes_.size(), 0) == quorum::VoteResult::kWon) {
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

bool Core::heard_from_leader_recently() {
  if (!config_.check_quorum) return false;
  const bool in_ticks = lead_ != kNoNode && election_elapsed_ < config_.election_tick;
  return in_ticks || sticky_in_time();
}

bool Core::sticky_in_time() {
  // Ticks alone are not enough for a lease: a follower's first tick after a heartbeat may come
  // at once, so election_tick ticks can pass in (election_tick - 1) tick intervals.
  return config_.lease_read.enabled && lease_clock_ns() < sticky_until_ns_ && !TALLY_MUTANT(lease_stickiness_in_ticks);
}

void Core::note_leader_contact() {
  if (config_.lease_read.enabled) sticky_until_ns_ = std::max(sticky_until_ns_, lease_clock_ns() + stickiness_ns());
}

uint64_t Core::stickiness_ns() const {
  return static_cast<uint64_t>(config_.election_tick) * config_.lease_read.tick_interval_ms * 1'000'000;
}

void Core::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  TALLY_ASSERT(m.term >= term_);
  TALLY_ASSERT(pre || m.term == term_);  // step() adopted a higher term before a real vote
  const bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
  Message r;
  r.type = pre ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  r.to = m.from;
  if (can_vote && (log_.is_up_to_date(m.index, m.log_term) || TALLY_MUTANT(vote_without_log_check))) {
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

void Core::handle_vote_response(const Message& m) {
  TALLY_ASSERT(role_ == Role::kCandidate || role_ == Role::kPreCandidate);
  const bool mine = (role_ == Role::kPreCandidate) == (m.type == MessageType::kPreVoteResp);
  if (!mine || !is_voter(m.from)) return;
  votes_.emplace(m.from, !m.reject);
  size_t granted = 0;
  size_t rejected = 0;
  for (auto& [n, v] : votes_) (v ? granted : rejected) += 1;
  switch (quorum::vote_result(conf_.voters.size(), granted, rejected)) {
    case quorum::VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        start_campaign(false, false);
      } else {
        become_leader();
      }
      return;
    case quorum::VoteResult::kLost:
      become_follower(term_, kNoNode);
      return;
    case quorum::VoteResult::kPending:
      return;
  }
}

bool Core::quorum_recently_active() {
  TALLY_ASSERT(role_ == Role::kLeader);
  size_t active = 0;
  for (auto& [n, pr] : prs_) {
    if (n == id_ || (pr.recent_active && !pr.learner)) active += is_voter(n) ? 1 : 0;
    if (n != id_) pr.recent_active = false;
  }
  return quorum::vote_result(conf_.voters.size(), active, 0) == quorum::VoteResult::kWon;
}

}  // namespace tally::raft
