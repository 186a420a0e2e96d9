// Progress: what a leader knows of one follower's log (match, next, flow-control state), and
// Inflights, the window of appends sent to it but not yet acknowledged. Plain values, no I/O.
#pragma once

#include <cstdint>
#include <deque>

#include "host/replication/raft/types.h"

namespace tally::raft {

// Replication progress of one peer, as seen by the leader.
enum class ProgressState : uint8_t {
  kProbe = 0,      // one append at a time until the follower's match is found
  kReplicate = 1,  // streaming, bounded by the inflight window
  kSnapshot = 2,   // a snapshot is in flight; appends paused
};

const char* progress_state_name(ProgressState s);

// Bounds of one follower's window of unacknowledged appends (from Config).
struct FlowLimits {
  uint32_t msgs_max = 0;
  uint64_t entries_max = 0;
  uint64_t bytes_max = 0;
};

// Appends in flight to one follower, oldest first. Each slot is one message: its last index,
// how many entries and bytes it carried. Bounded by FlowLimits::msgs_max (a full window pauses
// sending), so it never grows past the configured maximum.
class Inflights {
 public:
  void add(Index last, uint64_t entries, uint64_t bytes);
  // The follower acknowledged everything through `index`: free every slot that ends there or before.
  void free_to(Index index);
  // Frees the oldest slot (a live follower with a full window lost an append).
  void free_first();
  void reset();

  uint32_t msgs() const { return static_cast<uint32_t>(slots_.size()); }
  uint64_t entries() const { return entries_; }
  uint64_t bytes() const { return bytes_; }
  bool full(const FlowLimits& limits) const;

 private:
  struct Slot {
    Index last = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };
  std::deque<Slot> slots_;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
};

struct Progress {
  Index match = 0;
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  bool learner = false;
  bool recent_active = false;  // heard from since the last check-quorum round
  bool probe_sent = false;     // kProbe: an append is outstanding
  Inflights inflights;         // kReplicate: appends sent and not yet acknowledged
  Index pending_snapshot = 0;  // kSnapshot: index of the snapshot sent
  uint32_t snapshot_wait_heartbeats = 0;  // kSnapshot: heartbeat responses since it was sent

  // Whether the leader must hold further appends to this peer.
  bool paused(const FlowLimits& limits) const;
  // Back to one append at a time from match + 1 (after a rejection, or a lost snapshot).
  void become_probe();
  // Streaming: the follower's match is known.
  void become_replicate();
  // A snapshot ending at `index` was sent; appends wait for its acknowledgement.
  void become_snapshot(Index index);
  // An append of `entries` entries and `bytes` bytes ending at `last` went out in kReplicate:
  // assume it arrives (a rejection or a heartbeat corrects the guess).
  void optimistic_update(Index last, uint64_t entries, uint64_t bytes);
};

}  // namespace tally::raft
