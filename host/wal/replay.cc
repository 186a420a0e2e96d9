// Replaying records into per-group entries and hard states (docs/wal-format.md, "Records").
#include "host/wal/replay.h"

namespace tally::wal {

Status Replay::add(const RecordHeader& h, std::string_view payload) {
  ReplayGroup& g = groups_[h.group];
  if (h.type == RecordType::kHardState) {
    auto vote = decode_vote(payload);
    if (!vote.is_ok()) return vote.status();
    g.hard_state = ReplayHardState{h.term, h.index, *vote};
    return Status::ok();
  }
  TALLY_ASSERT(h.type == RecordType::kEntry);
  g.entries.erase(g.entries.lower_bound(h.index), g.entries.end());
  g.entries.emplace(h.index, ReplayEntry{h.term, h.entry_type, std::string(payload)});
  return Status::ok();
}

}  // namespace tally::wal
