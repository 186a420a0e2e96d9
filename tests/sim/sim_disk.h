// The simulated disk of one node: the real write-ahead log (host/wal) over an in-memory file system
// that crashes like a disk (tests/support MemEnv) with injected faults (FaultEnv), one log shared by
// every group the node hosts, written through the production group log (group::WalGroupLog) — the
// node's groups persist into it and a group commit goes out at the end of each input, its I/O
// completing at once in simulated time. Beside the log, per group, the state machine's snapshots and
// the membership as applied, each durable when written. A crash drops the log and its I/O; what the
// file system keeps is read back by wal::recover and the replay rule (group::add_record).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/group/group.h"
#include "host/replication/group/start.h"
#include "host/replication/group/wal_log.h"
#include "host/wal/log.h"
#include "host/wal/log_io.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"

namespace tally::sim {

// Where a node's power goes out in the middle of a group commit.
enum class CrashPoint : uint8_t {
  kNone,
  kBeforeSync,  // the next write reaches the page cache, its fdatasync never runs
  kAfterSync,   // the next write is durable, nobody hears of it
};

// wal::LogIo completing every operation at once, in the simulation's time. At a crash point it stops:
// the operation in flight never completes (the process died), and neither does anything after it.
class SimLogIo final : public wal::LogIo {
 public:
  void crash_at(CrashPoint p) { at_ = p; }
  CrashPoint crash_point() const { return at_; }
  bool dead() const { return dead_; }
  void reset() {
    at_ = CrashPoint::kNone;
    dead_ = false;
  }
  // Planted bug (skip_fsync): writes complete without their fdatasync.
  bool skip_fsync = false;

  void write(File& file, uint64_t offset, std::string_view bytes, bool sync, wal::Done done) override;
  void sync(File& file, wal::Done done) override;
  void run_blocking(std::function<Status()> work, wal::Done done) override;

 private:
  CrashPoint at_ = CrashPoint::kNone;
  bool dead_ = false;
};

// Beside the log, per group: written durably at once (a file written, synced and renamed into place).
struct GroupFiles {
  std::optional<raft::Snapshot> snapshot;    // the newest durable snapshot of the state machine
  std::optional<raft::Snapshot> installing;  // sent by a leader: counts once its log record is durable
  std::optional<raft::ConfState> conf;       // membership as last applied (or installed)
};

// What a node's recovery found for one group.
struct RecoveredGroup {
  group::GroupStart start;                 // finished; start.unavailable: must not serve
  std::optional<raft::Snapshot> snapshot;  // the image at start.snapshot_index, when there is one
  std::optional<raft::ConfState> conf;     // the membership to start with (none: the configuration's)
};

struct NodeRecovery {
  std::map<uint32_t, RecoveredGroup> groups;  // every group asked for
  bool torn_tail = false;                     // a torn tail was truncated
  size_t corruptions = 0;                     // bad records that are not a torn tail
};

struct DiskStats {
  uint64_t failures = 0;         // writes, syncs or segment preparations that failed
  uint64_t retries = 0;          // successful retries after a failure
  uint64_t segments_deleted = 0;
  uint64_t batches = 0;
};

class NodeDisk {
 public:
  // Small segments, so logs roll and released segments are deleted within a run.
  static constexpr uint64_t kSegmentBytes = wal::kSegmentBytesMin;
  // Group commits in one flush(); each completion may let groups persist their next Ready.
  static constexpr uint32_t kFlushRoundsMax = 4096;
  // Damage picks one of this many records before the last (recent records matter most).
  static constexpr size_t kDamageWindow = 8;

  explicit NodeDisk(uint64_t seed);
  ~NodeDisk();

  // Opens the log for appending after recover() (or on an empty disk): adopts the segments the
  // recovery found and releases what snapshots cover, and the records of groups no longer hosted.
  void open(const std::set<uint32_t>& hosted);
  bool is_open() const { return log_ != nullptr; }
  group::GroupLog& group_log();
  SimLogIo& io() { return io_; }

  // The end of an input: group commits until nothing is appended (or the log failed or the I/O died),
  // then the releases asked for meanwhile.
  void flush();
  // The log failed (EIO, short write, no space): groups wait. retry() rewrites what was not known
  // durable (the shard's tick in tallyd); the groups then go on.
  bool failed() const { return failed_; }
  void retry();
  // Once `index` of `group` is in a durable snapshot, the log may delete what it covers (after flush).
  void release(uint32_t group, uint64_t index);

  GroupFiles& files(uint32_t group) { return files_[group]; }
  void save_snapshot(uint32_t group, raft::Snapshot snapshot);
  void save_conf(uint32_t group, const raft::ConfState& conf);
  void forget(uint32_t group) { files_.erase(group); }

  // Power loss: the log and its I/O are gone; the file system keeps what it synced and, of the rest,
  // what MemEnv's crash keeps (a prefix of each file's writes, the next one possibly torn).
  void crash(Rng& rng);
  // While down: damages one acknowledged record in the middle of the log — a bit flip, or a zeroed
  // header (a lost sector) — so that a valid record follows it. Returns what it did, or empty when the
  // log holds too few records.
  std::string damage(Rng& rng);
  // Reads the log back (truncating a torn tail) into a start for every group in `hosted`. A group
  // the recovery names unavailable gets start.unavailable; with `unknown_group_keeps_all`, a corrupt
  // record whose group is unknown (a bad header) makes every group unavailable, not only those with
  // records after it (host/wal's rule, which misses the damaged record's own group when that record
  // was its last).
  NodeRecovery recover(const std::set<uint32_t>& hosted, bool unknown_group_keeps_all);

  void inject(const testing::Fault& fault) { fault_.inject(fault); }
  void clear_faults() { fault_.clear_faults(); }
  DiskStats stats() const;

 private:
  class InstallLog;
  void completed_install(uint32_t group, raft::Index index);

  testing::MemEnv mem_;
  testing::FaultEnv fault_;
  SimLogIo io_;
  std::unique_ptr<wal::Log> log_;
  std::unique_ptr<group::WalGroupLog> wal_;
  std::unique_ptr<InstallLog> install_;
  std::map<uint32_t, GroupFiles> files_;
  std::vector<std::pair<uint32_t, uint64_t>> releases_;
  std::optional<wal::RecoveryResult> recovered_;  // adopted by the next open()
  bool failed_ = false;
  bool retrying_ = false;
  DiskStats stats_;  // of earlier incarnations of the log
};

}  // namespace tally::sim
