// A shard's durability: its write-ahead log (host/wal) carried by its reactor (io_uring writes linked
// to fdatasync), the group log every partition's replica group persists through, the state machine
// and transport those groups use, and the disk-fault states (docs/wal-format.md, "Disk faults").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/common/env.h"
#include "host/net/reactor.h"
#include "host/replication/group/group.h"
#include "host/replication/group/wal_log.h"
#include "host/wal/log.h"

namespace tally::server {

struct Shard;

// wal::LogIo over a shard's reactor: never blocks the shard's thread.
class ReactorLogIo final : public wal::LogIo {
 public:
  explicit ReactorLogIo(net::Reactor& reactor) : reactor_(reactor) {}
  void write(File& file, uint64_t offset, std::string_view bytes, bool sync, wal::Done done) override;
  void sync(File& file, wal::Done done) override;
  void run_blocking(std::function<Status()> work, wal::Done done) override;

 private:
  net::Reactor& reactor_;
};

enum class Durability : uint8_t { kNone, kFsync, kInterval };
Durability parse_durability(const std::string& text);  // validated by the config
const char* durability_name(Durability d);

// The groups' state machine and transport on one shard: committed entries go to the partition they
// belong to; messages go to the other replicas (a cluster member) or nowhere (a single node).
class ShardReplication final : public group::StateMachine, public group::Transport {
 public:
  explicit ShardReplication(Shard& shard) : shard_(shard) {}
  void apply(uint32_t group, const raft::Entry& entry) override;
  void applied_to(uint32_t group, raft::Index index) override;
  void read_ready(uint32_t group, const raft::ReadState& rs) override;
  void read_failed(uint32_t group, const std::string& context) override;
  // A snapshot from the leader, already durable as the partition's newest snapshot file: the
  // partition's store becomes its image (a cluster member).
  void restore(uint32_t group, const raft::Snapshot& snapshot) override;
  // On a cluster member, to the group's replicas on other nodes; a single node has no peers.
  void send(uint32_t group, std::vector<raft::Message> messages) override;

 private:
  Shard& shard_;
};

// Segments found at a start beyond which the shard snapshots at once (see ShardLog::note_recovered).
inline constexpr uint64_t kSegmentsBeforeSnapshot = 4;

class ShardLog {
 public:
  // A log in `dir` for appending after recovery (`next_seq` from it).
  static Result<std::unique_ptr<ShardLog>> open(Env& env, Shard& shard, const std::string& dir, uint64_t next_seq,
                                                Durability mode, uint64_t segment_bytes);
  ~ShardLog();

  group::GroupLog& group_log() { return *group_log_; }
  group::WalGroupLog& wal_group_log() { return *group_log_; }
  wal::Log& log() { return *log_; }
  Durability mode() const { return mode_; }

  // End of a loop iteration: the groups proposed to get their Readys into the batch, and the batch goes.
  void end_of_iteration();
  // The shard's tick: retries a failed log; interval mode syncs when due.
  // Snapshot installs that failed on this shard's disk are tried again (every server tick).
  void retry_installs() { group_log_->retry_installs(); }
  void tick(uint64_t now_ms, uint64_t fsync_interval_ms);

  bool failed() const { return failed_; }
  const std::string& error_text() const { return error_text_; }
  uint64_t failures() const { return failures_; }
  uint64_t bytes_since_snapshot() const;
  void snapshot_taken() {
    bytes_at_snapshot_ = log_->stats().bytes;
    recovered_bytes_ = 0;
    snapshot_wanted_ = false;
  }
  // What the start read back from this shard's log: a long log (or many segments, each restart
  // starting a new one) asks for snapshots soon, so the segments it holds can go.
  void note_recovered(uint64_t bytes, uint64_t segments) {
    recovered_bytes_ = bytes;
    snapshot_wanted_ = segments > kSegmentsBeforeSnapshot;
  }
  bool snapshot_wanted() const { return snapshot_wanted_; }

 private:
  ShardLog(Shard& shard, Durability mode);
  void on_failure(const Status& st);

  Shard& shard_;
  Durability mode_;
  ReactorLogIo io_;
  std::unique_ptr<wal::Log> log_;
  std::unique_ptr<group::WalGroupLog> group_log_;
  bool failed_ = false;
  bool retrying_ = false;
  bool syncing_ = false;
  std::string error_text_;
  uint64_t failures_ = 0;
  uint64_t last_sync_ms_ = 0;
  uint64_t bytes_at_snapshot_ = 0;
  uint64_t recovered_bytes_ = 0;  // read back at the start and not yet covered by a snapshot
  bool snapshot_wanted_ = false;
};

}  // namespace tally::server
