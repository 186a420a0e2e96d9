#include "host/server/shard_log.h"

#include <cstring>

#include "host/common/log.h"
#include "host/server/cluster_node.h"
#include "host/server/server.h"
#include "host/server/shard.h"

namespace tally::server {

namespace {

Status errno_status(int rc, const char* what) {
  if (rc == 0) return Status::ok();
  const int err = -rc;
  std::string msg = std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::exhausted(std::move(msg));
  return Status::io_error(std::move(msg));
}

}  // namespace

// ---- ReactorLogIo ----

void ReactorLogIo::write(File& file, uint64_t offset, std::string_view bytes, bool sync, wal::Done done) {
  if (file.fd() < 0) {
    wal::InlineLogIo().write(file, offset, bytes, sync, std::move(done));
    return;
  }
  reactor_.file_write(file.fd(), offset, bytes, sync,
                      [done = std::move(done), sync](int rc) { done(errno_status(rc, sync ? "write+fdatasync" : "write")); });
}

void ReactorLogIo::sync(File& file, wal::Done done) {
  if (file.fd() < 0) {
    done(file.sync());
    return;
  }
  reactor_.file_sync(file.fd(), [done = std::move(done)](int rc) { done(errno_status(rc, "fdatasync")); });
}

void ReactorLogIo::run_blocking(std::function<Status()> work, wal::Done done) {
  // The work's Status crosses threads in a shared slot: the reactor's interface carries an int.
  auto result = std::make_shared<Status>();
  reactor_.run_blocking(
      [work = std::move(work), result] {
        *result = work();
        return 0;
      },
      [result, done = std::move(done)](int) { done(std::move(*result)); });
}

// ---- durability names ----

Durability parse_durability(const std::string& text) {
  if (text == "fsync") return Durability::kFsync;
  if (text == "interval") return Durability::kInterval;
  return Durability::kNone;
}

const char* durability_name(Durability d) {
  switch (d) {
    case Durability::kNone: return "none";
    case Durability::kFsync: return "fsync";
    case Durability::kInterval: return "interval";
  }
  TALLY_UNREACHABLE();
}

// ---- ShardReplication ----

void ShardReplication::apply(uint32_t group, const raft::Entry& entry) {
  Partition* p = shard_.partition(group);
  TALLY_ASSERT_MSG(p != nullptr, "an entry was applied for a partition this shard does not hold");
  p->apply(shard_, entry.index, entry.data);
}

void ShardReplication::applied_to(uint32_t group, raft::Index index) {
  if (Partition* p = shard_.partition(group)) p->applied_to(shard_, index);
}

void ShardReplication::read_ready(uint32_t group, const raft::ReadState& rs) {
  if (Partition* p = shard_.partition(group)) p->read_confirmed(shard_, rs.context, rs.index);
}

void ShardReplication::read_failed(uint32_t group, const std::string& context) {
  if (Partition* p = shard_.partition(group)) p->read_refused(shard_, context);
}

void ShardReplication::restore(uint32_t group, const raft::Snapshot& snapshot) {
  Partition* p = shard_.partition(group);
  TALLY_ASSERT_MSG(p != nullptr, "a snapshot was installed for a partition this shard does not hold");
  ClusterNode* cn = shard_.server->cluster_node();
  TALLY_ASSERT_MSG(cn != nullptr, "a single node's groups never receive a snapshot");
  cn->restore(shard_, *p, snapshot);
}

void ShardReplication::send(uint32_t group, std::vector<raft::Message> messages) {
  if (messages.empty()) return;
  ClusterNode* cn = shard_.server->cluster_node();
  TALLY_ASSERT_MSG(cn != nullptr, "a single node's groups have no peers to send to");
  cn->send(shard_, group, messages);
}

// ---- ShardLog ----

ShardLog::ShardLog(Shard& shard, Durability mode) : shard_(shard), mode_(mode), io_(*shard.reactor) {}

ShardLog::~ShardLog() = default;

Result<std::unique_ptr<ShardLog>> ShardLog::open(Env& env, Shard& shard, const std::string& dir, uint64_t next_seq,
                                                 Durability mode, uint64_t segment_bytes) {
  TALLY_ASSERT(mode != Durability::kNone);
  std::unique_ptr<ShardLog> sl(new ShardLog(shard, mode));
  wal::LogOptions options;
  options.segment_bytes = segment_bytes;
  options.sync_each_batch = mode == Durability::kFsync;
  offload::Engine* engine = shard.offload.get();
  // One checksum batch per group commit, run where the engine's cost model says.
  wal::ChecksumFn checksum = [engine](kernels::ChecksumBatch& b) {
    kernels::Batch batch;
    batch.op = kernels::Op::kChecksum;
    batch.checksum = b;
    return engine->run(batch);
  };
  auto log = wal::Log::open(env, sl->io_, dir, shard.id, next_seq, options, std::move(checksum));
  if (!log.is_ok()) return log.status();
  sl->log_ = std::move(log).value();
  sl->group_log_ = std::make_unique<group::WalGroupLog>(*sl->log_);
  ShardLog* self = sl.get();
  sl->group_log_->set_failure_handler([self](const Status& st) { self->on_failure(st); });
  sl->last_sync_ms_ = env.wall_ms();
  return sl;
}

void ShardLog::end_of_iteration() {
  shard_.process_dirty_groups();
  group_log_->flush();
}

void ShardLog::on_failure(const Status& st) {
  ++failures_;
  if (!failed_) {
    TALLY_LOG_ERROR("shard {}: write-ahead log failed: {}; refusing writes until it recovers", shard_.id, st.to_string());
  }
  failed_ = true;
  error_text_ = st.code() == Code::kResourceExhausted
                    ? "ERR disk full: writes are refused until the write-ahead log has room (" + st.message() + ")"
                    : "MISCONF Errors writing to the write-ahead log (" + st.message() +
                          "): writes are refused until the disk recovers";
  shard_.fail_waiting_writes(error_text_);
}

void ShardLog::tick(uint64_t now_ms, uint64_t fsync_interval_ms) {
  if (failed_ && !retrying_) {
    retrying_ = true;
    group_log_->retry([this](Status st) {
      retrying_ = false;
      if (st.is_ok()) {
        TALLY_LOG_WARN("shard {}: write-ahead log recovered; writes are accepted again", shard_.id);
        failed_ = false;
        error_text_.clear();
      }
    });
    return;
  }
  if (mode_ == Durability::kInterval && !failed_ && !syncing_ && now_ms - last_sync_ms_ >= fsync_interval_ms) {
    syncing_ = true;
    last_sync_ms_ = now_ms;
    log_->sync_now([this](Status st) {
      syncing_ = false;
      if (!st.is_ok()) on_failure(st);
    });
  }
}

uint64_t ShardLog::bytes_since_snapshot() const {
  return log_->stats().bytes - bytes_at_snapshot_ + recovered_bytes_;
}

}  // namespace tally::server
