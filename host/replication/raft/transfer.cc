// Leadership transfer: proposals pause, the target is brought up to date, then told to campaign
// at once (TimeoutNow, past pre-vote and the other followers' stickiness). The leader's tick
// aborts a transfer that has not finished within an election timeout.
#include "host/replication/raft/core.h"

namespace tally::raft {

Status Core::transfer_leader(NodeId target) {
  if (role_ != Role::kLeader) return Status::unavailable("not leader");
  if (target == id_) return Status::ok();
  if (!is_voter(target)) return Status::invalid("transfer target is not a voter");
  if (lead_transferee_ == target) return Status::ok();
  lead_transferee_ = target;
  election_elapsed_ = 0;  // the transfer must finish within an election timeout
  if (prs_.at(target).match == log_.last_index()) {
    send_timeout_now(target);
  } else {
    send_append(target, true);
  }
  return Status::ok();
}

void Core::send_timeout_now(NodeId to) {
  TALLY_ASSERT(role_ == Role::kLeader && to == lead_transferee_);
  // From here on the target may win the next term at any moment: leases end (lease_valid()).
  timeout_now_sent_ = true;
  Message t;
  t.type = MessageType::kTimeoutNow;
  t.to = to;
  send(std::move(t));
}

void Core::maybe_finish_transfer(NodeId from) {
  if (from == lead_transferee_ && prs_.at(from).match == log_.last_index()) send_timeout_now(from);
}

}  // namespace tally::raft
