// One read pass over a log directory (docs/wal-format.md, "Reading: recovery"): every segment in
// sequence order, every record checked. recover() and truncate_at() classify what it finds. Private
// to host/wal.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/wal/record.h"

namespace tally::wal {

// (segment sequence number, offset): log order.
using LogPos = std::pair<uint64_t, uint64_t>;

struct ScanBad {
  LogPos pos;
  std::string file;
  bool group_known = false;
  uint32_t group = 0;
  std::string what;
};

struct ScanSegment {
  uint64_t seq = 0;
  std::string path;
  uint64_t size = 0;
  uint64_t data_end = 0;  // past its last non-zero byte, rounded up to 8
};

struct ScanResult {
  std::vector<ScanSegment> segments;
  std::vector<ScanBad> bad;
  // Valid-looking records found past a bad or zeroed header in the same segment: not served.
  std::vector<std::pair<LogPos, uint32_t>> hits;
  std::map<uint32_t, LogPos> group_last;  // per group: its last valid record or hit
  bool any_valid = false;
  LogPos last_valid{0, 0};                // the last valid record or hit
};

using ScanFn = std::function<void(LogPos pos, const RecordFrame& f, std::string_view payload)>;

// Segment files of `dir` ("<20 digits>.wal"), sorted; other names are ignored. Missing dir: none.
Result<std::vector<uint64_t>> list_segments(Env& env, const std::string& dir);
// Calls `fn` for each valid record, in log order, and fills `out`.
Status scan_log(Env& env, const std::string& dir, const ScanFn& fn, ScanResult& out);
// Writes zeros over [from, to) of `path` and syncs it.
Status zero_range(Env& env, const std::string& path, uint64_t from, uint64_t to);

}  // namespace tally::wal
