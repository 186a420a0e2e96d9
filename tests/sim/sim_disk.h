// Simulated per-(node, group) disk: what the Raft core reads (live) and what survives a crash
// (durable). Writes are records that become durable on sync; a crash keeps a random prefix of
// the unsynced ones, the last of which may be torn and is then discarded like a bad checksum.
#pragma once

#include <optional>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/raft/storage.h"

namespace tally::sim {

class SimDisk {
 public:
  // Unsynced records kept before the shell must sync; the shell syncs every Ready that asks,
  // so this only bounds a runaway loop.
  static constexpr size_t kUnsyncedRecordsMax = 4096;

  raft::MemoryStorage& live() { return live_; }
  const raft::MemoryStorage& live() const { return live_; }

  // One Ready's writes, in the order the Ready contract names: snapshot, entries, hard state.
  Status write(const std::optional<raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state);
  // Membership as applied; written and synced at once, as the shell stores it with the apply.
  void write_conf(const raft::ConfState& conf);
  void sync();
  // Snapshot of the state machine at `index` (already applied, hence durable), then drop the
  // log through `compact_to` <= index. Done on both views at once, like an fsynced snapshot file.
  Status snapshot_and_compact(raft::Index index, const raft::ConfState& conf, const std::string& data,
                              raft::Index compact_to);
  // Crash: drop a random suffix of the unsynced records and rebuild the live view from disk.
  void crash(Rng& rng);
  size_t unsynced() const { return unsynced_.size(); }

 private:
  struct Record {
    std::optional<raft::Snapshot> snapshot;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
  };
  static Status apply(raft::MemoryStorage& storage, const Record& r);

  raft::MemoryStorage live_;
  raft::MemoryStorage durable_;
  std::vector<Record> unsynced_;
};

}  // namespace tally::sim
