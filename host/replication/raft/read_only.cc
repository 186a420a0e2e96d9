// ReadOnly: heartbeat rounds, their acknowledgements and the reads waiting on them.
#include "host/replication/raft/read_only.h"

#include <algorithm>

#include "host/common/assert.h"

namespace tally::raft {

uint64_t ReadOnly::next_round(uint64_t now_ns) {
  ++round_;
  round_sent_ns_.emplace_back(round_, now_ns);
  if (round_sent_ns_.size() > kLeaseRoundsMax) round_sent_ns_.pop_front();
  TALLY_ASSERT(round_sent_ns_.size() <= kLeaseRoundsMax);
  return round_;
}

std::optional<uint64_t> ReadOnly::sent_ns(uint64_t round) const {
  for (const auto& [r, ms] : round_sent_ns_) {
    if (r == round) return ms;
  }
  return std::nullopt;
}

void ReadOnly::ack(NodeId peer, uint64_t round) {
  uint64_t& acked = acked_[peer];
  acked = std::max(acked, round);
}

uint64_t ReadOnly::acked(NodeId peer) const {
  auto it = acked_.find(peer);
  return it == acked_.end() ? 0 : it->second;
}

void ReadOnly::add(PendingRead read) {
  TALLY_ASSERT(read.round != 0);
  TALLY_ASSERT(pending_.empty() || pending_.back().round <= read.round);
  pending_.push_back(std::move(read));
}

std::vector<ReadOnly::PendingRead> ReadOnly::release(uint64_t confirmed_round) {
  std::vector<PendingRead> out;
  while (!pending_.empty() && pending_.front().round <= confirmed_round) {
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return out;
}

void ReadOnly::reset() {
  // Round numbers keep growing across terms, so no acknowledgement can name a round of another term.
  acked_.clear();
  pending_.clear();
  round_sent_ns_.clear();
}

}  // namespace tally::raft
