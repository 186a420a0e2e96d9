// Membership: single-server changes proposed one at a time, applied when the shell applies their
// entry; learners; a removed or demoted leader steps down. The arithmetic is in confchange.h.
#include "host/replication/raft/confchange.h"
#include "host/replication/raft/core.h"
#include "host/replication/raft/mutant.h"

namespace tally::raft {

void Core::apply_conf_state(const ConfState& cs) {
  TALLY_ASSERT(cs.voters.size() + cs.learners.size() <= kernels::kTallyReplicasMax);
  conf_ = cs;
  ++conf_version_;
  // Keep the progress of nodes that stay; new ones start probing from the end of our log.
  std::map<NodeId, Progress> next;
  for (NodeId n : replicas_of(conf_)) {
    auto it = prs_.find(n);
    Progress pr = it != prs_.end() ? it->second : Progress{};
    if (it == prs_.end()) {
      pr.next = log_.last_index() + 1;
      pr.recent_active = true;  // a node just added gets one check-quorum round to show up
    }
    pr.learner = is_learner(n);
    next[n] = pr;
  }
  prs_ = std::move(next);
  TALLY_ASSERT(prs_.size() == conf_.voters.size() + conf_.learners.size());
}

bool Core::is_voter(NodeId n) const { return contains(conf_.voters, n); }
bool Core::is_learner(NodeId n) const { return contains(conf_.learners, n); }

uint32_t Core::voter_mask() const {
  uint32_t mask = 0;
  uint32_t slot = 0;
  for (const auto& [n, pr] : prs_) {
    TALLY_ASSERT(slot < kernels::kTallyReplicasMax);
    if (is_voter(n)) mask |= 1u << slot;
    ++slot;
  }
  return mask;
}

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
  if (pending_conf_index_ > log_.applied() && !TALLY_MUTANT(concurrent_conf_changes)) {
    return Status::unavailable("a membership change is pending");
  }
  if (!committed_in_term()) return Status::unavailable("leader has not committed an entry of its term");
  const bool known = prs_.count(cc.node) != 0;
  if (cc.type != ConfChangeType::kRemoveNode && !known &&
      prs_.size() + 1 > kernels::kTallyReplicasMax) {
    return Status::exhausted("group would exceed kTallyReplicasMax replicas");
  }
  ConfChange full = cc;
  full.conf_after = conf_after_change(conf_, cc);
  // Removing or demoting the last voter would leave a group that can never elect or commit.
  if (full.conf_after.voters.empty()) return Status::invalid("change would leave no voter");
  Entry e{term_, log_.last_index() + 1, EntryType::kConfChange, full.encode()};
  pending_conf_index_ = e.index;
  append_entries({std::move(e)});
  return Status::ok();
}

}  // namespace tally::raft
