// The simulated eventual keyspace: every node holds LWW registers and PN-counters, writes
// locally with its HLC, ships deltas (which the network may lose) and runs anti-entropy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/common/hlc.h"
#include "host/replication/crdt/lww_register.h"
#include "host/replication/crdt/pn_counter.h"
#include "host/replication/raft/types.h"

namespace tally::sim {

// A delta or a full state: the same join applies to both.
struct EventualState {
  std::map<std::string, crdt::LwwRegister> registers;
  std::map<std::string, crdt::PnCounter> counters;
  bool operator==(const EventualState&) const = default;
  HlcStamp max_stamp() const;
};

class EventualReplica {
 public:
  // `node` is the simulated node's id; the CRDTs stamp writes with it as their 32-bit replica id.
  EventualReplica(raft::NodeId node, const Clock& clock, uint64_t max_skew_ms, crdt::CrdtBugs bugs);

  // Local writes; each returns the delta to ship to every peer.
  EventualState set(const std::string& key, std::string value);
  EventualState incr(const std::string& key, int64_t amount);
  // A delta or full state from a peer. False when its stamps are too far ahead of our clock
  // (the HLC refuses them; anti-entropy retries later).
  bool receive(const EventualState& incoming);

  const EventualState& state() const { return state_; }
  uint64_t hlc_rejected() const { return hlc_.rejected_count(); }

 private:
  uint32_t replica_id_;  // the CRDTs' writer id: the node id, narrowed once here
  Hlc hlc_;
  crdt::CrdtBugs bugs_;
  EventualState state_;
};

// The join itself; the oracle merges every delta ever issued with the correct merge.
EventualState join(const EventualState& local, const EventualState& incoming, const crdt::CrdtBugs& bugs);
std::string describe_difference(const EventualState& a, const EventualState& b);

}  // namespace tally::sim
