// What a group starts from after a restart: the snapshot its state machine was restored to, and its
// records read back from the write-ahead log (in log order, by the replay rule of docs/wal-format.md),
// gathered into the hard state and entries its Raft storage starts with. tallyd's recovery and the
// simulator's restarts share it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"
#include "host/replication/raft/storage.h"
#include "host/replication/raft/types.h"
#include "host/wal/record.h"

namespace tally::group {

struct GroupStart {
  uint64_t snapshot_index = 0;  // the state machine holds the state at this index (set before add_record)
  uint64_t snapshot_term = 0;
  raft::HardState hard_state;
  std::vector<raft::Entry> entries;  // contiguous, from snapshot_index + 1
  std::string unavailable;           // why the group must not serve (a gap, corruption), or empty
};

// One record of the group, in log order. An entry at index i drops every entry the group held from i
// on (they came earlier in the log) and takes i: above the snapshot it becomes the last entry, at or
// below it only the drop remains (the snapshot covers it). An entry past the end of the log leaves a
// gap: the group is unavailable (`where` names the log in the message). A hard state replaces the
// group's; one whose payload is not a vote is skipped (recovery reports it as corruption).
void add_record(GroupStart& start, const wal::RecordHeader& h, std::string_view payload, std::string_view where);

// After the last record: the hard state covers the snapshot (its commit and term are at least the
// snapshot's), and a commit past the last entry means lost entries (unavailable).
void finish(GroupStart& start);

// Raft storage holding `start`: a snapshot at start.snapshot_index (`snapshot` when given — its
// index and term must match — otherwise one without data whose membership is `conf`), the entries,
// the hard state, and `conf` as the membership.
Result<std::unique_ptr<raft::MemoryStorage>> make_storage(const GroupStart& start, const raft::ConfState& conf,
                                                          const raft::Snapshot* snapshot = nullptr);

}  // namespace tally::group
