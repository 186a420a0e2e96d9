#include "host/common/hlc.h"

#include <algorithm>

namespace tally {

std::string HlcStamp::to_string() const {
  return std::to_string(wall_ms) + "." + std::to_string(logical);
}

Hlc::Hlc(const Clock& clock, uint64_t max_skew_ms) : clock_(clock), max_skew_ms_(max_skew_ms) {
  TALLY_ASSERT(max_skew_ms > 0);
  last_ = HlcStamp{clock_.wall_ms(), 0};
}

// Returns the smallest stamp strictly after `candidate`'s logical slot; carries into the
// millisecond when the logical counter is exhausted.
HlcStamp Hlc::bump(HlcStamp candidate) const {
  if (candidate.logical >= kLogicalMax) return HlcStamp{candidate.wall_ms + 1, 0};
  return HlcStamp{candidate.wall_ms, candidate.logical + 1};
}

HlcStamp Hlc::now() {
  const uint64_t physical_ms = clock_.wall_ms();
  const HlcStamp before = last_;
  // Physical time ahead of every stamp seen: restart the counter. Otherwise (the clock
  // stalled or jumped back) keep the old wall part and count logically.
  last_ = physical_ms > last_.wall_ms ? HlcStamp{physical_ms, 0} : bump(last_);
  TALLY_ASSERT(last_ > before);
  TALLY_ASSERT(last_.logical <= kLogicalMax);
  return last_;
}

Result<HlcStamp> Hlc::update(HlcStamp remote) {
  const uint64_t physical_ms = clock_.wall_ms();
  if (remote.wall_ms > physical_ms + max_skew_ms_) {
    ++rejected_count_;
    return Status(Code::kOutOfRange, "hlc: remote stamp " + remote.to_string() +
                                         " is ahead of local physical time " +
                                         std::to_string(physical_ms) + " by more than " +
                                         std::to_string(max_skew_ms_) + " ms");
  }
  const HlcStamp before = last_;
  const HlcStamp newest = std::max(last_, remote);
  last_ = physical_ms > newest.wall_ms ? HlcStamp{physical_ms, 0} : bump(newest);
  TALLY_ASSERT(last_ > before);
  TALLY_ASSERT(last_ > remote);
  return last_;
}

}  // namespace tally
