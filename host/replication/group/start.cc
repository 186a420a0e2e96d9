#include "host/replication/group/start.h"

#include "host/common/assert.h"

namespace tally::group {

void add_record(GroupStart& start, const wal::RecordHeader& h, std::string_view payload, std::string_view where) {
  if (h.type == wal::RecordType::kHardState) {
    auto vote = wal::decode_vote(payload);
    if (vote.is_ok()) start.hard_state = raft::HardState{h.term, *vote, h.index};
    return;
  }
  TALLY_ASSERT(h.type == wal::RecordType::kEntry);
  if (h.index <= start.snapshot_index) {
    // Every entry held is above the snapshot, hence at or after h.index, and came earlier: dropped.
    // (A single writer appends in index order, so this only matters after a log was overwritten.)
    start.entries.clear();
    return;
  }
  const uint64_t first = start.snapshot_index + 1;
  if (h.index > first + start.entries.size()) {
    if (start.unavailable.empty()) {
      start.unavailable = "log gap: entry " + std::to_string(h.index) + " follows entry " +
                          std::to_string(first + start.entries.size() - 1) + " in " + std::string(where);
    }
    return;
  }
  // An entry at index i replaces whatever the log held from i on (Raft's append).
  start.entries.resize(h.index - first);
  start.entries.push_back(
      raft::Entry{h.term, h.index, static_cast<raft::EntryType>(h.entry_type), std::string(payload)});
}

void finish(GroupStart& start) {
  // Entries after the snapshot with a term below the snapshot's predate it (a replica that installed
  // a leader's snapshot keeps its older, divergent records on disk): they are not part of the log
  // the snapshot continues, and left in place they would make this log look older than it is in a
  // vote. Everything from the first of them goes.
  for (size_t i = 0; i < start.entries.size(); ++i) {
    if (start.entries[i].term < start.snapshot_term) {
      start.entries.resize(i);
      break;
    }
  }
  const uint64_t last = start.snapshot_index + start.entries.size();
  // A snapshot implies everything in it was committed; a commit past the log means lost entries.
  if (start.hard_state.commit < start.snapshot_index) start.hard_state.commit = start.snapshot_index;
  if (start.hard_state.term < start.snapshot_term) start.hard_state.term = start.snapshot_term;
  if (start.hard_state.commit > last && start.unavailable.empty()) {
    start.unavailable = "the log ends at entry " + std::to_string(last) + " but entry " +
                        std::to_string(start.hard_state.commit) + " was committed";
  }
}

Result<std::unique_ptr<raft::MemoryStorage>> make_storage(const GroupStart& start, const raft::ConfState& conf,
                                                          const raft::Snapshot* snapshot) {
  auto storage = std::make_unique<raft::MemoryStorage>();
  if (start.snapshot_index > 0) {
    raft::Snapshot snap;
    if (snapshot != nullptr) {
      TALLY_ASSERT(snapshot->metadata.index == start.snapshot_index && snapshot->metadata.term == start.snapshot_term);
      snap = *snapshot;
    } else {
      snap.metadata.index = start.snapshot_index;
      snap.metadata.term = start.snapshot_term;
      snap.metadata.conf = conf;
    }
    TALLY_RETURN_IF_ERROR(storage->apply_snapshot(snap));
  }
  if (!start.entries.empty()) TALLY_RETURN_IF_ERROR(storage->append(start.entries));
  storage->set_hard_state(start.hard_state);
  storage->set_conf(conf);
  return storage;
}

}  // namespace tally::group
