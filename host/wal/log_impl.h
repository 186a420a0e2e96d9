// The Log's state, shared by log.cc (batches and their I/O, failures and retry) and log_segments.cc
// (preparing segments, releasing and deleting them). Private to host/wal.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "host/wal/log.h"

namespace tally::wal {

// Interval mode: written bytes not yet synced, whose copies the log keeps for a rewrite. A batch that
// would pass it is written with an fdatasync.
inline constexpr uint64_t kUnsyncedBytesMax = uint64_t{64} << 20;
// Two checksum ranges per record: a batch's records fit one checksum batch.
inline constexpr size_t kBatchRecordsMax = kernels::kBatchItemsMax / 2;
inline constexpr size_t kSyncWaitersMax = 1024;
// Rounds of pump() in one call: each starts one operation or finds nothing to do.
inline constexpr uint32_t kPumpRoundsMax = 1u << 20;

struct LogRecord {
  uint64_t no = 0;      // append order, from 1: records reach the disk in this order
  uint64_t offset = 0;  // in its batch's bytes
  RecordType type = RecordType::kEntry;
  uint32_t group = 0;
  uint64_t index = 0;
};

// Encoded records, contiguous, with where each starts.
struct LogBatch {
  std::string bytes;
  std::vector<LogRecord> recs;

  bool empty() const { return recs.empty(); }
  void clear() {
    bytes.clear();
    recs.clear();
  }
  // Copies records [first, last) of `from` to the end.
  void append_records(const LogBatch& from, size_t first, size_t last);
  // Drops the first n records.
  void drop_front(size_t n);
};

struct SegmentInfo {
  uint64_t seq = 0;
  std::map<uint32_t, uint64_t> max_index;  // per group: its highest entry index here
  bool pinned = false;                     // holds a corrupt record: never deleted
};

// A group's latest hard state, and where its newest durable copy lies (which may be older).
struct KnownHardState {
  RecordHeader header;
  uint64_t vote = 0;
  uint64_t rec_no = 0;          // the latest; 0: written before this log was opened
  uint64_t durable_rec_no = 0;  // the newest durable copy
  uint64_t durable_seq = 0;     // its segment; 0: none
};

// The one operation in flight.
enum class IoOp : uint8_t { kNone, kBatch, kSync, kZero, kRewrite };

struct PreparedSegment {
  std::unique_ptr<File> file;
  uint64_t seq = 0;
  uint64_t bytes = 0;
};

struct Log::Impl {
  Impl(Env& env, LogIo& io, std::string dir, uint32_t shard, uint64_t next_seq, LogOptions options, ChecksumFn checksum)
      : env(env), io(io), dir(std::move(dir)), shard(shard), opt(options), checksum(std::move(checksum)),
        next_seq(next_seq) {}

  Env& env;
  LogIo& io;
  const std::string dir;
  const uint32_t shard;
  const LogOptions opt;
  const ChecksumFn checksum;
  LogStats stats;
  Sealer sealer;
  std::vector<uint64_t> starts;  // scratch for the sealer

  uint64_t next_rec_no = 1;
  uint64_t durable_rec_no = 0;  // every record up to this one is durable
  LogBatch fill;                // appended, waiting for flush()
  LogBatch out;                 // taken by flush(): waiting for its segment or being written
  Done out_done;
  bool out_taken = false;
  // Written but not yet synced (interval mode); after a failure, every record not known durable.
  LogBatch kept;

  IoOp op = IoOp::kNone;
  bool op_sync = false;
  uint64_t op_offset = 0;
  uint64_t op_bytes = 0;
  uint64_t op_start_ns = 0;
  bool pumping = false;
  bool pump_again = false;

  // The segment being written: durable up to cur_synced, written up to cur_offset.
  std::unique_ptr<File> cur;
  uint64_t cur_seq = 0;
  uint64_t cur_bytes = 0;
  uint64_t cur_offset = 0;
  uint64_t cur_synced = 0;

  std::optional<PreparedSegment> ready;  // prepared ahead of need
  bool preparing = false;
  bool prep_ahead = false;  // the preparation running was started before anything needed it
  uint64_t next_seq;
  bool out_of_space = false;

  bool failed = false;
  Status failure;
  // A failed write's segment, whose bytes [dead_from, dead_to) retry() zeroes before rewriting:
  // one record at a time from the last, so what a crash keeps of them is a prefix (a torn tail),
  // never a zeroed header with records after it.
  std::unique_ptr<File> dead;
  uint64_t dead_from = 0;
  uint64_t dead_to = 0;
  std::vector<std::pair<uint64_t, uint64_t>> dead_records;  // [from, to) of each record, in order
  size_t zero_left = 0;  // dead_records[0, zero_left) are still to be zeroed in this round
  std::string zeros;
  bool retrying = false;
  Done retry_done;

  std::vector<Done> sync_waiters;

  std::deque<SegmentInfo> segments;  // every segment written to, oldest first; cur is the last
  std::map<uint32_t, uint64_t> released;
  std::map<uint32_t, KnownHardState> hard_states;
  bool deleting = false;

  // log.cc
  void append(const RecordHeader& h, std::string_view payload);
  bool flush(Done done);
  void sync_now(Done done);
  void retry(Done done);
  void pump();
  void pump_once();
  void step_batch();
  void step_retry();
  bool sync_for(const LogBatch& b) const;
  void submit_write(IoOp kind, LogBatch& b, bool sync);
  void on_write_done(Status st);
  void on_zero_done(Status st);
  void submit_sync();
  void on_sync_done(Status st);
  void note_sync_latency();
  void made_durable(const LogBatch& b);
  void fail(Status st, uint64_t written_to);
  void retry_finished(Status st);

  // log_segments.cc
  void prepare(uint64_t bytes, bool ahead);
  void on_prepared(uint64_t seq, uint64_t bytes, std::unique_ptr<File> file, Status st, bool ahead);
  bool use_ready(uint64_t bytes_needed);
  void place(const LogBatch& b);
  void adopt(const RecoveryResult& r);
  void release(uint32_t group, uint64_t index);
  void maybe_release();
  void on_deleted(const std::vector<uint64_t>& seqs, size_t deleted, Status st);
};

}  // namespace tally::wal
