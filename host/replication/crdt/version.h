// Version of a value in an eventual keyspace: the writer's HLC stamp, then its node id.
// Also the test-only bug switches of the CRDT merges, so the simulator can prove it catches them.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

#include "host/common/hlc.h"

namespace tally::crdt {

struct Version {
  HlcStamp hlc;
  uint32_t node_id = 0;

  auto operator<=>(const Version&) const = default;
  bool operator==(const Version&) const = default;
  // The zero version means "never written"; every real write has a non-zero node id.
  bool is_zero() const { return node_id == 0 && hlc == HlcStamp{}; }
  std::string to_string() const { return hlc.to_string() + "@" + std::to_string(node_id); }
};

// Planted bugs for the checkers; all off in production.
struct CrdtBugs {
  // LWW merge compares only the HLC and lets the incoming version win ties, so the outcome
  // depends on arrival order and replicas that saw the same writes can diverge.
  bool lww_ignore_node_id = false;
};

}  // namespace tally::crdt
