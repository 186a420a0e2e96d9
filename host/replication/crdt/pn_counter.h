// PN-counter: per-node grow-only totals of increments and decrements; value = Σinc − Σdec.
// Used for INCR/DECR in eventual keyspaces. Merge is the pointwise maximum.
#pragma once

#include <cstdint>
#include <map>

namespace tally::crdt {

struct PnCounter {
  struct Totals {
    uint64_t inc = 0;
    uint64_t dec = 0;
    bool operator==(const Totals&) const = default;
  };
  // Ordered map so iteration (and therefore hashing, encoding, simulation) is deterministic.
  std::map<uint32_t, Totals> per_node;

  bool operator==(const PnCounter&) const = default;

  int64_t value() const;
  // Local increment by `amount` (negative decrements) on behalf of node_id; returns the delta,
  // which carries only that node's new totals.
  PnCounter add(uint32_t node_id, int64_t amount);
};

PnCounter merge(const PnCounter& a, const PnCounter& b);

}  // namespace tally::crdt
