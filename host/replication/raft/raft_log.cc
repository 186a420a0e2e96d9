// RaftLog: stable log in Storage plus the unstable tail, commit and apply positions.
#include "host/replication/raft/raft_log.h"

#include <algorithm>

#include "host/replication/raft/mutant.h"

namespace tally::raft {

RaftLog::RaftLog(const Storage* storage, Index committed, Index applied, bool guard_commit)
    : storage_(storage),
      unstable_offset_(storage->last_index() + 1),
      committed_(committed),
      applied_(applied),
      guard_commit_(guard_commit) {
  TALLY_ASSERT(storage_ != nullptr);
  TALLY_ASSERT(applied_ <= committed_);
}

Index RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index + 1;
  return storage_->first_index();
}

Index RaftLog::unstable_last() const {
  if (!unstable_.empty()) return unstable_.back().index;
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index;
  return unstable_offset_ - 1;
}

Index RaftLog::last_index() const {
  if (!unstable_.empty() || unstable_snapshot_) return unstable_last();
  return storage_->last_index();
}

Index RaftLog::persisted_last() const {
  if (unstable_snapshot_) return 0;
  if (!unstable_.empty()) return std::min(unstable_offset_ - 1, storage_->last_index());
  return storage_->last_index();
}

Result<Term> RaftLog::term(Index i) const {
  if (unstable_snapshot_ && i == unstable_snapshot_->metadata.index) return unstable_snapshot_->metadata.term;
  if (unstable_snapshot_ && i < unstable_snapshot_->metadata.index) return Status(Code::kOutOfRange, "compacted");
  if (i >= unstable_offset_) {
    if (i > last_index()) return Status::not_found("past the last index");
    if (i - unstable_offset_ < unstable_.size()) return unstable_[i - unstable_offset_].term;
  }
  if (i == 0) return Term{0};
  return storage_->term(i);
}

Term RaftLog::term_or_zero(Index i) const {
  auto t = term(i);
  return t.is_ok() ? t.value() : 0;
}

Term RaftLog::last_term() const {
  auto t = term(last_index());
  TALLY_ASSERT(t.is_ok());
  return t.value();
}

bool RaftLog::match_term(Index i, Term t) const {
  auto got = term(i);
  return got.is_ok() && got.value() == t;
}

bool RaftLog::is_up_to_date(Index last_index, Term last_term) const {
  const Term ours = this->last_term();
  return last_term > ours || (last_term == ours && last_index >= this->last_index());
}

Result<std::vector<Entry>> RaftLog::entries(Index lo, Index hi, uint64_t max_bytes) const {
  TALLY_ASSERT(lo <= hi);
  if (lo < first_index()) return Status(Code::kOutOfRange, "compacted");
  if (hi > last_index() + 1) return Status::not_found("past the last index");
  std::vector<Entry> out;
  if (lo == hi) return out;
  uint64_t bytes = 0;
  if (lo < unstable_offset_) {
    auto stable = storage_->entries(lo, std::min(hi, unstable_offset_), max_bytes);
    if (!stable.is_ok()) return stable.status();
    out = std::move(stable.value());
    for (const Entry& e : out) bytes += entry_bytes(e);
    if (out.back().index + 1 < std::min(hi, unstable_offset_)) return out;  // byte limit reached
  }
  for (Index i = std::max(lo, unstable_offset_); i < hi; ++i) {
    const Entry& e = unstable_[i - unstable_offset_];
    bytes += entry_bytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  TALLY_ASSERT(!out.empty() && out.front().index == lo);
  return out;
}

Index RaftLog::find_conflict_by_term(Index index, Term term) const {
  TALLY_ASSERT(index <= last_index());
  // Bounded by index: each step moves one entry back and stops at the compaction point.
  for (Index i = index; i > 0; --i) {
    auto t = this->term(i);
    if (!t.is_ok() || t.value() <= term) return i;
  }
  return 0;
}

std::optional<Index> RaftLog::maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                           const std::vector<Entry>& ents, bool check_prev_term) {
  const bool prev_ok = check_prev_term ? match_term(prev_index, prev_term) : prev_index <= last_index();
  if (!prev_ok) return std::nullopt;
  const Index last_new = prev_index + ents.size();
  // The first entry that is new or conflicts; entries already present and matching are kept so a
  // stale or duplicated append never truncates what a later one added.
  size_t first_new = ents.size();
  for (size_t k = 0; k < ents.size(); ++k) {
    TALLY_ASSERT(ents[k].index == prev_index + 1 + k);
    const bool present = TALLY_MUTANT(no_truncate_on_conflict) ? ents[k].index <= last_index()
                                                               : match_term(ents[k].index, ents[k].term);
    if (!present) {
      first_new = k;
      break;
    }
  }
  if (TALLY_MUTANT(stale_append_truncates) && !ents.empty() && ents.back().index < last_index()) first_new = 0;
  if (first_new < ents.size()) {
    TALLY_ASSERT_MSG(!guard_commit_ || ents[first_new].index > committed_,
                     "raft: truncating at or below the commit index");
    truncate_and_append(std::vector<Entry>(ents.begin() + static_cast<std::ptrdiff_t>(first_new), ents.end()));
  }
  // Commit only what this append vouched for: entries past last_new may be stale, of another term.
  commit_to(std::min(leader_commit, TALLY_MUTANT(commit_past_vouched) ? last_index() : last_new));
  return last_new;
}

