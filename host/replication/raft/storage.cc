// MemoryStorage: the in-memory persisted log, snapshot and hard state.
#include "host/replication/raft/storage.h"

#include <algorithm>

namespace tally::raft {

MemoryStorage::MemoryStorage() { ents_.push_back(Entry{}); }

InitialState MemoryStorage::initial_state() const { return InitialState{hard_state_, conf_}; }

Index MemoryStorage::first_index() const { return ents_.front().index + 1; }

Index MemoryStorage::last_index() const { return ents_.front().index + ents_.size() - 1; }

Result<Term> MemoryStorage::term(Index i) const {
  const Index offset = ents_.front().index;
  if (i < offset) return Status(Code::kOutOfRange, "compacted");
  if (i - offset >= ents_.size()) return Status::not_found("unavailable: past the last index");
  TALLY_ASSERT(ents_[i - offset].index == i);
  return ents_[i - offset].term;
}

Result<std::vector<Entry>> MemoryStorage::entries(Index lo, Index hi, uint64_t max_bytes) const {
  TALLY_ASSERT(lo <= hi);
  const Index offset = ents_.front().index;
  if (lo <= offset) return Status(Code::kOutOfRange, "compacted");
  if (hi > last_index() + 1) return Status::not_found("unavailable: past the last index");
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset];
    bytes += entry_bytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  TALLY_ASSERT(lo == hi || !out.empty());
  return out;
}

Result<Snapshot> MemoryStorage::snapshot() const { return snapshot_; }

void MemoryStorage::set_hard_state(const HardState& hs) {
  // A persisted term never goes back; the commit index never does either.
  TALLY_ASSERT(hs.term >= hard_state_.term);
  TALLY_ASSERT(hs.commit >= hard_state_.commit);
  hard_state_ = hs;
}

Status MemoryStorage::append(const std::vector<Entry>& entries) {
  std::vector<Entry> copy = entries;
  return append(std::move(copy));
}

Status MemoryStorage::append(std::vector<Entry>&& entries) {
  if (entries.empty()) return Status::ok();
  const Index first = first_index();
  const Index last = entries.back().index;
  if (last < first) return Status::ok();  // entirely compacted already
  for (size_t i = 1; i < entries.size(); ++i) TALLY_ASSERT(entries[i].index == entries[i - 1].index + 1);
  // Skip the part already covered by the snapshot.
  size_t skip = 0;
  if (entries.front().index < first) skip = first - entries.front().index;
  const Index start = entries[skip].index;
  if (start > last_index() + 1) return Status::invalid("append leaves a gap in the log");
  const Index offset = ents_.front().index;
  ents_.resize(start - offset);
  ents_.insert(ents_.end(), std::make_move_iterator(entries.begin() + static_cast<std::ptrdiff_t>(skip)),
               std::make_move_iterator(entries.end()));
  TALLY_ASSERT(last_index() == last);
  return Status::ok();
}

Status MemoryStorage::apply_snapshot(const Snapshot& snap) {
  if (snap.metadata.index <= snapshot_.metadata.index && snapshot_.metadata.index != 0) {
    return Status(Code::kAlreadyExists, "snapshot out of date");
  }
  snapshot_ = snap;
  conf_ = snap.metadata.conf;
  ents_.clear();
  ents_.push_back(Entry{snap.metadata.term, snap.metadata.index, EntryType::kNormal, {}});
  if (hard_state_.commit < snap.metadata.index) hard_state_.commit = snap.metadata.index;
  TALLY_ASSERT(last_index() == snap.metadata.index);
  return Status::ok();
}

Result<Snapshot> MemoryStorage::create_snapshot(Index i, const ConfState& conf, std::string data) {
  if (i <= snapshot_.metadata.index) return Status(Code::kAlreadyExists, "snapshot out of date");
  if (i > last_index()) return Status::invalid("snapshot past the last index");
  const Index offset = ents_.front().index;
  snapshot_.metadata.index = i;
  snapshot_.metadata.term = ents_[i - offset].term;
  snapshot_.metadata.conf = conf;
  snapshot_.data = std::move(data);
  TALLY_ASSERT(snapshot_.metadata.term != 0);
  return snapshot_;
}

Status MemoryStorage::compact(Index i) {
  const Index offset = ents_.front().index;
  if (i <= offset) return Status(Code::kAlreadyExists, "already compacted");
  if (i > last_index()) return Status::invalid("compact past the last index");
  std::vector<Entry> kept;
  kept.reserve(ents_.size() - (i - offset));
  kept.push_back(Entry{ents_[i - offset].term, i, EntryType::kNormal, {}});
  kept.insert(kept.end(), ents_.begin() + static_cast<std::ptrdiff_t>(i - offset + 1), ents_.end());
  ents_ = std::move(kept);
  TALLY_ASSERT(first_index() == i + 1);
  return Status::ok();
}

}  // namespace tally::raft
