// resolve references: LWW registers, PN-counters and add-wins OR-sets merged over a batch.
#include <unordered_map>
#include <vector>

#include "kernels/cpu/reference.h"

namespace tally::kernels {

namespace {
// (hlc, node) order of LWW stamps.
bool stamp_greater(uint64_t hlc_a, uint32_t node_a, uint64_t hlc_b, uint32_t node_b) {
  return hlc_a > hlc_b || (hlc_a == hlc_b && node_a > node_b);
}
}  // namespace

void resolve_lww_cpu(const LwwBatch& b) {
  TALLY_ASSERT(b.keys <= kResolveKeysMax && b.items <= kBatchItemsMax);
  for (uint32_t k = 0; k < b.keys; ++k) {
    b.hlc_out[k] = b.current_hlc[k];
    b.node_out[k] = b.current_node[k];
    b.source_out[k] = kNoSource;
  }
  // Strictly greater replaces, so ties keep the current version or the earlier incoming one.
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint32_t k = b.key_index[i];
    TALLY_ASSERT(k < b.keys);
    if (stamp_greater(b.hlc[i], b.node[i], b.hlc_out[k], b.node_out[k])) {
      b.hlc_out[k] = b.hlc[i];
      b.node_out[k] = b.node[i];
      b.source_out[k] = i;
    }
  }
}

void resolve_pn_counter_cpu(const PnCounterBatch& b) {
  TALLY_ASSERT(b.keys <= kResolveKeysMax && b.items <= kBatchItemsMax);
  const uint64_t words = uint64_t{b.keys} * kCrdtNodesMax;
  for (uint64_t w = 0; w < words; ++w) {
    b.p_out[w] = b.current_p[w];
    b.n_out[w] = b.current_n[w];
  }
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint32_t k = b.key_index[i];
    TALLY_ASSERT(k < b.keys);
    for (uint32_t s = 0; s < kCrdtNodesMax; ++s) {
      const uint64_t dst = uint64_t{k} * kCrdtNodesMax + s;
      const uint64_t src = uint64_t{i} * kCrdtNodesMax + s;
      if (b.p[src] > b.p_out[dst]) b.p_out[dst] = b.p[src];
      if (b.n[src] > b.n_out[dst]) b.n_out[dst] = b.n[src];
    }
  }
  for (uint32_t k = 0; k < b.keys; ++k) {
    uint64_t value = 0;  // unsigned arithmetic wraps; the cast makes it the two's complement total
    for (uint32_t s = 0; s < kCrdtNodesMax; ++s) {
      value += b.p_out[uint64_t{k} * kCrdtNodesMax + s] - b.n_out[uint64_t{k} * kCrdtNodesMax + s];
    }
    b.value_out[k] = static_cast<int64_t>(value);
  }
}

void resolve_or_set_cpu(const OrSetBatch& b) {
  TALLY_ASSERT(b.keys <= kResolveKeysMax && b.items <= kBatchItemsMax);
  // Entry identity (key, element, node, seq) -> sides present (bit 0 current, bit 1 incoming).
  struct Id {
    uint32_t key;
    uint8_t node;
    uint64_t element;
    uint64_t seq;
    bool operator==(const Id&) const = default;
  };
  struct IdHash {
    size_t operator()(const Id& id) const {
      return static_cast<size_t>(id.element * 0x9e3779b97f4a7c15ull ^ id.seq * 0xc2b2ae3d27d4eb4full ^
                                 (uint64_t{id.key} << 8 | id.node));
    }
  };
  std::unordered_map<Id, uint8_t, IdHash> sides;
  sides.reserve(b.items);
  for (uint32_t i = 0; i < b.items; ++i) {
    sides[Id{b.key_index[i], b.dot_node[i], b.element[i], b.dot_seq[i]}] |=
        static_cast<uint8_t>(1u << b.side[i]);
  }
  for (uint32_t i = 0; i < b.items; ++i) {
    const uint32_t k = b.key_index[i];
    TALLY_ASSERT(k < b.keys && b.side[i] <= 1);
    const uint8_t present = sides[Id{k, b.dot_node[i], b.element[i], b.dot_seq[i]}];
    const uint64_t* other_vv = b.side[i] == 0 ? b.incoming_vv : b.current_vv;
    const bool on_both = present == 3;
    const bool unseen = other_vv[uint64_t{k} * kCrdtNodesMax + b.dot_node[i]] < b.dot_seq[i];
    // An entry on both sides is reported once, from the current side.
    b.keep_out[i] = on_both ? (b.side[i] == 0 ? 1 : 0) : (unseen ? 1 : 0);
  }
}

void resolve_cpu(const ResolveBatch& b) {
  switch (b.kind) {
    case ResolveKind::kLww: resolve_lww_cpu(b.lww); return;
    case ResolveKind::kPnCounter: resolve_pn_counter_cpu(b.pn); return;
    case ResolveKind::kOrSet: resolve_or_set_cpu(b.orset); return;
  }
  TALLY_UNREACHABLE();
}

}  // namespace tally::kernels
