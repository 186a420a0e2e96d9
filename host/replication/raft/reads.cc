// Linearizable reads: ReadIndex confirmed by a heartbeat round a majority acknowledged, and
// lease reads served while such a round is recent enough. Every accepted read ends exactly once,
// as a ReadState or a failed read. The bookkeeping is ReadOnly's.
#include "host/replication/raft/core.h"
#include "host/replication/raft/mutant.h"

namespace tally::raft {

Status Core::read_index(std::string context) {
  if (role_ != Role::kLeader) {
    if (lead_ == kNoNode) return Status::unavailable("no leader");
    if (read_only_.forwarded() >= config_.max_pending_reads) return Status::exhausted("too many pending reads");
    Message m;
    m.type = MessageType::kReadIndex;
    m.to = lead_;
    m.context = context;
    send(std::move(m));
    read_only_.forward(std::move(context));
    return Status::ok();
  }
  // The commit index is only known to be current once this term committed its no-op.
  if (!committed_in_term() && !TALLY_MUTANT(read_before_term_commit)) {
    return Status::unavailable("leader has not committed an entry of its term");
  }
  if (read_only_.pending() >= config_.max_pending_reads) return Status::exhausted("too many pending reads");
  handle_leader_read(ReadOnly::PendingRead{std::move(context), log_.committed(), 0, id_});
  return Status::ok();
}

void Core::handle_leader_read(ReadOnly::PendingRead read) {
  TALLY_ASSERT(role_ == Role::kLeader);
  if (conf_.voters.size() == 1 || lease_valid() || TALLY_MUTANT(read_without_round)) {
    complete_read(std::move(read));
    return;
  }
  // Confirm we are still leader: a majority must acknowledge a heartbeat round sent after the
  // read arrived. Every read until that round goes out waits on it, so a burst costs one round.
  read.round = read_only_.round() + 1;
  read_only_.add(std::move(read));
  round_requested_ = true;
}

void Core::complete_read(ReadOnly::PendingRead read) {
  if (read.from == id_) {
    read_states_.push_back(ReadState{read.index, std::move(read.context)});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = read.from;
  m.index = read.index;
  m.context = std::move(read.context);
  send(std::move(m));
}

void Core::refuse_forwarded_read(const Message& m) {
  TALLY_ASSERT(m.type == MessageType::kReadIndex);
  Message r;
  r.type = MessageType::kReadIndexResp;
  r.to = m.from;
  r.reject = true;
  r.context = m.context;
  send(std::move(r));
}

void Core::handle_read_index_resp(const Message& m) {
  TALLY_ASSERT(m.type == MessageType::kReadIndexResp);
  if (!read_only_.answer(m.context)) return;  // already failed (timed out): the shell moved on
  if (m.reject) {
    failed_reads_.push_back(m.context);
  } else {
    read_states_.push_back(ReadState{m.index, m.context});
  }
}

void Core::fail_waiting_reads() {
  for (ReadOnly::PendingRead& r : read_only_.take_pending()) {
    // Reads forwarded to us are left to their follower's timeout: we may no longer reach it.
    if (r.from == id_ && !TALLY_MUTANT(reads_never_released)) failed_reads_.push_back(std::move(r.context));
  }
  for (std::string& c : read_only_.take_forwarded()) failed_reads_.push_back(std::move(c));
  round_requested_ = false;
}

void Core::tick_forwarded_reads() {
  // A forwarded read, or its answer, may be lost: after an election timeout the follower gives up.
  for (std::string& c : read_only_.expire_forwarded(config_.election_tick)) failed_reads_.push_back(std::move(c));
}

uint64_t Core::quorum_acked_round() const {
  // The same majority rule as the commit index, over acknowledged rounds instead of match indexes.
  uint64_t acked[kernels::kTallyReplicasMax] = {};
  uint32_t slot = 0;
  for (const auto& [n, pr] : prs_) {
    TALLY_ASSERT(slot < kernels::kTallyReplicasMax);
    acked[slot] = n == id_ ? read_only_.round() : read_only_.acked(n);
    ++slot;
  }
  return quorum::majority_value(acked, voter_mask());
}

void Core::confirm_rounds() {
  if (role_ != Role::kLeader) return;
  for (ReadOnly::PendingRead& r : read_only_.confirm(quorum_acked_round())) complete_read(std::move(r));
}

bool Core::lease_valid() {
  // After a TimeoutNow the target may win the next term at any moment, even if this transfer is
  // later aborted here: no more lease reads in this term.
  if (!config_.lease_read.enabled || !config_.check_quorum) return false;
  if ((lead_transferee_ != kNoNode || timeout_now_sent_) && !TALLY_MUTANT(transfer_keeps_lease)) return false;
  const std::optional<uint64_t> sent_ns = read_only_.sent_ns(quorum_acked_round());
  if (!sent_ns) return false;
  // The voters that acknowledged the round heard from us after it was sent, and neither vote for
  // another node nor campaign for an election timeout after that, measured on their clocks
  // (sticky_in_time()); the drift bound covers how far their clocks may run ahead of ours.
  const uint64_t drift_ns = config_.lease_read.clock_drift_max_ms * 1'000'000;
  return lease_clock_ns() + drift_ns < *sent_ns + stickiness_ns();
}

}  // namespace tally::raft
