// ReadOnly: heartbeat rounds, their acknowledgements, the reads waiting on them, and the reads a
// follower forwarded.
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
  for (const auto& [r, ns] : round_sent_ns_) {
    if (r == round) return ns;
  }
  return std::nullopt;
}

void ReadOnly::ack(NodeId peer, uint64_t round) {
  TALLY_ASSERT(round <= round_);
  uint64_t& acked = acked_[peer];
  acked = std::max(acked, round);
}

uint64_t ReadOnly::acked(NodeId peer) const {
  auto it = acked_.find(peer);
  return it == acked_.end() ? 0 : it->second;
}

void ReadOnly::add(PendingRead read) {
  TALLY_ASSERT(read.round == round_ + 1);
  TALLY_ASSERT(pending_.empty() || pending_.back().round <= read.round);
  pending_.push_back(std::move(read));
}

std::vector<ReadOnly::PendingRead> ReadOnly::confirm(uint64_t confirmed_round) {
  TALLY_ASSERT(confirmed_round <= round_);
  // Later rounds can only be confirmed later: an earlier one can no longer extend a lease.
  while (!round_sent_ns_.empty() && round_sent_ns_.front().first < confirmed_round) round_sent_ns_.pop_front();
  std::vector<PendingRead> out;
  while (!pending_.empty() && pending_.front().round <= confirmed_round) {
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return out;
}

std::vector<ReadOnly::PendingRead> ReadOnly::take_pending() {
  std::vector<PendingRead> out(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
  pending_.clear();
  return out;
}

void ReadOnly::forward(std::string context) { forwarded_.push_back(Forwarded{std::move(context), 0}); }

bool ReadOnly::answer(const std::string& context) {
  auto it = std::find_if(forwarded_.begin(), forwarded_.end(), [&](const Forwarded& f) { return f.context == context; });
  if (it == forwarded_.end()) return false;
  forwarded_.erase(it);
  return true;
}

std::vector<std::string> ReadOnly::expire_forwarded(uint32_t ticks_max) {
  std::vector<std::string> out;
  for (Forwarded& f : forwarded_) ++f.ticks;
  // Forwarded in order, so the oldest are at the front.
  while (!forwarded_.empty() && forwarded_.front().ticks >= ticks_max) {
    out.push_back(std::move(forwarded_.front().context));
    forwarded_.pop_front();
  }
  return out;
}

std::vector<std::string> ReadOnly::take_forwarded() {
  std::vector<std::string> out;
  out.reserve(forwarded_.size());
  for (Forwarded& f : forwarded_) out.push_back(std::move(f.context));
  forwarded_.clear();
  return out;
}

void ReadOnly::reset() {
  // Round numbers keep growing across terms, so no acknowledgement can name a round of another term.
  acked_.clear();
  pending_.clear();
  round_sent_ns_.clear();
}

}  // namespace tally::raft
