// The Log's segments: preparing them ahead of need off the shard's thread, switching to them, and
// deleting the oldest once nothing in them is needed (after re-appending hard states they hold).
#include <algorithm>

#include "host/common/log.h"
#include "host/wal/log_impl.h"

namespace tally::wal {

namespace {

// Off the shard's thread: a file with its final name, preallocated, its header written and synced,
// its name made durable. A failed preparation removes the file, so no half-made segment stays.
Status prepare_segment(Env& env, const std::string& dir, uint32_t shard, uint64_t seq, uint64_t bytes,
                       const std::string& discard, std::unique_ptr<File>& out) {
  if (!discard.empty()) {
    // A prepared segment too small for the record that needs one; it holds nothing.
    if (Status st = env.remove_file(discard); !st.is_ok() && st.code() != Code::kNotFound) {
      TALLY_LOG_WARN("wal: cannot remove unused segment {}: {}", discard, st.to_string());
    }
  }
  const std::string path = segment_path(dir, seq);
  auto file = env.open_file(path, OpenMode::kCreateNew);
  if (!file.is_ok()) return file.status();
  Status st = (*file)->allocate(bytes);
  if (st.is_ok()) st = (*file)->write_at(0, encode_segment_header(shard, seq));
  if (st.is_ok()) st = (*file)->sync();
  if (st.is_ok()) st = env.sync_dir(dir);
  if (!st.is_ok()) {
    file->reset();
    if (Status rm = env.remove_file(path); rm.is_ok()) (void)env.sync_dir(dir);
    return st;
  }
  out = std::move(*file);
  return Status::ok();
}

}  // namespace

void Log::Impl::prepare(uint64_t bytes, bool ahead) {
  bytes = std::max(bytes, opt.segment_bytes);
  if (preparing) {
    // Whoever waits now counts on this one: its failure is theirs.
    if (!ahead) prep_ahead = false;
    return;
  }
  if (ready && ready->bytes >= bytes) return;
  std::string discard;
  if (ready) {
    discard = segment_path(dir, ready->seq);
    ready.reset();
  }
  const uint64_t seq = next_seq++;
  preparing = true;
  prep_ahead = ahead;
  auto slot = std::make_shared<std::unique_ptr<File>>();
  io.run_blocking(
      [&env = env, dir = dir, shard = shard, seq, bytes, discard, slot] {
        return prepare_segment(env, dir, shard, seq, bytes, discard, *slot);
      },
      [this, seq, bytes, slot](Status st) { on_prepared(seq, bytes, std::move(*slot), std::move(st), prep_ahead); });
}

void Log::Impl::on_prepared(uint64_t seq, uint64_t bytes, std::unique_ptr<File> file, Status st, bool ahead) {
  TALLY_ASSERT(preparing && !ready);
  preparing = false;
  if (st.is_ok()) {
    TALLY_ASSERT(file != nullptr);
    ready = PreparedSegment{std::move(file), seq, bytes};
    out_of_space = false;
    ++stats.segments_created;
    pump();
    return;
  }
  ++stats.failures;
  out_of_space = st.code() == Code::kResourceExhausted;
  TALLY_LOG_WARN("wal: preparing {} failed: {}", segment_path(dir, seq), st.to_string());
  if (ahead) {
    // Started before anything needed it: whoever waits now asks for a fresh attempt of its own.
    pump();
    return;
  }
  if (retrying) {
    retry_finished(st);
  } else if (out_taken && op == IoOp::kNone && !failed) {
    // The batch was waiting for this segment.
    fail(st, cur_offset);
  }
  pump();
}

bool Log::Impl::use_ready(uint64_t bytes_needed) {
  if (!ready || ready->bytes < bytes_needed) return false;
  TALLY_ASSERT(kept.empty() || failed);
  cur = std::move(ready->file);
  cur_seq = ready->seq;
  cur_bytes = ready->bytes;
  cur_offset = kSegmentHeaderBytes;
  cur_synced = kSegmentHeaderBytes;
  ready.reset();
  TALLY_ASSERT(segments.empty() || segments.back().seq < cur_seq);
  segments.push_back(SegmentInfo{cur_seq, {}, false});
  prepare(opt.segment_bytes, true);
  return true;
}

void Log::Impl::place(const LogBatch& b) {
  TALLY_ASSERT(!segments.empty() && segments.back().seq == cur_seq);
  SegmentInfo& seg = segments.back();
  for (const LogRecord& r : b.recs) {
    if (r.type != RecordType::kEntry) continue;
    uint64_t& m = seg.max_index[r.group];
    m = std::max(m, r.index);
  }
}

void Log::Impl::adopt(const RecoveryResult& r) {
  TALLY_ASSERT(segments.empty() && next_rec_no == 1 && cur == nullptr);
  for (const SegmentSummary& s : r.segment_summaries) {
    TALLY_ASSERT(segments.empty() || segments.back().seq < s.seq);
    TALLY_ASSERT(s.seq < next_seq);
    segments.push_back(SegmentInfo{s.seq, s.max_index, s.corrupt});
  }
  for (const auto& [group, hs] : r.hard_states) hard_states[group] = KnownHardState{hs.header, hs.vote, 0, 0, hs.seq};
}

void Log::Impl::release(uint32_t group, uint64_t index) {
  uint64_t& r = released[group];
  r = std::max(r, index);
  maybe_release();
}

// Only the oldest segments go, in order, each removal synced before the next: whatever a crash keeps
// is a suffix of the log, so no entry an older segment overwrote can come back.
void Log::Impl::maybe_release() {
  if (failed || retrying || deleting || released.empty()) return;
  size_t n = 0;
  for (const SegmentInfo& s : segments) {
    if (cur && s.seq == cur_seq) break;
    if (s.pinned) break;
    const bool needed = std::any_of(s.max_index.begin(), s.max_index.end(), [&](const auto& gi) {
      auto it = released.find(gi.first);
      return it == released.end() || gi.second > it->second;
    });
    if (needed) break;
    ++n;
  }
  if (n == 0) return;
  const uint64_t last = segments[n - 1].seq;
  // A group whose newest durable hard state lies in the segments that go needs a durable copy
  // after them first: a newer one already on its way, or the same one appended again.
  bool wait = false;
  std::vector<KnownHardState> again;
  for (const auto& [group, hs] : hard_states) {
    if (hs.durable_seq == 0 || hs.durable_seq > last) continue;
    wait = true;
    if (hs.rec_no == hs.durable_rec_no) again.push_back(hs);
  }
  for (const KnownHardState& hs : again) append(hs.header, encode_vote(hs.vote));
  if (wait) return;  // looked at again as batches become durable

  std::vector<uint64_t> seqs;
  for (size_t i = 0; i < n; ++i) seqs.push_back(segments[i].seq);
  deleting = true;
  auto deleted = std::make_shared<size_t>(0);
  io.run_blocking(
      [&env = env, dir = dir, seqs, deleted] {
        for (uint64_t seq : seqs) {
          Status st = env.remove_file(segment_path(dir, seq));
          if (!st.is_ok() && st.code() != Code::kNotFound) return st;
          TALLY_RETURN_IF_ERROR(env.sync_dir(dir));
          ++*deleted;
        }
        return Status::ok();
      },
      [this, seqs, deleted](Status st) { on_deleted(seqs, *deleted, std::move(st)); });
}

void Log::Impl::on_deleted(const std::vector<uint64_t>& seqs, size_t deleted, Status st) {
  TALLY_ASSERT(deleting && deleted <= seqs.size());
  deleting = false;
  for (size_t i = 0; i < deleted; ++i) {
    TALLY_ASSERT(!segments.empty() && segments.front().seq == seqs[i]);
    segments.pop_front();
    ++stats.segments_deleted;
  }
  if (!st.is_ok()) {
    // Not a failure of the log: the segments stay and are tried again as the log goes on.
    TALLY_LOG_WARN("wal: deleting released segments of {} failed: {}", dir, st.to_string());
  }
}

}  // namespace tally::wal
