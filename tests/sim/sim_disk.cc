// MemoryDisk: the simulated disk as two in-memory logs, the page cache and the platter.
#include "tests/sim/sim_disk.h"

namespace tally::sim {

Status MemoryDisk::apply(raft::MemoryStorage& storage, const Record& r) {
  if (r.snapshot) TALLY_RETURN_IF_ERROR(storage.apply_snapshot(*r.snapshot));
  if (!r.entries.empty()) TALLY_RETURN_IF_ERROR(storage.append(r.entries));
  if (r.hard_state) storage.set_hard_state(*r.hard_state);
  return Status::ok();
}

Status MemoryDisk::write(const std::optional<raft::Snapshot>& snapshot, const std::vector<raft::Entry>& entries,
                      const std::optional<raft::HardState>& hard_state) {
  TALLY_ASSERT(unsynced_.size() < kUnsyncedRecordsMax);
  // Separate records for the entries and the hard state, so a crash can keep the first alone.
  if (snapshot || !entries.empty()) {
    Record r{snapshot, entries, std::nullopt};
    TALLY_RETURN_IF_ERROR(apply(live_, r));
    unsynced_.push_back(std::move(r));
  }
  if (hard_state) {
    Record r{std::nullopt, {}, hard_state};
    TALLY_RETURN_IF_ERROR(apply(live_, r));
    unsynced_.push_back(std::move(r));
  }
  TALLY_ASSERT(live_.last_index() >= durable_.last_index() || !unsynced_.empty());
  return Status::ok();
}

void MemoryDisk::write_conf(const raft::ConfState& conf) {
  live_.set_conf(conf);
  durable_.set_conf(conf);
}

void MemoryDisk::sync() {
  for (const Record& r : unsynced_) {
    Status st = apply(durable_, r);
    TALLY_ASSERT_MSG(st.is_ok(), "a record the live view accepted must apply to the durable one");
  }
  unsynced_.clear();
}

Status MemoryDisk::snapshot_and_compact(raft::Index index, const raft::ConfState& conf, const std::string& data,
                                     raft::Index compact_to) {
  TALLY_ASSERT(compact_to <= index);
  TALLY_ASSERT(unsynced_.empty());  // called between Readies, after their sync
  for (raft::MemoryStorage* s : {&live_, &durable_}) {
    Result<raft::Snapshot> snap = s->create_snapshot(index, conf, data);
    if (!snap.is_ok()) return snap.status();
    TALLY_RETURN_IF_ERROR(s->compact(compact_to));
  }
  return Status::ok();
}

void MemoryDisk::crash(Rng& rng) {
  // Keep a prefix: records [0, kept) reached the platter; the one after may be torn and is lost.
  const size_t kept = unsynced_.empty() ? 0 : rng.uniform(unsynced_.size() + 1);
  for (size_t i = 0; i < kept; ++i) {
    Status st = apply(durable_, unsynced_[i]);
    TALLY_ASSERT(st.is_ok());
  }
  unsynced_.clear();
  live_ = durable_;
  TALLY_ASSERT(live_.last_index() == durable_.last_index());
}

}  // namespace tally::sim