Index RaftLog::append(const std::vector<Entry>& ents) {
  if (ents.empty()) return last_index();
  TALLY_ASSERT(ents.front().index == last_index() + 1);
  TALLY_ASSERT(ents.front().index > committed_);
  truncate_and_append(ents);
  return last_index();
}

void RaftLog::truncate_and_append(const std::vector<Entry>& ents) {
  TALLY_ASSERT(!ents.empty());
  const Index first = ents.front().index;
  TALLY_ASSERT_MSG(!guard_commit_ || first > committed_, "raft: truncating at or below the commit index");
  if (first == unstable_offset_ + unstable_.size()) {
    // Plain append to the tail.
  } else if (first <= unstable_offset_) {
    // Replaces part of the stable log: the shell's append will overwrite its suffix from `first`.
    unstable_offset_ = first;
    unstable_.clear();
  } else {
    unstable_.resize(first - unstable_offset_);
  }
  unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  TALLY_ASSERT(unstable_.front().index == unstable_offset_);
}

void RaftLog::commit_to(Index i) {
  if (i <= committed_) return;  // the commit index never decreases
  TALLY_ASSERT_MSG(i <= last_index(), "raft: commit past the last index");
  committed_ = i;
}

void RaftLog::restore(const Snapshot& snap) {
  TALLY_ASSERT(snap.metadata.index > committed_);
  committed_ = snap.metadata.index;
  unstable_.clear();
  unstable_offset_ = snap.metadata.index + 1;
  unstable_snapshot_ = snap;
  TALLY_ASSERT(last_index() == snap.metadata.index);
}

std::vector<Entry> RaftLog::next_entries_to_apply(Index limit, uint64_t max_bytes) const {
  limit = std::min(limit, last_index());
  const Index lo = std::max(applied_ + 1, first_index());
  if (lo > limit) return {};
  auto ents = entries(lo, limit + 1, max_bytes);
  TALLY_ASSERT_MSG(ents.is_ok(), "raft: committed entries unavailable");
  return std::move(ents.value());
}

bool RaftLog::has_entries_to_apply(Index limit) const {
  limit = std::min(limit, last_index());
  return std::max(applied_ + 1, first_index()) <= limit;
}

void RaftLog::stable_to(Index i, Term t) {
  if (unstable_.empty() || i < unstable_offset_) return;
  const Index last = unstable_.back().index;
  if (i > last) return;
  // Entries replaced since the Ready was handed out are not stable yet.
  if (unstable_[i - unstable_offset_].term != t) return;
  unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(i - unstable_offset_ + 1));
  unstable_offset_ = i + 1;
}

void RaftLog::stable_snapshot_to(Index i) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata.index == i) unstable_snapshot_.reset();
}

void RaftLog::applied_to(Index i) {
  if (i <= applied_) return;
  applied_ = i;
}

}  // namespace tally::raft
