// The fault schedule: partitions, clogs, loss, crashes, clock jumps, membership changes, healing.
#include "tests/sim/world.h"

namespace tally::sim {

void World::inject_faults() {
  const size_t node_count = nodes_.size();
  if (faults_.partition_heal_ns != 0 && now_ns_ >= faults_.partition_heal_ns) {
    for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
    faults_.partition_heal_ns = 0;
  }
  if (faults_.clogged != 0 && now_ns_ >= faults_.clogged_until_ns) faults_.clogged = 0;
  if (!rng_.chance(1, 25)) return;
  switch (rng_.uniform(10)) {
    case 0: {  // symmetric partition: a random side against the rest
      for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
      std::vector<bool> side(node_count + 1);
      for (raft::NodeId id = 1; id <= node_count; ++id) side[id] = rng_.chance(1, 2);
      for (raft::NodeId a = 1; a <= node_count; ++a) {
        for (raft::NodeId b = 1; b <= node_count; ++b) faults_.blocked[a][b] = side[a] != side[b];
      }
      faults_.partition_heal_ns = now_ns_ + rng_.range(50, 400) * kMs;
      break;
    }
    case 1: {  // one-way partition
      const raft::NodeId a = rng_.range(1, node_count), b = rng_.range(1, node_count);
      if (a != b) faults_.blocked[a][b] = true;
      if (faults_.partition_heal_ns == 0) faults_.partition_heal_ns = now_ns_ + rng_.range(50, 400) * kMs;
      break;
    }
    case 2:  // clog one node's links
      faults_.clogged = rng_.range(1, node_count);
      faults_.clogged_until_ns = now_ns_ + rng_.range(50, 300) * kMs;
      break;
    case 3:
    case 4: {  // crash, sometimes in the middle of persisting a Ready
      Node& victim = nodes_[rng_.uniform(node_count)];
      if (rng_.chance(1, 3)) victim.crash_mid_ready = true;
      else crash(victim);
      break;
    }
    case 5: {  // clock jump, rarely beyond the HLC's tolerated skew
      Node& j = nodes_[rng_.uniform(node_count)];
      const int64_t bound_ms = rng_.chance(1, 8) ? 900 : 300;
      j.wall_offset_ns += (static_cast<int64_t>(rng_.uniform(2 * bound_ms + 1)) - bound_ms) * static_cast<int64_t>(kMs);
      break;
    }
    case 6:  // lossy, duplicating, slow network for a while
      faults_.drop_per_mille = static_cast<uint32_t>(rng_.uniform(150));
      faults_.dup_per_mille = static_cast<uint32_t>(rng_.uniform(100));
      faults_.long_delay_per_mille = static_cast<uint32_t>(rng_.uniform(200));
      break;
    case 7: {  // membership: demote a voter to learner, or promote a learner back
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      for (raft::NodeId id : groups_[g].members) {
        Node& ln = node(id);
        if (!ln.up) continue;
        Replica& r = ln.replicas[g];
        if (r.raft->role() != raft::Role::kLeader) continue;
        const raft::NodeStatus st = r.raft->status();
        raft::ConfChange cc;
        if (!st.conf.learners.empty()) {
          cc.type = raft::ConfChangeType::kAddVoter;
          cc.node = st.conf.learners[rng_.uniform(st.conf.learners.size())];
        } else if (st.conf.voters.size() >= 4) {  // never fewer than three voters
          const raft::NodeId v = st.conf.voters[rng_.uniform(st.conf.voters.size())];
          if (v == id) break;
          cc.type = raft::ConfChangeType::kAddLearner;
          cc.node = v;
        } else {
          break;
        }
        (void)r.raft->propose_conf_change(cc);  // refused while another change is pending
        after_input(ln, r);
        break;
      }
      break;
    }
    default:  // calm down: heal partitions and the network
      faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
      faults_.partition_heal_ns = now_ns_;
      break;
  }
}

void World::heal() {
  TALLY_ASSERT(now_ns_ >= fault_end_ns_);
  for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
  faults_.partition_heal_ns = 0;
  faults_.clogged = 0;
  faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
  for (Node& n : nodes_) {
    n.crash_mid_ready = false;
    n.crash_at_ns = 0;
    n.wall_offset_ns = 0;  // time service resynchronises the wall clocks
    if (!n.up) restart(n);
  }
  heal_ns_ = now_ns_;
}

}  // namespace tally::sim
