// Hybrid logical clock: stamps that follow physical time yet order causally related events,
// used to order versions in eventual keyspaces (LWW by HLC, then node id).
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "host/common/clock.h"
#include "host/common/status.h"

namespace tally {

// An HLC stamp: wall milliseconds, then a logical counter that breaks ties inside one millisecond.
struct HlcStamp {
  uint64_t wall_ms = 0;
  uint32_t logical = 0;

  auto operator<=>(const HlcStamp&) const = default;
  bool operator==(const HlcStamp&) const = default;
  std::string to_string() const;
};

// Not thread-safe: one Hlc per shard (or per simulated node). Physical time comes from the
// injected Clock, so the simulator can jump and drift it.
class Hlc {
 public:
  // The logical counter never exceeds this; past it the stamp borrows the next millisecond,
  // which keeps stamps monotonic even when thousands of events share one millisecond.
  static constexpr uint32_t kLogicalMax = 0xFFFF;

  // max_skew_ms: a remote stamp more than this far ahead of our physical time is rejected,
  // so one node with a runaway clock cannot drag every other node's clock into the future.
  Hlc(const Clock& clock, uint64_t max_skew_ms);

  // Stamp for a local event or an outgoing message; strictly greater than every earlier stamp.
  HlcStamp now();

  // Merge a stamp received from a peer. Returns the new local stamp (greater than both),
  // or kOutOfRange when the remote stamp is too far ahead (the clock is left unchanged).
  Result<HlcStamp> update(HlcStamp remote);

  HlcStamp last() const { return last_; }
  uint64_t max_skew_ms() const { return max_skew_ms_; }
  uint64_t rejected_count() const { return rejected_count_; }

 private:
  HlcStamp bump(HlcStamp candidate) const;

  const Clock& clock_;
  uint64_t max_skew_ms_;
  HlcStamp last_;
  uint64_t rejected_count_ = 0;
};

}  // namespace tally
