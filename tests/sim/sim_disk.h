// The simulated disk of one (node, group) replica: the seam between the node shell and storage.
// SimDisk is what the shell needs from a disk — write one Ready, sync, store membership, snapshot
// and compact, crash — and what the Raft core reads (storage()). MemoryDisk implements it with
// two MemoryStorages (what the core sees, and what survives a crash); a real WAL over a simulated
// file system (bit flips, torn records, lost unsynced membership) can replace it behind the same
// interface without touching the shell.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/raft/storage.h"

namespace tally::sim {

class SimDisk {
 public:
  virtual ~SimDisk() = default;

  // What the Raft core reads: everything written, synced or not (the page cache).
  virtual const raft::Storage& storage() const = 0;
  // One Ready's writes, in the order the Ready contract names: snapshot, entries, hard state.
  virtual Status write(const std::optional<raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
                       const std::optional<raft::HardState>& hard_state) = 0;
  // Membership as applied; the shell stores it with the apply.
  virtual void write_conf(const raft::ConfState& conf) = 0;
  virtual void sync() = 0;
  // Snapshot of the state machine at `index` (already applied, hence durable), then drop the
  // log through `compact_to` <= index.
  virtual Status snapshot_and_compact(raft::Index index, const raft::ConfState& conf, const std::string& data,
                                      raft::Index compact_to) = 0;
  // Crash: what was not synced may be lost; storage() then shows what survived.
  virtual void crash(Rng& rng) = 0;
  // Records written and not yet synced.
  virtual size_t unsynced() const = 0;
};

// Writes are records that become durable on sync; a crash keeps a random prefix of the unsynced
// ones, the last of which may be torn and is then discarded like a bad checksum.
class MemoryDisk final : public SimDisk {
 public:
  // Unsynced records kept before the shell must sync; the shell syncs every Ready that asks,
  // so this only bounds a runaway loop.
  static constexpr size_t kUnsyncedRecordsMax = 4096;

  const raft::Storage& storage() const override { return live_; }
  Status write(const std::optional<raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
               const std::optional<raft::HardState>& hard_state) override;
  // Written and synced at once, as the shell stores it with the apply.
  void write_conf(const raft::ConfState& conf) override;
  void sync() override;
  // Done on both views at once, like an fsynced snapshot file.
  Status snapshot_and_compact(raft::Index index, const raft::ConfState& conf, const std::string& data,
                              raft::Index compact_to) override;
  void crash(Rng& rng) override;
  size_t unsynced() const override { return unsynced_.size(); }

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
