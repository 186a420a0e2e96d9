// The write-ahead log of one shard (docs/wal-format.md): records of every group the shard holds,
// appended in batches — everything appended during one loop iteration goes out as one write (and one
// fdatasync in fsync mode), checksummed as one offload `checksum` batch. Single-threaded: the shard's
// thread owns it; LogIo carries the I/O off that thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/wal/log_io.h"
#include "host/wal/record.h"
#include "host/wal/recovery.h"
#include "host/wal/seal.h"

namespace tally::wal {

// The largest segment_bytes: a batch fits one segment, and one checksum batch's blob.
inline constexpr uint64_t kSegmentBytesMax = uint64_t{1} << 30;

struct LogOptions {
  uint64_t segment_bytes = kSegmentBytesDefault;
  // fsync mode: every batch's write is followed by an fdatasync before it completes. Off (interval
  // mode): a batch completes when written; sync_now() makes everything written durable.
  bool sync_each_batch = true;
};

struct LogStats {
  uint64_t batches = 0;          // batches written
  uint64_t records = 0;          // records written
  uint64_t bytes = 0;            // bytes written
  uint64_t syncs = 0;            // fdatasyncs completed (with batches or alone)
  uint64_t sync_ns_total = 0;    // time from submitting a synced write (or a sync) to its completion
  uint64_t sync_ns_max = 0;
  uint64_t segments_created = 0;
  uint64_t segments_deleted = 0;
  uint64_t failures = 0;         // writes, syncs or segment preparations that failed
};

class Log {
 public:
  // A log in `dir` (created when missing), for appending after recovery has read what is there: the
  // first batch goes to a new segment numbered after every existing one (`next_seq`, from the
  // recovery). `env` and `io` outlive the log.
  static Result<std::unique_ptr<Log>> open(Env& env, LogIo& io, const std::string& dir, uint32_t shard,
                                           uint64_t next_seq, LogOptions options, ChecksumFn checksum);
  // Destroying the log with I/O in flight is allowed only when the LogIo will never call back (a
  // simulated crash); the shell waits for its callbacks first.
  ~Log();

  // Takes over what recovery found in the existing segments (which groups' entries and hard states
  // they hold), so release() can delete them too. Before the first append.
  void adopt(const RecoveryResult& recovered);

  // Adds a record to the batch that is filling. Never blocks and never fails: the caller bounds what
  // it proposes.
  void append(const RecordHeader& h, std::string_view payload);
  // Records are waiting for flush().
  bool has_pending() const;
  // How many: a flush takes a prefix of them (at most a segment's worth), so a caller that tracks
  // whose records those are compares the count before and after.
  size_t pending_records() const;
  // A batch is being written (or is waiting for its segment).
  bool busy() const;
  // Writes the filled batch unless one is in flight: checksums, one write (+ fdatasync in fsync mode).
  // `done` runs once the batch is durable (fsync mode) or written (interval mode), or failed. Returns
  // false, and keeps the records, when a batch is already in flight (call again after its done) or
  // the log is failed (call again after retry() succeeded). A batch holds at most one segment's
  // worth of records (or one larger record); what does not fit waits for the next flush().
  bool flush(Done done);
  // fdatasync of everything written so far (interval mode's timer).
  void sync_now(Done done);

  // A failed write or sync leaves the log failed (docs/wal-format.md, "Disk faults"): nothing
  // completes until retry() has written every record not known durable into a fresh segment. So
  // does a batch whose segment could not be prepared. retry() first zeroes what the failed write may
  // have left in the old segment, so no torn copy there reads as corruption ahead of the rewrite.
  bool failed() const;
  const Status& failure() const;
  void retry(Done done);
  // The last segment preparation ran out of space (retry() tries again; so does the next batch that
  // needs a segment).
  bool out_of_space() const;

  // The records of `group` up to `index` are covered by a durable snapshot. Segments that hold no
  // record still needed are deleted (off thread); a group's latest hard state is re-appended first if
  // it lives in such a segment.
  void release(uint32_t group, uint64_t index);

  const LogStats& stats() const;
  uint64_t current_segment() const;

 private:
  struct Impl;
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::wal
