#include "host/cluster/slot_map.h"

#include <set>

#include "host/common/rng.h"

namespace tally::cluster {

SlotMap SlotMap::single_node(NodeRecord self) {
  std::vector<NodeRecord> nodes;
  nodes.push_back(std::move(self));
  return SlotMap(1, std::move(nodes), {SlotRange{0, kSlots - 1, 0}});
}

SlotMap::SlotMap(uint64_t epoch, std::vector<NodeRecord> nodes, const std::vector<SlotRange>& ranges)
    : epoch_(epoch), nodes_(std::move(nodes)), owner_(kSlots, kUnassigned) {
  for (const SlotRange& r : ranges) {
    if (r.first > r.last || r.last >= kSlots) {
      bad_ = "slot range " + std::to_string(r.first) + "-" + std::to_string(r.last) + " is outside 0-16383";
      continue;
    }
    if (r.node >= nodes_.size()) {
      bad_ = "slot range " + std::to_string(r.first) + "-" + std::to_string(r.last) + " names node " +
             std::to_string(r.node) + " of " + std::to_string(nodes_.size());
      continue;
    }
    for (uint32_t s = r.first; s <= r.last; ++s) {
      if (owner_[s] != kUnassigned && owner_[s] != r.node) bad_ = "slot " + std::to_string(s) + " is assigned twice";
      owner_[s] = r.node;
    }
  }
}

uint32_t SlotMap::find(std::string_view id) const {
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].id == id) return i;
  }
  return kUnassigned;
}

std::vector<SlotRange> SlotMap::ranges() const {
  std::vector<SlotRange> out;
  for (uint32_t s = 0; s < kSlots; ++s) {
    const uint32_t n = owner_[s];
    if (n == kUnassigned) continue;
    if (!out.empty() && out.back().node == n && out.back().last + 1 == s) {
      out.back().last = s;
    } else {
      out.push_back(SlotRange{s, s, n});
    }
  }
  return out;
}

uint32_t SlotMap::assigned_slots() const {
  uint32_t n = 0;
  for (uint32_t o : owner_) n += o != kUnassigned;
  return n;
}

Status SlotMap::validate() const {
  if (!bad_.empty()) return Status::invalid(bad_);
  if (epoch_ == 0) return Status::invalid("a slot map's epoch starts at 1");
  std::set<std::string_view> ids;
  for (const NodeRecord& n : nodes_) {
    if (!valid_node_id(n.id)) return Status::invalid("node id '" + n.id + "' is not 40 lower-case hex characters");
    if (!ids.insert(n.id).second) return Status::invalid("node id " + n.id + " appears twice");
    if (n.port == 0) return Status::invalid("node " + n.id + " has no client port");
  }
  return Status::ok();
}

bool valid_node_id(std::string_view id) {
  if (id.size() != kNodeIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string make_node_id(uint64_t seed) {
  static constexpr char kHex[] = "0123456789abcdef";
  Rng rng(seed);
  std::string id;
  id.reserve(kNodeIdLength);
  while (id.size() < kNodeIdLength) {
    uint64_t x = rng.next();
    for (int i = 0; i < 16 && id.size() < kNodeIdLength; ++i, x >>= 4) id.push_back(kHex[x & 15]);
  }
  return id;
}

}  // namespace tally::cluster
