// recover() and truncate_at() (docs/wal-format.md, "Reading: recovery"): a torn tail is a bad record
// with nothing valid after it anywhere in the log; every other bad record is corruption.
#include "host/wal/recovery.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "host/common/log.h"
#include "host/wal/scan.h"

namespace tally::wal {

namespace {

BadRecord to_bad_record(const ScanBad& b) {
  return BadRecord{b.file, b.pos.second, b.group_known, b.group, b.what};
}

}  // namespace

std::string segment_path(const std::string& dir, uint64_t seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020" PRIu64 ".wal", seq);
  return join_path(dir, name);
}

Result<RecoveryResult> recover(Env& env, const std::string& dir, RecoverMode mode,
                               const std::function<void(const RecordHeader&, std::string_view payload)>& fn) {
  RecoveryResult r;
  ScanResult scan;
  std::map<uint64_t, SegmentSummary> summaries;
  Status st = scan_log(env, dir, [&](LogPos pos, const RecordFrame& f, std::string_view payload) {
    const RecordHeader h = f.header();
    ++r.records;
    r.bytes += record_bytes(f.payload_bytes);
    if (h.type == RecordType::kEntry) {
      uint64_t& m = summaries[pos.first].max_index[h.group];
      m = std::max(m, h.index);
    } else {
      r.hard_states[h.group] = RecoveredHardState{pos.first, h, *decode_vote(payload)};
    }
    fn(h, payload);
  }, scan);
  if (!st.is_ok()) return st;

  r.segments = scan.segments.size();
  r.next_seq = scan.segments.empty() ? 1 : scan.segments.back().seq + 1;
  std::sort(scan.bad.begin(), scan.bad.end(), [](const ScanBad& a, const ScanBad& b) { return a.pos < b.pos; });
  // The torn tail starts at the first bad record with nothing valid after it; earlier ones are corruption.
  std::map<uint64_t, uint64_t> torn_from;  // per segment: where its torn part starts
  for (const ScanBad& b : scan.bad) {
    if (!scan.any_valid || b.pos > scan.last_valid) {
      if (!r.torn_tail) r.torn_tail = to_bad_record(b);
      torn_from.emplace(b.pos.first, b.pos.second);
      continue;
    }
    r.corruptions.push_back(to_bad_record(b));
    summaries[b.pos.first].corrupt = true;
    if (b.group_known) {
      r.unavailable.emplace(b.group, r.corruptions.back());
    } else {
      // Not only the groups with records after it: the hidden record may have been a group's last.
      if (!r.unknown_group) r.unknown_group = r.corruptions.back();
      for (const auto& [group, last] : scan.group_last) r.unavailable.emplace(group, r.corruptions.back());
    }
  }
  for (const ScanSegment& seg : scan.segments) {
    SegmentSummary s = std::move(summaries[seg.seq]);
    s.seq = seg.seq;
    r.segment_summaries.push_back(std::move(s));
  }
  for (const BadRecord& b : r.corruptions) {
    TALLY_LOG_ERROR("wal: corruption at {}:{} ({}{}): never served", b.file, b.offset, b.what,
                    b.group_known ? ", group " + std::to_string(b.group) : ", group unknown");
  }
  if (r.torn_tail) {
    TALLY_LOG_WARN("wal: torn tail at {}:{} ({}){}", r.torn_tail->file, r.torn_tail->offset, r.torn_tail->what,
                   mode == RecoverMode::kRepairTail ? ": truncated" : "");
  }
  if (mode == RecoverMode::kRepairTail) {
    for (const ScanSegment& seg : scan.segments) {
      auto it = torn_from.find(seg.seq);
      if (it == torn_from.end()) continue;
      TALLY_RETURN_IF_ERROR(zero_range(env, seg.path, it->second, seg.data_end));
    }
  }
  return r;
}

Result<uint64_t> truncate_at(Env& env, const std::string& dir, uint64_t segment_seq, uint64_t offset) {
  if (offset % kRecordAlignBytes != 0 || (offset != 0 && offset < kSegmentHeaderBytes)) {
    return Status::invalid("wal: a record starts at offset 0 (the whole segment) or at a multiple of 8 from 64");
  }
  ScanResult scan;
  const LogPos cut{segment_seq, offset};
  uint64_t dropped = 0;
  Status st = scan_log(env, dir, [&](LogPos pos, const RecordFrame&, std::string_view) {
    if (pos >= cut) ++dropped;
  }, scan);
  if (!st.is_ok()) return st;
  for (const auto& hit : scan.hits) {
    if (hit.first >= cut) ++dropped;
  }
  auto seg = std::find_if(scan.segments.begin(), scan.segments.end(),
                          [&](const ScanSegment& s) { return s.seq == segment_seq; });
  if (seg == scan.segments.end()) return Status::not_found("wal: no segment " + std::to_string(segment_seq) + " in " + dir);
  if (offset > seg->size) return Status::invalid("wal: offset past the end of " + seg->path);
  // Later segments first, newest first, each removal synced; then the cut segment. Interrupted, the
  // command can run again with the same arguments.
  for (auto it = scan.segments.rbegin(); it != scan.segments.rend() && it->seq > segment_seq; ++it) {
    TALLY_RETURN_IF_ERROR(env.remove_file(it->path));
    TALLY_RETURN_IF_ERROR(env.sync_dir(dir));
  }
  TALLY_RETURN_IF_ERROR(zero_range(env, seg->path, offset, std::max(offset, seg->data_end)));
  TALLY_LOG_WARN("wal: {} cut at {}:{}: {} records dropped", dir, seg->path, offset, dropped);
  return dropped;
}

}  // namespace tally::wal
