// RaftLog: the core's view of the log, the persisted part (Storage) plus the unstable tail and
// snapshot not yet handed to the shell, with the commit and applied indexes.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "host/common/status.h"
#include "host/replication/raft/storage.h"
#include "host/replication/raft/types.h"

namespace tally::raft {

// Internal to the core. Invariants: applied <= committed (unless a planted bug says otherwise),
// committed never decreases, nothing at or below committed is ever truncated.
class RaftLog {
 public:
  // guard_commit=false lifts the never-truncate-below-commit assertion, so the planted bugs that
  // break it show up as divergent replicas for the simulator's checkers instead of an abort.
  RaftLog(const Storage* storage, Index committed, Index applied, bool guard_commit = true);

  Index first_index() const;
  Index last_index() const;
  // The last index of the prefix that is durable here: entries still unstable are not (storage may
  // hold stale ones at their indexes), nor is anything behind a snapshot not yet persisted.
  Index persisted_last() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  // Term of entry i: kOutOfRange when compacted, kNotFound when past the end.
  Result<Term> term(Index i) const;
  Term last_term() const;
  Term term_or_zero(Index i) const;
  bool match_term(Index i, Term t) const;
  // The Raft election restriction: is (last_term, last_index) at least as up to date as ours?
  bool is_up_to_date(Index last_index, Term last_term) const;
  Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const;
  // The largest i <= index whose term is <= term (or whose term is unknown: compacted). Used to
  // skip a whole run of conflicting entries per append round trip instead of one entry.
  Index find_conflict_by_term(Index index, Term term) const;

  // Follower append. Returns the last new index, or nullopt when prev does not match.
  // check_prev_term=false plants bugs.accept_mismatched_prev_term.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                    const std::vector<Entry>& ents, bool check_prev_term);
  // Leader append of new entries at the tail.
  Index append(const std::vector<Entry>& ents);
  void commit_to(Index i);
  // Installs a snapshot: the whole log becomes the snapshot.
  void restore(const Snapshot& snap);

  // Ready plumbing.
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  // Next entries to apply, bounded by max_bytes; up to `limit` (committed, or last under a bug).
  std::vector<Entry> next_entries_to_apply(Index limit, uint64_t max_bytes) const;
  bool has_entries_to_apply(Index limit) const;
  void stable_to(Index i, Term t);
  void stable_snapshot_to(Index i);
  void applied_to(Index i);

 private:
  Index unstable_last() const;
  void truncate_and_append(const std::vector<Entry>& ents);

  const Storage* storage_;
  // Entries from unstable_offset_ on are owned here until the shell persisted them; storage may
  // still hold stale entries at those indexes (a conflicting suffix being replaced).
  std::vector<Entry> unstable_;
  Index unstable_offset_;
  std::optional<Snapshot> unstable_snapshot_;
  Index committed_;
  Index applied_;
  bool guard_commit_;
};

}  // namespace tally::raft
