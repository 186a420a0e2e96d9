// The cluster a member node belongs to, as `tallyctl cluster create` formed it: its nodes, numbered
// from 1 in formation order (the numbers are the nodes' Raft ids in every group), how many replicas
// each partition has, and which nodes hold them. A member keeps it in <dir>/CLUSTER.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"

namespace tally::cluster {

struct MemberNode {
  uint64_t number = 0;    // 1..N, the node's Raft id
  std::string id;         // its 40-hex-character node id
  std::string host;       // where clients and peers reach it
  uint16_t port = 0;      // client (RESP) port
  uint16_t peer_port = 0;
  // Failure domains (tallyd's zone and rack settings; empty: none): placement spreads each
  // partition's replicas over zones, and over racks within a zone.
  std::string zone;
  std::string rack;
};

// A zone or rack label: 1..64 characters of letters, digits, '.', '_', '-'.
bool valid_label(std::string_view label);

inline constexpr size_t kMembersMax = 64;
// Replicas per partition at most: a Raft group's voters and learners (the core's kTallyReplicasMax).
inline constexpr uint32_t kReplicasMax = 8;

struct Membership {
  uint64_t epoch = 1;
  uint32_t replicas = 3;
  uint64_t self = 0;  // this node's number
  std::vector<MemberNode> nodes;  // by number: nodes[i].number == i + 1

  // Numbers in order from 1, ids valid and unique, ports set, self among them, 1 <= replicas <= N.
  Status validate() const;
  const MemberNode* node(uint64_t number) const {
    return number >= 1 && number <= nodes.size() ? &nodes[number - 1] : nullptr;
  }
  // The nodes holding partition p, sorted: `replicas` consecutive nodes of the placement ring starting
  // at p mod N, so every node holds the same share and consecutive partitions start on different nodes.
  std::vector<uint64_t> replicas_of(uint32_t partition) const;
  // The placement ring: node numbers 1..N in order when no node has a label; otherwise zones
  // interleaved in proportion to their sizes (and racks within each zone the same way), so that
  // consecutive nodes lie in different zones as far as the zones' sizes allow. With Z zones of equal
  // size and replicas <= Z, every partition's replicas lie in `replicas` different zones.
  std::vector<uint64_t> placement_ring() const;
  bool holds(uint32_t partition) const;

  // The <dir>/CLUSTER text: "format = 1", "epoch = E", "replicas = R", "self = S", then one
  // "node = NUMBER ID HOST PORT PEER_PORT [zone=Z] [rack=R]" line per node.
  std::string serialize() const;
  static Result<Membership> parse(std::string_view text);
};

}  // namespace tally::cluster
