#include "host/replication/crdt/pn_counter.h"

#include <algorithm>

#include "host/common/assert.h"

namespace tally::crdt {

int64_t PnCounter::value() const {
  // Unsigned wrap-around gives the right two's-complement result even for huge totals.
  uint64_t sum = 0;
  for (const auto& [node, t] : per_node) sum += t.inc - t.dec;
  return static_cast<int64_t>(sum);
}

PnCounter PnCounter::add(uint32_t node_id, int64_t amount) {
  TALLY_ASSERT(node_id != 0);
  const int64_t before = value();
  Totals& t = per_node[node_id];
  if (amount >= 0) {
    t.inc += static_cast<uint64_t>(amount);
  } else {
    t.dec += static_cast<uint64_t>(-(amount + 1)) + 1;  // no overflow for INT64_MIN
  }
  TALLY_ASSERT(static_cast<uint64_t>(value()) == static_cast<uint64_t>(before) + static_cast<uint64_t>(amount));
  PnCounter delta;
  delta.per_node[node_id] = t;
  return delta;
}

PnCounter merge(const PnCounter& a, const PnCounter& b) {
  PnCounter out = a;
  for (const auto& [node, t] : b.per_node) {
    PnCounter::Totals& o = out.per_node[node];
    o.inc = std::max(o.inc, t.inc);
    o.dec = std::max(o.dec, t.dec);
  }
  TALLY_ASSERT(out.per_node.size() >= a.per_node.size());
  TALLY_ASSERT(out.per_node.size() >= b.per_node.size());
  return out;
}

}  // namespace tally::crdt
