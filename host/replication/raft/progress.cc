// Progress and Inflights: the leader's per-follower replication state and flow-control window.
#include "host/replication/raft/progress.h"

#include <algorithm>

#include "host/common/assert.h"

namespace tally::raft {

const char* progress_state_name(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  TALLY_UNREACHABLE();
}

void Inflights::add(Index last, uint64_t entries, uint64_t bytes) {
  TALLY_ASSERT(entries > 0);
  TALLY_ASSERT(slots_.empty() || slots_.back().last < last);
  slots_.push_back(Slot{last, entries, bytes});
  entries_ += entries;
  bytes_ += bytes;
}

void Inflights::free_to(Index index) {
  while (!slots_.empty() && slots_.front().last <= index) {
    TALLY_ASSERT(entries_ >= slots_.front().entries && bytes_ >= slots_.front().bytes);
    entries_ -= slots_.front().entries;
    bytes_ -= slots_.front().bytes;
    slots_.pop_front();
  }
}

void Inflights::free_first() {
  if (slots_.empty()) return;
  TALLY_ASSERT(entries_ >= slots_.front().entries && bytes_ >= slots_.front().bytes);
  entries_ -= slots_.front().entries;
  bytes_ -= slots_.front().bytes;
  slots_.pop_front();
}

void Inflights::reset() {
  slots_.clear();
  entries_ = 0;
  bytes_ = 0;
}

bool Inflights::full(const FlowLimits& limits) const {
  return msgs() >= limits.msgs_max || entries_ >= limits.entries_max || bytes_ >= limits.bytes_max;
}

bool Progress::paused(const FlowLimits& limits) const {
  switch (state) {
    case ProgressState::kProbe: return probe_sent;
    case ProgressState::kReplicate: return inflights.full(limits);
    case ProgressState::kSnapshot: return true;
  }
  TALLY_UNREACHABLE();
}

void Progress::become_probe() {
  state = ProgressState::kProbe;
  next = match + 1;
  probe_sent = false;
  inflights.reset();
  pending_snapshot = 0;
  snapshot_wait_heartbeats = 0;
  TALLY_ASSERT(next > match);
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = std::max(next, match + 1);
  probe_sent = false;
  pending_snapshot = 0;
  TALLY_ASSERT(next > match);
}

void Progress::become_snapshot(Index index) {
  TALLY_ASSERT(index > 0);
  state = ProgressState::kSnapshot;
  pending_snapshot = index;
  snapshot_wait_heartbeats = 0;
}

void Progress::optimistic_update(Index last, uint64_t entries, uint64_t bytes) {
  TALLY_ASSERT(state == ProgressState::kReplicate);
  TALLY_ASSERT(last >= next);
  next = last + 1;
  inflights.add(last, entries, bytes);
}

}  // namespace tally::raft
