// ReadOnly: the bookkeeping of linearizable reads. On a leader: reads waiting for the next
// heartbeat round (every read that arrives before a round is sent waits on that one round), the
// rounds sent with their send times (for leases), and the highest round each peer acknowledged;
// a round is confirmed once a majority of voters acknowledged it (quorum.h). On a follower: the
// reads it forwarded to the leader and is still waiting for. No I/O: the core feeds it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/replication/raft/types.h"

namespace tally::raft {

// Send times of unconfirmed heartbeat rounds kept for leases. A leader sends at most one round
// per tick and one per Ready, and forgets rounds once a later one is confirmed, so only a leader
// cut off from its voters for this many rounds loses track (its lease lapses: safe).
inline constexpr size_t kLeaseRoundsMax = 256;

class ReadOnly {
 public:
  struct PendingRead {
    std::string context;
    Index index = 0;        // the leader's commit index when the read arrived
    uint64_t round = 0;     // released once a majority acknowledged this heartbeat round
    NodeId from = kNoNode;  // who asked: the leader itself or a follower
  };

  // --- Leader.
  // The last heartbeat round sent (0 before the first); never reused, even across terms.
  uint64_t round() const { return round_; }
  // Starts the next round, sent at `now_ns` on the lease clock (0 without leases); returns it.
  uint64_t next_round(uint64_t now_ns);
  // When `round` was sent, while it is still remembered.
  std::optional<uint64_t> sent_ns(uint64_t round) const;
  // A peer acknowledged heartbeat round `round` (acknowledgements never move backwards).
  void ack(NodeId peer, uint64_t round);
  uint64_t acked(NodeId peer) const;
  // A read waiting for round() + 1, the next round to be sent.
  void add(PendingRead read);
  size_t pending() const { return pending_.size(); }
  // `confirmed_round` has been acknowledged by a majority: forgets the send times of earlier
  // rounds and removes and returns, oldest first, the reads waiting for it or an earlier one.
  std::vector<PendingRead> confirm(uint64_t confirmed_round);
  // Stepping down: removes and returns every waiting read.
  std::vector<PendingRead> take_pending();

  // --- Follower: reads forwarded to the leader.
  void forward(std::string context);
  size_t forwarded() const { return forwarded_.size(); }
  // The leader answered `context`; false if it was not waiting (answered late, or failed).
  bool answer(const std::string& context);
  // One tick passed: returns the contexts forwarded `ticks_max` ticks ago and still unanswered.
  std::vector<std::string> expire_forwarded(uint32_t ticks_max);
  std::vector<std::string> take_forwarded();

  // A new term: no acknowledgements, no remembered send times. Waiting reads must have been
  // taken (take_pending, take_forwarded) first.
  void reset();

 private:
  struct Forwarded {
    std::string context;
    uint32_t ticks = 0;
  };
  uint64_t round_ = 0;
  std::map<NodeId, uint64_t> acked_;
  std::deque<PendingRead> pending_;
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ns_;  // (round, lease clock ns; 0 with leases off)
  std::deque<Forwarded> forwarded_;
};

}  // namespace tally::raft
