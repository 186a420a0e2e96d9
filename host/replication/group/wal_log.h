// The shard's write-ahead log as the GroupLog of every group the shard holds: persist() appends a
// Ready's records to the batch that is filling, and the shard calls flush() at the end of each loop
// iteration, so all the Readys of an iteration share one write and one fdatasync (group commit).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "host/replication/group/group.h"
#include "host/wal/log.h"

namespace tally::group {

class WalGroupLog final : public GroupLog {
 public:
  explicit WalGroupLog(wal::Log& log) : log_(log) {}

  void persist(uint32_t group, const raft::Ready& rd, std::function<void(Status)> done) override;

  // End of a loop iteration: writes the filled batch unless one is in flight (it goes when that
  // completes) or the log failed (retry() first).
  void flush();
  // After a failure: rewrites what is not known durable (wal::Log::retry); on success the groups
  // whose Readys were caught in it go on. `done` gets the outcome.
  void retry(std::function<void(Status)> done);
  bool failed() const { return log_.failed(); }
  // Called once per failed batch, before its groups hear of it (the shard answers their waiting writes).
  void set_failure_handler(std::function<void(const Status&)> fn) { on_failure_ = std::move(fn); }
  // A cluster member installs snapshots its leader sends: `fn` makes the snapshot durable (its file)
  // before the rest of the Ready is logged. Without one, an install is a bug. An install that fails
  // (a full or failing disk) holds its Ready until retry_installs() succeeds with it.
  void set_snapshot_installer(std::function<Status(uint32_t group, const raft::Snapshot&)> fn) {
    install_ = std::move(fn);
  }
  // Tries the failed snapshot installs again (the shard's tick); those that succeed go on to the log.
  void retry_installs();
  size_t installs_waiting() const { return installs_.size(); }
  // Callbacks waiting for a batch to be written.
  size_t waiting() const { return waiting_.size() + failed_.size(); }

 private:
  using Callback = std::function<void(Status)>;
  // A Ready waiting for its records: durable once every one of them is, so once the batch holding
  // its last record completes (a batch takes a prefix of the pending records, at most a segment).
  struct Waiting {
    uint64_t last_record = 0;  // its last record's position among the records appended so far
    Callback done;
  };
  void completed(Status st);
  // The Ready's records (entries, hard state) into the log; `done` once they are durable.
  void log_records(uint32_t group, const raft::Ready& rd, Callback done);
  struct PendingInstall {
    uint32_t group = 0;
    const raft::Ready* rd = nullptr;  // the group's, kept until `done` runs (GroupLog::persist)
    Callback done;
  };
  std::vector<PendingInstall> installs_;  // at most one per group: a group persists one Ready at a time

  wal::Log& log_;
  uint64_t appended_ = 0;        // records appended so far
  std::deque<Waiting> waiting_;  // Readys not yet durable, in append order
  std::vector<Callback> failed_;     // Readys of batches that failed: completed again after retry()
  bool retrying_ = false;
  std::function<void(const Status&)> on_failure_;
  std::function<Status(uint32_t, const raft::Snapshot&)> install_;
};

}  // namespace tally::group
