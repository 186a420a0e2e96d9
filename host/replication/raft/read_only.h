// ReadOnly: the leader's bookkeeping for linearizable reads. Reads wait for a heartbeat round
// sent after them; a round counts once a majority of voters acknowledged it (quorum.h). The
// send time of each round is kept for leases. No I/O: the core feeds it rounds and acks.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/replication/raft/types.h"

namespace tally::raft {

// Heartbeat rounds remembered for lease reads; older rounds can no longer extend a lease.
inline constexpr size_t kLeaseRoundsMax = 256;

class ReadOnly {
 public:
  struct PendingRead {
    std::string context;
    Index index = 0;     // the leader's commit index when the read arrived
    uint64_t round = 0;  // released once a majority acknowledged this heartbeat round
    NodeId from = kNoNode;  // who asked: the leader itself or a follower
  };

  // The last heartbeat round sent (0 before the first); never reused, even across terms.
  uint64_t round() const { return round_; }
  // Starts the next round, sent at `now_ns` (lease clock); returns its number.
  uint64_t next_round(uint64_t now_ns);
  // When `round` was sent, while it is still remembered.
  std::optional<uint64_t> sent_ns(uint64_t round) const;

  // A peer acknowledged heartbeat round `round` (acknowledgements never move backwards).
  void ack(NodeId peer, uint64_t round);
  uint64_t acked(NodeId peer) const;

  void add(PendingRead read);
  size_t pending() const { return pending_.size(); }
  // Removes and returns, oldest first, the reads whose round is at most `confirmed_round`.
  std::vector<PendingRead> release(uint64_t confirmed_round);

  // A new term: no acknowledgements, no remembered send times, no reads.
  void reset();

 private:
  uint64_t round_ = 0;
  std::map<NodeId, uint64_t> acked_;
  std::deque<PendingRead> pending_;
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ns_;  // (round, lease clock ns; 0 with leases off)
};

}  // namespace tally::raft
