#include "host/server/snapshots.h"

#include <algorithm>

#include "host/common/log.h"
#include "host/server/shard.h"
#include "host/server/shard_log.h"

namespace tally::server {

namespace {

Status errno_status(int rc, const std::string& what) {
  if (rc == 0) return Status::ok();
  std::string msg = what + ": " + std::strerror(-rc);
  return -rc == ENOSPC ? Status::exhausted(std::move(msg)) : Status::io_error(std::move(msg));
}

store::ChecksumFn engine_checksum(Shard& shard) {
  offload::Engine* engine = shard.offload.get();
  return [engine](kernels::ChecksumBatch& b) {
    kernels::Batch batch;
    batch.op = kernels::Op::kChecksum;
    batch.checksum = b;
    return engine->run(batch);
  };
}

}  // namespace

// One partition's snapshot in progress.
struct ShardSnapshots::Job {
  uint32_t partition = 0;
  store::SnapshotMeta meta;
  std::string path;
  std::unique_ptr<File> file;
  std::unique_ptr<store::ImageWriter> image;
  std::unique_ptr<store::SnapshotWriter> writer;
  std::string filling;  // the next slice's bytes
  std::string writing;  // the slice being written (kept alive until its write completes)
  uint64_t offset = 0;
  bool done = false;    // the footer is in `filling`
};

ShardSnapshots::ShardSnapshots(Env& env, Shard& shard, std::string dir)
    : env_(env), shard_(shard), dir_(std::move(dir)) {}

ShardSnapshots::~ShardSnapshots() = default;

store::SnapshotMeta ShardSnapshots::meta_of(uint32_t p) const {
  Partition& part = *shard_.partitions[p];
  store::SnapshotMeta m;
  m.partition = p;
  m.first_slot = part.slots().first;
  m.last_slot = part.slots().last;
  m.index = part.group()->applied();
  m.term = part.group()->applied_term();
  m.membership = "voters=1";
  m.taken_at_ms = env_.wall_ms();
  return m;
}

bool ShardSnapshots::start(std::function<void(Status)> done) {
  if (running()) return false;
  // From a random partition on: a round cut short (a restart) must not leave the same partitions
  // without a snapshot every time, since each one's records pin the log's oldest segments.
  const size_t n = shard_.held.size();
  const size_t from = n == 0 ? 0 : shard_.rng.uniform(n);
  for (size_t k = 0; k < n; ++k) {
    const uint32_t p = shard_.held[(from + k) % n];
    Partition& part = *shard_.partitions[p];
    if (part.group() != nullptr && part.unavailable().empty()) queue_.push_back(p);
  }
  std::reverse(queue_.begin(), queue_.end());  // taken from the back
  round_done_ = std::move(done);
  round_status_ = Status::ok();
  round_start_ms_ = env_.wall_ms();
  next_partition();
  return true;
}

void ShardSnapshots::next_partition() {
  while (!queue_.empty()) {
    const uint32_t p = queue_.back();
    queue_.pop_back();
    Partition* part = shard_.partition(p);
    if (part == nullptr || part->group() == nullptr) continue;  // moved away meanwhile
    // Nothing applied since this partition's last snapshot: that one still covers it.
    if (auto it = last_index_.find(p); it != last_index_.end() && it->second == part->group()->applied()) {
      snapshot_durable(p, it->second);
      continue;
    }
    job_ = std::make_unique<Job>();
    Job& j = *job_;
    j.partition = p;
    // The image is the store as it is now: exactly the state at the group's applied index, since
    // entries are applied only between two turns of the loop.
    j.meta = meta_of(p);
    j.image = std::make_unique<store::ImageWriter>(part->store());
    j.meta.cas_counter = j.image->cas_counter();
    j.writer = std::make_unique<store::SnapshotWriter>(j.meta, engine_checksum(shard_));
    j.writer->header(j.filling);
    const std::string sdir = store::snapshot_dir(dir_, p);
    j.path = join_path(sdir, store::snapshot_file_name(j.meta.index, j.meta.term));
    // Creating the file touches the directory: off the shard's thread.
    auto opened = std::make_shared<std::unique_ptr<File>>();
    shard_.reactor->run_blocking(
        [this, sdir, tmp = j.path + ".tmp", opened]() -> int {
          Status st = env_.create_dirs(sdir);
          if (st.is_ok()) {
            auto f = env_.open_file(tmp, OpenMode::kCreate);
            if (f.is_ok()) st = (*f)->truncate(0);
            if (f.is_ok() && st.is_ok()) *opened = std::move(f).value();
            if (!f.is_ok()) st = f.status();
          }
          return st.is_ok() ? 0 : (st.code() == Code::kResourceExhausted ? -ENOSPC : -EIO);
        },
        [this, opened](int rc) {
          if (rc != 0) return finish(errno_status(rc, "snapshot: create " + job_->path + ".tmp"));
          job_->file = std::move(*opened);
          slice();
        });
    return;
  }
  // The round is over.
  job_.reset();
  last_status_ = round_status_;
  last_duration_ms_ = env_.wall_ms() - round_start_ms_;
  if (round_status_.is_ok()) {
    last_save_ms_ = env_.wall_ms();
    if (shard_.log != nullptr) shard_.log->snapshot_taken();
  }
  if (round_done_) {
    auto done = std::move(round_done_);
    done(round_status_);
  }
}

void ShardSnapshots::slice() {
  Job& j = *job_;
  const size_t start = store::SnapshotWriter::open_chunk(j.filling);
  j.done = j.image->step(j.filling, kSnapshotSliceBytes);
  Status st = j.writer->seal_chunk(j.filling, start);
  if (st.is_ok() && j.done) st = j.image->status();
  if (!st.is_ok()) return finish(std::move(st));
  if (j.done) j.writer->footer(j.image->entries(), j.filling);
  j.writing.swap(j.filling);
  j.filling.clear();
  const bool last = j.done;
  shard_.reactor->file_write(j.file->fd(), j.offset, j.writing, /*sync=*/last, [this, last](int rc) {
    if (rc != 0) return finish(errno_status(rc, "snapshot: write " + job_->path + ".tmp"));
    job_->offset += job_->writing.size();
    if (!last) {
      // The next slice runs after the commands that arrived meanwhile.
      shard_.reactor->post([this] {
        if (job_ != nullptr) slice();
      });
      return;
    }
    // Durable: give it its name, make the name durable, then the log may drop what it covers.
    shard_.reactor->run_blocking(
        [this, path = job_->path, dir = store::snapshot_dir(dir_, job_->partition)]() -> int {
          Status st = env_.rename_file(path + ".tmp", path);
          if (st.is_ok()) st = env_.sync_dir(dir);
          return st.is_ok() ? 0 : -EIO;
        },
        [this](int rc) {
          if (rc != 0) return finish(errno_status(rc, "snapshot: rename " + job_->path));
          finish(Status::ok());
        });
  });
}

void ShardSnapshots::finish(Status st) {
  TALLY_ASSERT(job_ != nullptr);
  const uint32_t p = job_->partition;
  const uint64_t index = job_->meta.index;
  if (st.is_ok()) {
    ++written_;
    last_index_[p] = index;
    snapshot_durable(p, index);
  } else {
    TALLY_LOG_ERROR("shard {}: snapshot of partition {} failed: {}", shard_.id, p, st.to_string());
    round_status_ = st;
    const std::string tmp = job_->path + ".tmp";
    job_->file.reset();
    shard_.reactor->run_blocking([this, tmp] { return env_.remove_file(tmp).is_ok() ? 0 : -EIO; }, [](int) {});
  }
  job_.reset();
  next_partition();
}

void ShardSnapshots::snapshot_durable(uint32_t p, uint64_t index) {
  if (shard_.log != nullptr) shard_.log->log().release(p, index);
  // Older snapshots beyond the kept ones go, off the shard's thread.
  shard_.reactor->run_blocking(
      [this, sdir = store::snapshot_dir(dir_, p)]() -> int {
        auto names = env_.list_dir(sdir);
        if (!names.is_ok()) return 0;
        std::vector<std::pair<uint64_t, std::string>> found;
        for (const std::string& n : *names) {
          uint64_t i = 0, t = 0;
          if (store::parse_snapshot_file_name(n, i, t)) found.emplace_back(i, n);
        }
        std::sort(found.rbegin(), found.rend());
        for (size_t k = kSnapshotsKept; k < found.size(); ++k) {
          static_cast<void>(env_.remove_file(join_path(sdir, found[k].second)));
        }
        return 0;
      },
      [](int) {});
}

Status ShardSnapshots::save_now() {
  if (running()) return Status::unavailable("a background save is in progress");
  const uint64_t t0 = env_.wall_ms();
  Status result = Status::ok();
  for (uint32_t p : shard_.held) {
    Partition& part = *shard_.partitions[p];
    if (part.group() == nullptr || !part.unavailable().empty()) continue;
    store::SnapshotMeta meta = meta_of(p);
    const std::string sdir = store::snapshot_dir(dir_, p);
    Status st = env_.create_dirs(sdir);
    const std::string path = join_path(sdir, store::snapshot_file_name(meta.index, meta.term));
    if (st.is_ok()) st = store::write_snapshot_sync(env_, path, meta, part.store(), engine_checksum(shard_));
    if (!st.is_ok()) {
      result = st;
      continue;
    }
    ++written_;
    last_index_[p] = meta.index;
    snapshot_durable(p, meta.index);
  }
  last_status_ = result;
  last_duration_ms_ = env_.wall_ms() - t0;
  if (result.is_ok()) {
    last_save_ms_ = env_.wall_ms();
    if (shard_.log != nullptr) shard_.log->snapshot_taken();
  }
  return result;
}

}  // namespace tally::server
