// Add-wins observed-remove set: each add creates a unique dot; a remove tombstones only the dots
// it observed, so an add concurrent with a remove survives. Used for sets in eventual keyspaces.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "host/common/status.h"

namespace tally::crdt {

struct Dot {
  uint32_t node_id = 0;
  uint64_t counter = 0;
  auto operator<=>(const Dot&) const = default;
  bool operator==(const Dot&) const = default;
};

// Invariant (normal form): no dot in `adds` is also in `removed`, no element maps to an empty
// set. Tombstones are kept until a later change adds causal-stability GC; they are bounded by
// kOrSetDotsMax so a runaway set fails a write instead of exhausting memory.
struct OrSet {
  static constexpr size_t kOrSetDotsMax = 1 << 20;

  std::map<std::string, std::set<Dot>> adds;
  std::set<Dot> removed;
  std::map<uint32_t, uint64_t> counters;  // greatest dot counter seen per node

  bool operator==(const OrSet&) const = default;

  bool contains(const std::string& element) const { return adds.count(element) != 0; }
  std::vector<std::string> elements() const;
  size_t dot_count() const;

  // Local mutators: update this set and return the delta to ship.
  Result<OrSet> add(const std::string& element, uint32_t node_id);
  Result<OrSet> remove(const std::string& element);
};

OrSet merge(const OrSet& a, const OrSet& b);

}  // namespace tally::crdt
