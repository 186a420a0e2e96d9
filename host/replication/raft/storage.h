// Storage: the read-only view of the persisted log that the shell hands to the Raft core,
// and MemoryStorage, an in-memory implementation the shell (or a test) writes through.
#pragma once

#include <cstdint>
#include <vector>

#include "host/common/status.h"
#include "host/replication/raft/types.h"

namespace tally::raft {

// What a restarting node recovers: its hard state and its membership.
struct InitialState {
  HardState hard_state;
  ConfState conf;
};

// Errors: entries or terms below first_index() return Code::kOutOfRange ("compacted");
// above last_index() return Code::kNotFound; snapshot() may return Code::kUnavailable
// while one is being built (the core retries later).
// Thread-safety: the core calls it from the thread that owns the RawNode; the shell must not
// mutate it concurrently with a RawNode call.
class Storage {
 public:
  virtual ~Storage() = default;
  virtual InitialState initial_state() const = 0;
  // Entries [lo, hi), at least one if lo < hi, then as many as fit in max_bytes.
  virtual Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const = 0;
  // Term of entry i; first_index()-1 is answered from the snapshot metadata.
  virtual Result<Term> term(Index i) const = 0;
  virtual Index first_index() const = 0;  // first entry still in the log
  virtual Index last_index() const = 0;   // last entry (snapshot index when the log is empty)
  virtual Result<Snapshot> snapshot() const = 0;
};

// MemoryStorage keeps everything in memory; the shell applies each Ready to it in order:
// apply_snapshot, append(entries), set_hard_state. It never drops data on its own.
class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  InitialState initial_state() const override;
  Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> term(Index i) const override;
  Index first_index() const override;
  Index last_index() const override;
  Result<Snapshot> snapshot() const override;

  void set_hard_state(const HardState& hs);
  void set_conf(const ConfState& conf) { conf_ = conf; }
  const ConfState& conf() const { return conf_; }
  Index snapshot_index() const { return snapshot_.metadata.index; }
  // Appends entries, replacing any stored suffix that starts at entries.front().index.
  Status append(const std::vector<Entry>& entries);
  Status append(std::vector<Entry>&& entries);  // takes the entries' data (no copy)
  // Replaces the whole log with the snapshot; rejects one older than the current snapshot.
  Status apply_snapshot(const Snapshot& snap);
  // Records a snapshot of the applied state at index i (<= last applied) without compacting.
  Result<Snapshot> create_snapshot(Index i, const ConfState& conf, std::string data);
  // Drops entries up to and including i; i must be <= last_index().
  Status compact(Index i);

 private:
  HardState hard_state_;
  ConfState conf_;
  Snapshot snapshot_;
  // ents_[0] is a dummy holding the snapshot's index and term, so ents_ is never empty.
  std::vector<Entry> ents_;
};

}  // namespace tally::raft
