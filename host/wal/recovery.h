// Reading a shard's log back (docs/wal-format.md, "Reading: recovery"): every segment in sequence
// order, every record checked; torn tails told apart from corruption; corruption reported with file
// and offset and never served.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/wal/record.h"

namespace tally::wal {

enum class RecoverMode : uint8_t {
  kVerify,      // read only: report what is there (tallyctl wal verify)
  kRepairTail,  // truncate a torn tail (tallyd at start)
};

struct BadRecord {
  std::string file;        // the segment's path
  uint64_t offset = 0;     // the bad record's offset in it
  bool group_known = false;
  uint32_t group = 0;      // when group_known
  std::string what;        // "header checksum", "payload checksum", "length past end of file", ...
};

// What one segment holds, for a Log that goes on after the recovery (Log::adopt), so release() can
// delete segments written before the restart.
struct SegmentSummary {
  uint64_t seq = 0;
  std::map<uint32_t, uint64_t> max_index;  // per group: its highest entry index in the segment
  bool corrupt = false;                    // holds a corrupt record: kept for the operator
};

struct RecoveredHardState {
  uint64_t seq = 0;  // the segment holding it
  RecordHeader header;
  uint64_t vote = 0;
};

struct RecoveryResult {
  uint64_t segments = 0;
  uint64_t records = 0;        // valid records handed to the callback
  uint64_t bytes = 0;          // bytes of valid records
  uint64_t next_seq = 1;       // the sequence number a new segment takes
  std::optional<BadRecord> torn_tail;  // found (verify) or truncated (repair)
  std::vector<BadRecord> corruptions;  // never served
  // Groups that must stay unavailable, with the bad record that makes them so: the group of a bad
  // payload, and for a bad header (its group unknown) every group with a record in this log.
  std::map<uint32_t, BadRecord> unavailable;
  // A bad header hides its record's group, and that record may have been its group's only one here
  // (or its last: its newest vote). When set, every group this log serves stays unavailable, also
  // those with no record in `unavailable`; the caller knows which groups those are.
  std::optional<BadRecord> unknown_group;
  std::vector<SegmentSummary> segment_summaries;        // every segment, in sequence order
  std::map<uint32_t, RecoveredHardState> hard_states;   // each group's last valid hard state
};

// Calls `fn` for every valid record of the log in `dir`, in log order; the payload view lives only
// for the call. A missing or empty directory is an empty log. Records are handed out as written: a
// record a retry rewrote appears twice, and an entry may be followed by a later one at the same
// index; the consumer applies the replay rule (replay.h), under which the last one wins. Records
// found past a bad record header in the same segment are never handed out (their framing is not
// trusted); they count only as "a valid record follows" and for `unavailable`.
Result<RecoveryResult> recover(Env& env, const std::string& dir, RecoverMode mode,
                               const std::function<void(const RecordHeader&, std::string_view payload)>& fn);

// tallyctl wal truncate: cuts the log in `dir` at `segment_seq`:`offset` (the bad record named by
// recovery): that segment is zeroed from the offset on and later segments are deleted. Returns the
// number of valid records dropped (those after the cut).
Result<uint64_t> truncate_at(Env& env, const std::string& dir, uint64_t segment_seq, uint64_t offset);

// The path of segment `seq` in `dir`.
std::string segment_path(const std::string& dir, uint64_t seq);

}  // namespace tally::wal
