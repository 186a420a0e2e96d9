// The fault schedule: partitions, clogs, loss, crashes, process pauses, clock jumps, membership
// changes, leadership transfers, healing.
#include "tests/sim/world.h"

namespace tally::sim {

namespace {
bool contains(const std::vector<raft::NodeId>& v, raft::NodeId id) { return std::find(v.begin(), v.end(), id) != v.end(); }
}  // namespace

void World::inject_faults() {
  const size_t node_count = nodes_.size();
  if (faults_.partition_heal_ns != 0 && now_ns_ >= faults_.partition_heal_ns) {
    for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
    faults_.partition_heal_ns = 0;
  }
  if (faults_.clogged != 0 && now_ns_ >= faults_.clogged_until_ns) faults_.clogged = 0;
  if (faults_.isolated != 0 && now_ns_ >= faults_.isolated_until_ns) faults_.isolated = 0;
  if (now_ns_ < attack_until_ns_) return;
  if (!rng_.chance(1, 25)) return;
  switch (rng_.uniform(15)) {
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
      if (!rng_.chance(1, 3)) {
        crash(victim);
      } else if (victim.up) {
        victim.disk->io().crash_at(CrashPoint::kBeforeSync);  // after the next write, before its sync
      }
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
    case 7:
    case 8: {  // membership: promote, demote, a fresh replica joins, a replica leaves; sometimes
               // several proposed at once (the core must refuse all but one)
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      const uint64_t changes = rng_.chance(1, 2) ? 1 : rng_.range(2, 4);
      for (uint64_t k = 0; k < changes; ++k) change_membership(g);
      break;
    }
    case 9: {  // process pause: frozen 100 ms - 2 s, often a leader, then resumed with its queue
      if (!rng_.chance(1, 3)) break;
      Node* victim = &nodes_[rng_.uniform(node_count)];
      if (rng_.chance(1, 2)) {
        for (Node& n : nodes_) {
          bool leads = false;
          for (auto& [g, r] : n.replicas) leads = leads || (n.up && r.rg != nullptr && r.rg->is_leader());
          if (leads) victim = &n;
        }
      }
      pause(*victim, now_ns_ + (rng_.chance(1, 4) ? rng_.range(500, 2000) : rng_.range(100, 500)) * kMs);
      break;
    }
    case 10: {  // leadership transfer to a random voter
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      const raft::NodeId id = newest_leader(g);
      if (id == raft::kNoNode || paused(node(id))) break;
      Replica& r = *replica(id, g);
      const std::vector<raft::NodeId> voters = r.rg->status().conf.voters;
      const raft::NodeId target = voters[rng_.uniform(voters.size())];
      if (target != id && r.rg->transfer_leader(target).is_ok()) {
        ++report_.transfers;
        // In lease seeds, a scripted attack: a clean network and no other faults while it runs.
        if (lease_) {
          attack_until_ns_ = now_ns_ + kAttackMs * kMs;
          faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
          faults_.clogged = 0;
          for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
        }
        // Sometimes nothing reaches the old leader for a while: it keeps serving clients (and,
        // had it kept its lease, reads) while the new leader commits.
        if (lease_ || rng_.chance(1, 2)) {
          for (raft::NodeId peer = 1; peer <= node_count; ++peer) {
            if (peer != id) faults_.blocked[peer][id] = true;
          }
          if (faults_.partition_heal_ns == 0) faults_.partition_heal_ns = now_ns_ + rng_.range(50, 200) * kMs;
        }
      }
      after_input(node(id), r);
      break;
    }
    case 11: {  // cut a group's leader off from its peers; clients still reach it
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      const raft::NodeId id = newest_leader(g);
      if (id == raft::kNoNode || faults_.isolated != 0) break;
      if (lease_) {
        // A scripted lease attack: for its duration the network is clean and nothing else
        // fails, so the election it provokes happens if (and only if) the core allows it.
        attack_until_ns_ = now_ns_ + kAttackMs * kMs;
        faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
        faults_.clogged = 0;
        for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
        for (raft::NodeId n : groups_[g].members) {
          if (n != id && paused(node(n))) resume(node(n));
        }
      }

      faults_.isolated = id;
      faults_.isolated_until_ns = now_ns_ + rng_.range(150, 400) * kMs;
      // The others' failure detectors suspect it well before its lease can have ended, and try
      // again every 8-12 ms: no election may succeed while the lease can still be valid (the
      // nodes that acknowledged it refuse, for themselves too).
      // Sometimes the others also restart at once, forgetting what they acknowledged; their
      // detectors then fire as soon as they are back.
      const uint64_t lease_ms = kElectionTicks * kTickMs;
      const bool restart_peers = rng_.chance(1, 3);
      for (raft::NodeId peer : groups_[g].members) {
        if (peer == id) continue;
        if (restart_peers && node(peer).up) {
          crash(node(peer));
          node(peer).restart_at_ns = now_ns_ + rng_.range(1, 5) * kMs;
        }
        const uint64_t first_ms = restart_peers ? rng_.range(6, 15) : lease_ms - rng_.range(25, 45);
        for (uint64_t t = first_ms; t <= lease_ms + 10; t += rng_.range(8, 12)) {
          forced_.push_back(ForcedCampaign{now_ns_ + t * kMs + rng_.uniform(kMs), peer, g, id});
        }
      }
      break;
    }
    case 12: {  // a failure detector starts an election on some replica
      const uint32_t g = static_cast<uint32_t>(rng_.uniform(groups_.size()));
      const auto& members = groups_[g].members;
      forced_.push_back(ForcedCampaign{now_ns_, members[rng_.uniform(members.size())], g});
      break;
    }
    case 13:  // the disk of a node: a failed fdatasync or write, a full disk, or damage while it is down
      disk_fault(nodes_[rng_.uniform(node_count)]);
      break;
    default:  // calm down: heal partitions and the network
      faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
      faults_.partition_heal_ns = now_ns_;
      break;
  }
}

void World::change_membership(uint32_t g) {
  Group& group = groups_[g];
  raft::NodeId leader = raft::kNoNode;
  for (raft::NodeId id : group.members) {
    Replica* r = replica(id, g);
    if (node(id).up && !paused(node(id)) && r != nullptr && r->rg != nullptr && r->rg->is_leader()) leader = id;
  }
  if (leader == raft::kNoNode) return;
  Node& ln = node(leader);
  Replica& lr = *replica(leader, g);
  const raft::ConfState conf = lr.rg->status().conf;
  // Nodes that never hosted this group may join; a removed node never comes back (its disk is
  // gone, and with it the votes it cast).
  std::vector<raft::NodeId> outsiders;
  for (const Node& n : nodes_) {
    if (!contains(group.members, n.id) && !contains(group.departed, n.id)) outsiders.push_back(n.id);
  }
  raft::ConfChange cc;
  switch (rng_.uniform(8)) {
    case 0:  // promote a learner
      if (conf.learners.empty()) return;
      cc.type = raft::ConfChangeType::kAddVoter;
      cc.node = conf.learners[rng_.uniform(conf.learners.size())];
      break;
    case 1:
    case 2:  // demote a voter, keeping at least three
      if (conf.voters.size() < 4) return;
      cc.type = raft::ConfChangeType::kAddLearner;
      cc.node = conf.voters[rng_.uniform(conf.voters.size())];
      break;
    case 3:
    case 4:
    case 5: {  // a fresh replica joins as a learner
      if (outsiders.empty() || group.members.size() >= kGroupReplicasMax) return;
      cc.type = raft::ConfChangeType::kAddLearner;
      cc.node = outsiders[rng_.uniform(outsiders.size())];
      break;
    }
    default: {  // a learner, or a voter beyond three, leaves for good
      std::vector<raft::NodeId> leavable = conf.learners;
      if (conf.voters.size() >= 4) leavable.insert(leavable.end(), conf.voters.begin(), conf.voters.end());
      if (leavable.empty()) return;
      cc.type = raft::ConfChangeType::kRemoveNode;
      cc.node = leavable[rng_.uniform(leavable.size())];
      break;
    }
  }
  if (cc.node == leader && cc.type == raft::ConfChangeType::kAddLearner) return;
  const bool joining = !contains(group.members, cc.node);
  if (!lr.rg->propose_conf_change(cc).is_ok()) {  // refused while another change is pending
    after_input(ln, lr);
    return;
  }
  if (joining) {
    // The new replica starts empty and knows no membership; it learns the group from the log.
    Node& nn = node(cc.node);
    group.members.insert(std::upper_bound(group.members.begin(), group.members.end(), cc.node), cc.node);
    Replica& fresh = nn.replicas[g];
    fresh.group = g;
    fresh.joined = true;
    if (nn.up) start_replica(nn, g);  // a crashed node starts it when it restarts
    ++report_.joins;
  }
  after_input(ln, lr);
}

void World::disk_fault(Node& n) {
  if (!n.up) return;
  testing::Fault f;
  f.pattern = "*.wal";
  switch (rng_.uniform(4)) {
    case 0:  // fsync EIO: the log fails, rewrites what was not known durable, and goes on
      f.op = testing::FaultOp::kSync;
      f.kind = testing::FaultKind::kIoError;
      f.times = rng_.range(1, 3);
      break;
    case 1:  // a short write: part of the batch reaches the file, then EIO
      f.op = testing::FaultOp::kWrite;
      f.kind = testing::FaultKind::kShortWrite;
      break;
    case 2:  // a full disk: the next segments cannot be prepared
      f.op = testing::FaultOp::kAllocate;
      f.kind = testing::FaultKind::kNoSpace;
      f.times = rng_.range(1, 4);
      break;
    default:
      // Power loss, and the log damaged while the node is down (one node per run: each group then
      // keeps a majority of healthy voters). Its corrupt groups stay down for good.
      if (damaged_ != 0 || !rng_.chance(1, 5)) return;
      n.damage_at_crash = true;
      crash(n);
      return;
  }
  n.disk->inject(f);
  ++report_.disk_faults;
}

void World::heal() {
  TALLY_ASSERT(now_ns_ >= fault_end_ns_);
  for (auto& row : faults_.blocked) std::fill(row.begin(), row.end(), false);
  faults_.partition_heal_ns = 0;
  faults_.isolated = 0;
  faults_.clogged = 0;
  faults_.drop_per_mille = faults_.dup_per_mille = faults_.long_delay_per_mille = 0;
  heal_ns_ = now_ns_;
  for (Node& n : nodes_) {
    n.crash_at_ns = 0;
    n.damage_at_crash = false;
    // The disks work again (a failed log rewrites on the next tick); no armed power loss fires.
    n.disk->clear_faults();
    n.disk->io().crash_at(CrashPoint::kNone);
    n.wall_offset_ns = 0;  // time service resynchronises the wall clocks
    if (!n.up) restart(n);
    if (paused(n)) resume(n);
  }
}

}  // namespace tally::sim
