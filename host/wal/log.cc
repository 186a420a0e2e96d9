// The Log: batches, group commit, one write (and fdatasync) in flight, failures and the retry that
// rewrites what was not known durable (docs/wal-format.md, "Writing" and "Disk faults").
#include "host/wal/log.h"

#include <algorithm>

#include "host/common/log.h"
#include "host/wal/log_impl.h"

namespace tally::wal {

void LogBatch::append_records(const LogBatch& from, size_t first, size_t last) {
  TALLY_ASSERT(first <= last && last <= from.recs.size());
  if (first == last) return;
  const uint64_t base = from.recs[first].offset;
  const uint64_t end = last < from.recs.size() ? from.recs[last].offset : from.bytes.size();
  const uint64_t at = bytes.size();
  bytes.append(from.bytes, base, end - base);
  for (size_t i = first; i < last; ++i) {
    LogRecord r = from.recs[i];
    r.offset = r.offset - base + at;
    recs.push_back(r);
  }
}

void LogBatch::drop_front(size_t n) {
  TALLY_ASSERT(n <= recs.size());
  if (n == recs.size()) {
    clear();
    return;
  }
  const uint64_t base = recs[n].offset;
  bytes.erase(0, base);
  recs.erase(recs.begin(), recs.begin() + static_cast<std::ptrdiff_t>(n));
  for (LogRecord& r : recs) r.offset -= base;
}

void Log::Impl::append(const RecordHeader& h, std::string_view payload) {
  TALLY_ASSERT(payload.size() <= kPayloadBytesMax);
  LogRecord r;
  r.no = next_rec_no++;
  r.offset = fill.bytes.size();
  r.type = h.type;
  r.group = h.group;
  r.index = h.index;
  // The segment number is set when the batch's segment is known (submit_write).
  encode_record(h, 0, payload, fill.bytes);
  fill.recs.push_back(r);
  if (h.type == RecordType::kHardState) {
    auto vote = decode_vote(payload);
    TALLY_ASSERT_MSG(vote.is_ok(), "wal: a hard state's payload is its 8-byte vote");
    KnownHardState& hs = hard_states[h.group];
    hs.header = h;
    hs.vote = *vote;
    hs.rec_no = r.no;
  }
}

bool Log::Impl::flush(Done done) {
  if (out_taken || failed) return false;
  if (fill.empty()) {
    done(Status::ok());
    return true;
  }
  // A batch fits one segment (a record larger than a segment goes alone) and one checksum batch.
  const uint64_t capacity = opt.segment_bytes - kSegmentHeaderBytes;
  size_t n = 0;
  uint64_t bytes = 0;
  while (n < fill.recs.size() && n < kBatchRecordsMax) {
    const uint64_t end = n + 1 < fill.recs.size() ? fill.recs[n + 1].offset : fill.bytes.size();
    const uint64_t rec_bytes = end - fill.recs[n].offset;
    if (n > 0 && bytes + rec_bytes > capacity) break;
    bytes += rec_bytes;
    ++n;
    if (bytes > capacity) break;
  }
  TALLY_ASSERT(out.empty());
  if (n == fill.recs.size()) {
    std::swap(out, fill);
  } else {
    out.append_records(fill, 0, n);
    fill.drop_front(n);
  }
  out_done = std::move(done);
  out_taken = true;
  pump();
  return true;
}

void Log::Impl::sync_now(Done done) {
  if (failed) {
    done(failure);
    return;
  }
  if (op == IoOp::kNone && kept.empty()) {
    done(Status::ok());
    return;
  }
  TALLY_ASSERT(sync_waiters.size() < kSyncWaitersMax);
  sync_waiters.push_back(std::move(done));
  pump();
}

void Log::Impl::retry(Done done) {
  if (retrying) {
    done(Status::unavailable("wal: a retry is already running"));
    return;
  }
  if (!failed && !out_of_space) {
    done(Status::ok());
    return;
  }
  retrying = true;
  retry_done = std::move(done);
  pump();
}

// Completions (inline ones included) and user callbacks may ask for more work while a round runs;
// they set pump_again instead of nesting.
void Log::Impl::pump() {
  if (pumping) {
    pump_again = true;
    return;
  }
  pumping = true;
  uint32_t rounds = 0;
  do {
    TALLY_ASSERT(++rounds < kPumpRoundsMax);
    pump_again = false;
    pump_once();
  } while (pump_again);
  pumping = false;
}

void Log::Impl::pump_once() {
  if (op != IoOp::kNone) return;
  if (retrying) {
    step_retry();
    return;
  }
  if (failed) return;
  if (out_taken) {
    step_batch();
    if (op != IoOp::kNone) return;
  }
  if (!sync_waiters.empty()) {
    if (!kept.empty()) {
      submit_sync();
      return;
    }
    std::vector<Done> waiters;
    waiters.swap(sync_waiters);
    for (Done& d : waiters) d(Status::ok());
  }
}

bool Log::Impl::sync_for(const LogBatch& b) const {
  return opt.sync_each_batch || kept.bytes.size() + b.bytes.size() > kUnsyncedBytesMax;
}

void Log::Impl::step_batch() {
  const uint64_t need = out.bytes.size();
  if (cur && cur_offset + need <= cur_bytes) {
    submit_write(IoOp::kBatch, out, sync_for(out));
    return;
  }
  // Interval mode: the segment left behind is made durable first, so everything not yet synced
  // lies in the current segment.
  if (cur && !kept.empty()) {
    submit_sync();
    return;
  }
  if (!use_ready(kSegmentHeaderBytes + need)) {
    prepare(kSegmentHeaderBytes + need, false);
    return;
  }
  submit_write(IoOp::kBatch, out, sync_for(out));
}

void Log::Impl::step_retry() {
  if (dead) {
    TALLY_ASSERT(zero_left > 0 && zero_left <= dead_records.size());
    const auto [from, to] = dead_records[--zero_left];
    if (zeros.size() < to - from) zeros.assign(to - from, '\0');
    op = IoOp::kZero;
    op_sync = zero_left == 0;  // the writes before it reach the disk in order or not at all
    op_start_ns = env.monotonic_ns();
    io.write(*dead, from, std::string_view(zeros.data(), to - from), op_sync,
             [this](Status st) { on_zero_done(std::move(st)); });
    return;
  }
  if (!failed) {
    // Out of space only: a prepared segment is all that was missing.
    if (ready) {
      retry_finished(Status::ok());
    } else {
      prepare(opt.segment_bytes, false);
    }
    return;
  }
  if (!cur && !use_ready(kSegmentHeaderBytes + kept.bytes.size())) {
    prepare(kSegmentHeaderBytes + kept.bytes.size(), false);
    return;
  }
  if (kept.empty()) {
    failed = false;
    failure = Status::ok();
    retry_finished(Status::ok());
    return;
  }
  submit_write(IoOp::kRewrite, kept, true);
}

void Log::Impl::submit_write(IoOp kind, LogBatch& b, bool sync) {
  TALLY_ASSERT(op == IoOp::kNone && cur != nullptr);
  TALLY_ASSERT(!b.empty() && cur_offset + b.bytes.size() <= cur_bytes);
  starts.clear();
  for (const LogRecord& r : b.recs) {
    set_record_segment(b.bytes.data() + r.offset, cur_seq);
    starts.push_back(r.offset);
  }
  sealer.seal(checksum, b.bytes.data(), b.bytes.size(), starts);
  place(b);
  op = kind;
  op_sync = sync;
  op_offset = cur_offset;
  op_bytes = b.bytes.size();
  op_start_ns = env.monotonic_ns();
  io.write(*cur, cur_offset, b.bytes, sync, [this](Status st) { on_write_done(std::move(st)); });
}

void Log::Impl::note_sync_latency() {
  const uint64_t ns = env.monotonic_ns() - op_start_ns;
  ++stats.syncs;
  stats.sync_ns_total += ns;
  stats.sync_ns_max = std::max(stats.sync_ns_max, ns);
}

void Log::Impl::on_write_done(Status st) {
  const IoOp kind = op;
  TALLY_ASSERT(kind == IoOp::kBatch || kind == IoOp::kRewrite);
  op = IoOp::kNone;
  LogBatch& b = kind == IoOp::kBatch ? out : kept;
  if (!st.is_ok()) {
    TALLY_LOG_ERROR("wal: write of {} bytes at {}:{} failed: {}", op_bytes, segment_path(dir, cur_seq), op_offset,
                    st.to_string());
    fail(st, op_offset + op_bytes);
    if (kind == IoOp::kRewrite) retry_finished(st);
    pump();
    return;
  }
  cur_offset += op_bytes;
  ++stats.batches;
  stats.records += b.recs.size();
  stats.bytes += op_bytes;
  if (op_sync) {
    note_sync_latency();
    cur_synced = cur_offset;
    if (kind == IoOp::kBatch) made_durable(kept);
    made_durable(b);
    if (kind == IoOp::kBatch) kept.clear();
  } else {
    TALLY_ASSERT(kind == IoOp::kBatch);
    kept.append_records(out, 0, out.recs.size());
  }
  if (kind == IoOp::kRewrite) {
    kept.clear();
    failed = false;
    failure = Status::ok();
    retry_finished(Status::ok());
  } else {
    Done done = std::move(out_done);
    out.clear();
    out_taken = false;
    done(Status::ok());
  }
  pump();
  maybe_release();
}

// Records become durable in append order, all in the current segment.
void Log::Impl::made_durable(const LogBatch& b) {
  if (b.empty()) return;
  TALLY_ASSERT(b.recs.back().no > durable_rec_no);
  durable_rec_no = b.recs.back().no;
  for (const LogRecord& r : b.recs) {
    if (r.type != RecordType::kHardState) continue;
    KnownHardState& hs = hard_states[r.group];
    hs.durable_rec_no = r.no;
    hs.durable_seq = cur_seq;
  }
}

void Log::Impl::on_zero_done(Status st) {
  TALLY_ASSERT(op == IoOp::kZero);
  op = IoOp::kNone;
  if (!st.is_ok()) {
    // Zero writes not followed by a successful sync prove nothing: start over next time.
    ++stats.failures;
    failure = st;
    zero_left = dead_records.size();
    retry_finished(st);
  } else if (zero_left == 0) {
    note_sync_latency();
    dead.reset();
    dead_records.clear();
    zeros = std::string();
  }
  pump();
}

void Log::Impl::submit_sync() {
  TALLY_ASSERT(op == IoOp::kNone && cur != nullptr);
  op = IoOp::kSync;
  op_sync = true;
  op_start_ns = env.monotonic_ns();
  io.sync(*cur, [this](Status st) { on_sync_done(std::move(st)); });
}

void Log::Impl::on_sync_done(Status st) {
  TALLY_ASSERT(op == IoOp::kSync);
  op = IoOp::kNone;
  if (!st.is_ok()) {
    TALLY_LOG_ERROR("wal: fdatasync of {} failed: {}", segment_path(dir, cur_seq), st.to_string());
    fail(st, cur_offset);
  } else {
    note_sync_latency();
    cur_synced = cur_offset;
    made_durable(kept);
    kept.clear();
    std::vector<Done> waiters;
    waiters.swap(sync_waiters);
    for (Done& d : waiters) d(Status::ok());
  }
  pump();
  maybe_release();
}

// Everything not known durable (kept, and the batch taken) is kept for the rewrite; what the current
// segment may hold of it, [cur_synced, written_to), is zeroed by the retry before the rewrite.
void Log::Impl::fail(Status st, uint64_t written_to) {
  TALLY_ASSERT(!st.is_ok());
  failed = true;
  failure = st;
  ++stats.failures;
  std::vector<Done> done;
  if (out_taken) {
    kept.append_records(out, 0, out.recs.size());
    out.clear();
    out_taken = false;
    done.push_back(std::move(out_done));
  }
  if (cur) {
    if (written_to > cur_synced) {
      // Kept records lie contiguously from cur_synced, as they were written.
      TALLY_ASSERT(dead == nullptr);
      dead = std::move(cur);
      dead_from = cur_synced;
      dead_to = written_to;
      dead_records.clear();
      for (size_t i = 0; i < kept.recs.size(); ++i) {
        const uint64_t from = dead_from + kept.recs[i].offset;
        if (from >= dead_to) break;
        const uint64_t end = i + 1 < kept.recs.size() ? kept.recs[i + 1].offset : kept.bytes.size();
        dead_records.emplace_back(from, std::min(dead_from + end, dead_to));
      }
      TALLY_ASSERT(!dead_records.empty());
      zero_left = dead_records.size();
    }
    cur.reset();
  }
  for (Done& d : sync_waiters) done.push_back(std::move(d));
  sync_waiters.clear();
  for (Done& d : done) d(st);
}

void Log::Impl::retry_finished(Status st) {
  TALLY_ASSERT(retrying);
  retrying = false;
  Done done = std::move(retry_done);
  if (st.is_ok()) TALLY_LOG_INFO("wal: {} writes again", dir);
  done(std::move(st));
}

Result<std::unique_ptr<Log>> Log::open(Env& env, LogIo& io, const std::string& dir, uint32_t shard, uint64_t next_seq,
                                       LogOptions options, ChecksumFn checksum) {
  if (options.segment_bytes < kSegmentBytesMin || options.segment_bytes > kSegmentBytesMax ||
      options.segment_bytes % kRecordAlignBytes != 0) {
    return Status::invalid("wal: segment_bytes must be a multiple of 8 in [64 KiB, 1 GiB]");
  }
  if (next_seq == 0) return Status::invalid("wal: segment numbers start at 1");
  TALLY_ASSERT(checksum != nullptr);
  TALLY_RETURN_IF_ERROR(env.create_dirs(dir));
  // The directory's own name must survive a crash as well as the segments in it.
  const size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) TALLY_RETURN_IF_ERROR(env.sync_dir(dir.substr(0, slash)));
  TALLY_RETURN_IF_ERROR(env.sync_dir(dir));
  auto impl = std::make_unique<Impl>(env, io, dir, shard, next_seq, options, std::move(checksum));
  Impl* p = impl.get();
  std::unique_ptr<Log> log(new Log(std::move(impl)));
  p->prepare(options.segment_bytes, true);
  return log;
}

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Log::~Log() = default;

void Log::adopt(const RecoveryResult& recovered) { impl_->adopt(recovered); }
void Log::append(const RecordHeader& h, std::string_view payload) { impl_->append(h, payload); }
bool Log::has_pending() const { return !impl_->fill.empty(); }
size_t Log::pending_records() const { return impl_->fill.recs.size(); }
bool Log::busy() const { return impl_->out_taken; }
bool Log::flush(Done done) { return impl_->flush(std::move(done)); }
void Log::sync_now(Done done) { impl_->sync_now(std::move(done)); }
bool Log::failed() const { return impl_->failed; }
const Status& Log::failure() const { return impl_->failure; }
void Log::retry(Done done) { impl_->retry(std::move(done)); }
bool Log::out_of_space() const { return impl_->out_of_space; }
void Log::release(uint32_t group, uint64_t index) { impl_->release(group, index); }
const LogStats& Log::stats() const { return impl_->stats; }
uint64_t Log::current_segment() const { return impl_->cur_seq; }

}  // namespace tally::wal
