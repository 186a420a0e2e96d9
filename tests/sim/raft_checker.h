// The five Raft safety properties, checked from the outside on every Ready of every replica:
// election safety, leader append-only, log matching, leader completeness, state machine safety.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/replication/raft/raft.h"

namespace tally::sim {

// Hash of one entry as the state machine sees it: same index, term, type and data, same hash.
uint64_t entry_hash(const raft::Entry& e);

class RaftChecker {
 public:
  // Bound on the index a group may reach in one run; the simulator sizes runs far below it.
  static constexpr raft::Index kIndexMax = 1 << 20;

  explicit RaftChecker(uint32_t groups);

  // Each returns false (and records the first violation) when a property is broken.
  // A replica reports its role and term after every input it handled.
  bool observe_role(uint32_t group, raft::NodeId node, raft::Role role, raft::Term term,
                    const raft::Storage& log);
  // A replica's Ready, before the shell writes it: entries it will append, the hard state.
  bool observe_ready(uint32_t group, raft::NodeId node, raft::Role role, raft::Term term,
                     const raft::Ready& ready, const raft::Storage& log_before);
  // Single-server membership changes, one at a time: a leader appends a conf-change entry only
  // once it applied every earlier one (`applied` is its state machine's index, `log` its log
  // before this Ready).
  bool check_one_conf_change(uint32_t group, raft::NodeId leader, const raft::Ready& ready, raft::Index applied,
                             const raft::Storage& log);
  // A replica applied one committed entry.
  bool observe_apply(uint32_t group, raft::NodeId node, const raft::Entry& entry);
  // Leader completeness, predictively: when a leader commits `index`, no voter lacking that
  // entry may be able to win an election (hold a log at least as up-to-date as a majority's).
  // `logs` are every voter's log, crashed ones included (what they would restart with); a null log is
  // a voter that stays down for good (it votes for nobody).
  bool check_commit_durable(uint32_t group, raft::NodeId leader, raft::Index index,
                            const std::vector<std::pair<raft::NodeId, const raft::Storage*>>& logs);
  // Log matching over the given replicas' logs of one group.
  bool check_log_matching(uint32_t group, const std::vector<std::pair<raft::NodeId, const raft::Storage*>>& logs);
  // A replica crashed: it is no longer leader of anything until it is elected again.
  void forget(uint32_t group, raft::NodeId node);

  bool ok() const { return violation_.empty(); }
  const std::string& violation_kind() const { return kind_; }
  const std::string& violation() const { return violation_; }
  raft::Index max_commit(uint32_t group) const { return groups_[group].max_commit; }
  // The highest term in which the group has elected a leader so far (0: none yet).
  raft::Term max_leader_term(uint32_t group) const;
  // Commits whose index holds an entry of an earlier term (only the planted bug makes them).
  uint64_t prior_term_commits() const { return prior_term_commits_; }

 private:
  struct Committed {
    raft::Term entry_term = 0;
    raft::Term commit_term = 0;  // term of the leader that first committed it
  };
  struct Group {
    std::map<raft::Term, raft::NodeId> leader_of_term;
    std::map<raft::NodeId, raft::Term> leading_term;  // 0 when not leader
    std::map<raft::Index, uint64_t> applied_hash;     // first hash applied at each index
    std::map<raft::Index, Committed> committed;
    raft::Index max_commit = 0;
  };
  bool fail(const char* kind, std::string detail);

  std::vector<Group> groups_;
  uint64_t prior_term_commits_ = 0;
  std::string kind_;
  std::string violation_;
};

}  // namespace tally::sim
