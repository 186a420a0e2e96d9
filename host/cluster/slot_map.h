// The slot map: which node serves each of the 16384 Redis Cluster slots, and how clients reach each
// node. The server routes by it (a key whose slot another node serves gets -MOVED) and reports it
// through CLUSTER SLOTS, SHARDS and NODES. A map carries an epoch; a node replaces its map only with
// one of a higher epoch. Today a node builds the map of a one-node cluster serving every slot; the
// meta group will hand out the maps of larger ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"

namespace tally::cluster {

inline constexpr uint32_t kSlots = 16384;
inline constexpr size_t kNodeIdLength = 40;  // lower-case hex, as Redis Cluster node ids are

struct NodeRecord {
  std::string id;        // kNodeIdLength lower-case hex characters
  std::string host;      // what clients are told to connect to; empty: the address they used
  uint16_t port = 0;     // client (RESP) port
  uint16_t bus_port = 0; // peer port
  std::string zone;      // failure domains, for placement
  std::string rack;
};

// A contiguous run of slots served by one node.
struct SlotRange {
  uint32_t first = 0;
  uint32_t last = 0;  // inclusive
  uint32_t node = 0;  // index into SlotMap::nodes()
};

class SlotMap {
 public:
  // Every slot served by `self`, at epoch 1.
  static SlotMap single_node(NodeRecord self);
  // A map from explicit ranges; validate() says whether it is usable.
  SlotMap(uint64_t epoch, std::vector<NodeRecord> nodes, const std::vector<SlotRange>& ranges);

  uint64_t epoch() const { return epoch_; }
  const std::vector<NodeRecord>& nodes() const { return nodes_; }
  // Index of the node serving `slot`, or kUnassigned.
  static constexpr uint32_t kUnassigned = UINT32_MAX;
  uint32_t owner(uint32_t slot) const { return slot < kSlots ? owner_[slot] : kUnassigned; }
  // Index of the node with this id, or kUnassigned.
  uint32_t find(std::string_view id) const;
  // The assigned slots as maximal contiguous runs, in slot order.
  std::vector<SlotRange> ranges() const;
  uint32_t assigned_slots() const;
  // Ids well formed and unique, ports set, ranges inside [0, kSlots) and naming known nodes.
  Status validate() const;

 private:
  SlotMap() = default;
  uint64_t epoch_ = 0;
  std::vector<NodeRecord> nodes_;
  std::vector<uint32_t> owner_;  // kSlots entries
  std::string bad_;              // a construction error validate() reports
};

bool valid_node_id(std::string_view id);
// kNodeIdLength hex characters from a generator seeded with `seed` (the Env's randomness).
std::string make_node_id(uint64_t seed);

}  // namespace tally::cluster
