#include "tests/sim/eventual.h"

#include <algorithm>

namespace tally::sim {

HlcStamp EventualState::max_stamp() const {
  HlcStamp m;
  for (const auto& [k, r] : registers) m = std::max(m, r.version.hlc);
  return m;
}

EventualReplica::EventualReplica(raft::NodeId node, const Clock& clock, uint64_t max_skew_ms, crdt::CrdtBugs bugs)
    : replica_id_(static_cast<uint32_t>(node)), hlc_(clock, max_skew_ms), bugs_(bugs) {
  TALLY_ASSERT(node != raft::kNoNode && node <= UINT32_MAX);
}

EventualState EventualReplica::set(const std::string& key, std::string value) {
  const crdt::Version v{hlc_.now(), replica_id_};
  EventualState delta;
  delta.registers[key] = state_.registers[key].assign(std::move(value), v);
  TALLY_ASSERT(state_.registers[key].version == v);
  return delta;
}

EventualState EventualReplica::incr(const std::string& key, int64_t amount) {
  EventualState delta;
  delta.counters[key] = state_.counters[key].add(replica_id_, amount);
  TALLY_ASSERT(!delta.counters[key].per_node.empty());
  return delta;
}

bool EventualReplica::receive(const EventualState& incoming) {
  if (!incoming.registers.empty()) {
    Result<HlcStamp> r = hlc_.update(incoming.max_stamp());
    if (!r.is_ok()) return false;
  }
  state_ = join(state_, incoming, bugs_);
  return true;
}

EventualState join(const EventualState& local, const EventualState& incoming, const crdt::CrdtBugs& bugs) {
  EventualState out = local;
  for (const auto& [k, r] : incoming.registers) {
    auto it = out.registers.find(k);
    if (it == out.registers.end()) out.registers.emplace(k, r);
    else it->second = crdt::merge(it->second, r, bugs);
  }
  for (const auto& [k, c] : incoming.counters) {
    auto it = out.counters.find(k);
    if (it == out.counters.end()) out.counters.emplace(k, c);
    else it->second = crdt::merge(it->second, c);
  }
  TALLY_ASSERT(out.registers.size() >= local.registers.size());
  return out;
}

std::string describe_difference(const EventualState& a, const EventualState& b) {
  for (const auto& [k, r] : a.registers) {
    auto it = b.registers.find(k);
    if (it == b.registers.end()) return "register " + k + " missing on one side";
    if (!(it->second == r)) {
      return "register " + k + ": " + r.value.value_or("(deleted)") + " @" + r.version.to_string() + " vs " +
             it->second.value.value_or("(deleted)") + " @" + it->second.version.to_string();
    }
  }
  for (const auto& [k, c] : a.counters) {
    auto it = b.counters.find(k);
    if (it == b.counters.end()) return "counter " + k + " missing on one side";
    if (!(it->second == c)) {
      return "counter " + k + ": " + std::to_string(c.value()) + " vs " + std::to_string(it->second.value());
    }
  }
  if (a.registers.size() != b.registers.size() || a.counters.size() != b.counters.size()) {
    return "different key sets";
  }
  return "equal";
}

}  // namespace tally::sim
