#include "host/replication/crdt/or_set.h"

#include <algorithm>

#include "host/common/assert.h"

namespace tally::crdt {

std::vector<std::string> OrSet::elements() const {
  std::vector<std::string> out;
  out.reserve(adds.size());
  for (const auto& [e, dots] : adds) out.push_back(e);
  return out;
}

size_t OrSet::dot_count() const {
  size_t n = removed.size();
  for (const auto& [e, dots] : adds) n += dots.size();
  return n;
}

Result<OrSet> OrSet::add(const std::string& element, uint32_t node_id) {
  TALLY_ASSERT(node_id != 0);
  if (dot_count() >= kOrSetDotsMax) return Status::exhausted("or-set: too many dots");
  const Dot dot{node_id, ++counters[node_id]};
  TALLY_ASSERT(removed.count(dot) == 0);
  adds[element].insert(dot);
  OrSet delta;
  delta.adds[element].insert(dot);
  delta.counters[node_id] = dot.counter;
  TALLY_ASSERT(contains(element));
  return delta;
}

Result<OrSet> OrSet::remove(const std::string& element) {
  OrSet delta;
  auto it = adds.find(element);
  if (it == adds.end()) return delta;  // nothing observed, nothing to tombstone
  if (dot_count() + it->second.size() > kOrSetDotsMax) return Status::exhausted("or-set: too many dots");
  delta.removed = it->second;
  // The delta is a state in its own right: its counters cover the dots it names, so a replica
  // that learns of these dots only through the tombstone never reissues one of them.
  for (const Dot& d : it->second) delta.counters[d.node_id] = std::max(delta.counters[d.node_id], d.counter);
  removed.insert(it->second.begin(), it->second.end());
  adds.erase(it);
  TALLY_ASSERT(!contains(element));
  return delta;
}

OrSet merge(const OrSet& a, const OrSet& b) {
  OrSet out;
  std::set_union(a.removed.begin(), a.removed.end(), b.removed.begin(), b.removed.end(),
                 std::inserter(out.removed, out.removed.end()));
  out.counters = a.counters;
  for (const auto& [node, c] : b.counters) out.counters[node] = std::max(out.counters[node], c);
  for (const OrSet* side : {&a, &b}) {
    for (const auto& [element, dots] : side->adds) {
      for (const Dot& d : dots) {
        if (out.removed.count(d) == 0) out.adds[element].insert(d);
      }
    }
  }
  TALLY_ASSERT(out.removed.size() >= std::max(a.removed.size(), b.removed.size()));
  TALLY_ASSERT(out.counters.size() >= std::max(a.counters.size(), b.counters.size()));
  return out;
}

}  // namespace tally::crdt
