// Partition snapshots of one shard (docs/snapshot-format.md). In the background (BGSAVE, or once the
// shard's log has grown by snapshot_log_bytes) one partition at a time is imaged in slices between
// commands and written through the reactor's file I/O; SAVE writes them all at once, blocking the
// shard as Redis's SAVE does. Each durable snapshot lets the shard's log drop what it covers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/store/image.h"
#include "host/store/snapshot_file.h"

namespace tally::server {

struct Shard;

// Bytes of entry records per background slice: the store walks this much between two commands
// (well under a millisecond; the figure is measured in docs/store.md).
inline constexpr size_t kSnapshotSliceBytes = 256 << 10;
// Snapshots kept per partition: the newest, and the one before it (the log after it is kept too
// until the newest is durable, so a damaged newest file still leaves a way back).
inline constexpr size_t kSnapshotsKept = 2;

class ShardSnapshots {
 public:
  ShardSnapshots(Env& env, Shard& shard, std::string dir);
  ~ShardSnapshots();

  // Snapshots every partition the shard holds, one after the other, in the background; `done` runs
  // on the shard's thread with the outcome. False when a background snapshot is already running.
  bool start(std::function<void(Status)> done);
  bool running() const { return job_ != nullptr || !queue_.empty(); }
  // SAVE: every partition now, on this thread.
  Status save_now();

  uint64_t last_save_ms() const { return last_save_ms_; }
  const Status& last_status() const { return last_status_; }
  uint64_t snapshots_written() const { return written_; }
  uint64_t last_duration_ms() const { return last_duration_ms_; }

 private:
  struct Job;
  void next_partition();
  void slice();
  void finish(Status st);
  store::SnapshotMeta meta_of(uint32_t p) const;
  // After partition p's snapshot at `index` is durable: the log drops what it covers, old files go.
  void snapshot_durable(uint32_t p, uint64_t index);

  Env& env_;
  Shard& shard_;
  std::string dir_;
  std::vector<uint32_t> queue_;  // partitions still to snapshot in this round
  std::unique_ptr<Job> job_;
  std::function<void(Status)> round_done_;
  Status round_status_;
  uint64_t round_start_ms_ = 0;
  uint64_t last_save_ms_ = 0;
  uint64_t last_duration_ms_ = 0;
  Status last_status_;
  uint64_t written_ = 0;
  std::map<uint32_t, uint64_t> last_index_;  // each partition's newest durable snapshot this run
};

}  // namespace tally::server
