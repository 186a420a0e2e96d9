// Randomized runs of the test cluster with every feature mixed in (partitions, one-way cuts, drops,
// crashes, membership changes, transfers, compaction, ReadIndex and lease reads), checking Raft's
// safety properties: one leader per term, every applied index holds the same entry on every node,
// and no read returns an index below what was committed before it began.
#include <cstdio>
#include <cstdlib>
#include <map>

#include "host/common/rng.h"
#include "tests/unit/raft/test_util.h"

namespace tally::raft::testing {
namespace {

// Seeds per CTest run; TALLY_RAFT_CHAOS_SEEDS=N runs more by hand (2000 take ~8 s).
constexpr int kChaosSeedsDefault = 150;
constexpr int kChaosSeedsMax = 1000000;

int chaos_seeds() {
  const char* env = std::getenv("TALLY_RAFT_CHAOS_SEEDS");
  if (env == nullptr) return kChaosSeedsDefault;
  const int n = std::atoi(env);
  return n > 0 && n <= kChaosSeedsMax ? n : kChaosSeedsDefault;
}
constexpr int kChaosStepsPerSeed = 1000;
constexpr NodeId kChaosNodes = 5;

struct Safety {
  std::map<Term, NodeId> leader_of_term;
  std::map<Index, Entry> applied_at;  // index -> entry first applied there
  std::string violation;
  size_t conf_changes = 0;
  size_t snapshots = 0;
  size_t reads = 0;
  // Read context -> the highest index any node had committed when the read was issued: a
  // linearizable read must return an index at least that high.
  std::map<std::string, Index> read_floor;

  void read_answered(NodeId n, const ReadState& r) {
    auto it = read_floor.find(r.context);
    if (it == read_floor.end()) return;
    ++reads;
    if (r.index < it->second && violation.empty()) {
      violation = "node " + std::to_string(n) + " read " + r.context + " at index " + std::to_string(r.index) +
                  " below " + std::to_string(it->second) + ", committed before the read began";
    }
  }

  void leaders(Cluster& c) {
    for (NodeId n : c.ids()) {
      if (!c.node(n).raw || c.raw(n).role() != Role::kLeader) continue;
      auto [it, fresh] = leader_of_term.emplace(c.raw(n).term(), n);
      if (!fresh && it->second != n && violation.empty()) {
        violation = "two leaders in term " + std::to_string(it->first);
      }
    }
  }
  void applied(NodeId n, const Entry& e) {
    if (e.type == EntryType::kConfChange) ++conf_changes;
    auto [it, fresh] = applied_at.emplace(e.index, e);
    if (!fresh && !(it->second == e) && violation.empty()) {
      violation = "node " + std::to_string(n) + " applied " + format_entry(e) + " where another applied " +
                  format_entry(it->second);
    }
  }
};

void run_chaos(uint64_t seed, Safety* safety, size_t* commits) {
  Rng rng(seed);
  Cluster c;
  Config cfg = test_config();
  cfg.seed = seed;
  cfg.max_inflight_msgs = 4;
  cfg.max_size_per_msg = 64;
  // Half the seeds serve reads from leases. Every node reads one clock (drift 0), advanced per tick.
  cfg.lease_read.enabled = seed % 2 == 0;
  cfg.lease_read.tick_interval_ms = 100;
  cfg.lease_read.clock_drift_max_ms = 0;
  uint64_t now_ms = 0;
  c.add_nodes(range_ids(kChaosNodes), {1, 2, 3}, {}, cfg);  // 4 and 5 start outside the group
  c.on_apply = [&](NodeId n, const Entry& e) { safety->applied(n, e); };
  c.on_snapshot = [&](NodeId, const Snapshot&) { ++safety->snapshots; };
  uint64_t next_value = 0;
  for (int step = 0; step < kChaosStepsPerSeed && safety->violation.empty(); ++step) {
    const uint64_t op = rng.uniform(100);
    const NodeId n = 1 + rng.uniform(kChaosNodes);
    const bool live = c.node(n).raw != nullptr;
    if (op < 15) {
      now_ms += cfg.lease_read.tick_interval_ms;
      for (NodeId id : c.ids()) {
        c.set_time_ms(id, now_ms);
        if (c.node(id).raw) c.raw(id).tick();
      }
    } else if (op < 30) {
      // Clients mostly find the leader; sometimes they hit a follower and are refused.
      const NodeId to = rng.chance(4, 5) && c.leader() != kNoNode ? c.leader() : n;
      if (c.node(to).raw) (void)c.raw(to).propose("v" + std::to_string(next_value++));
    } else if (op < 35) {
      std::set<NodeId> a, b;
      for (NodeId id : c.ids()) (rng.chance(1, 2) ? a : b).insert(id);
      c.partition({a, b});
    } else if (op < 37) {
      c.cut({n}, {1 + rng.uniform(kChaosNodes)});
    } else if (op < 40) {
      c.heal();
    } else if (op < 43 && live) {
      c.crash(n);
    } else if (op < 47 && !live) {
      // Restarts may come at once: a restarted node itself keeps out of elections long enough.
      TALLY_ASSERT(c.restart(n).is_ok());
    } else if (op < 50 && live) {
      const uint64_t kind = rng.uniform(3);
      ConfChange cc{kind == 0 ? ConfChangeType::kAddVoter : kind == 1 ? ConfChangeType::kAddLearner
                                                                       : ConfChangeType::kRemoveNode,
                    1 + rng.uniform(kChaosNodes), {}};
      // Keep at least three voters so the group can always make progress once healed.
      const auto voters = c.raw(n).status().conf.voters;
      const bool shrinks = cc.type != ConfChangeType::kAddVoter &&
                           std::find(voters.begin(), voters.end(), cc.node) != voters.end();
      if (!shrinks || voters.size() > 3) (void)c.raw(n).propose_conf_change(cc);
    } else if (op < 52 && live) {
      (void)c.raw(n).transfer_leader(1 + rng.uniform(kChaosNodes));
    } else if (op < 55 && live) {
      const Index applied = c.node(n).applied_index;
      if (applied > 2) (void)c.compact(n, applied - rng.uniform(2));
    } else if (op < 60 && live) {
      Index floor = 0;
      for (NodeId id : c.ids()) {
        if (c.node(id).raw) floor = std::max(floor, c.raw(id).commit_index());
      }
      // Ask every node that believes it leads (a deposed leader is where stale reads come from),
      // and one random node (followers forward).
      for (NodeId id : c.ids()) {
        if (id != n && !(c.node(id).raw && c.raw(id).is_leader())) continue;
        const std::string ctx = "r" + std::to_string(step) + "." + std::to_string(id);
        if (c.raw(id).read_index(ctx).is_ok()) safety->read_floor[ctx] = floor;
      }
    } else {
      // Deliver part of the traffic: some messages are dropped, the rest arrive out of order.
      for (NodeId id : c.ids()) c.process_ready(id, nullptr);
      auto& q = c.queue();
      for (size_t i = 0; i + 1 < q.size(); ++i) {
        if (rng.chance(1, 4)) std::swap(q[i], q[i + 1 + rng.uniform(q.size() - i - 1)]);
      }
      std::erase_if(q, [&](const Message&) { return rng.chance(1, 10); });
      c.deliver({}, {}, nullptr);
    }
    safety->leaders(c);
    for (NodeId id : c.ids()) {
      for (const ReadState& r : c.node(id).reads) safety->read_answered(id, r);
      c.node(id).reads.clear();
    }
  }
  // Heal, restart everyone, and let the group settle: it must be able to commit again.
  c.heal();
  for (NodeId id : c.ids()) {
    if (!c.node(id).raw) TALLY_ASSERT(c.restart(id).is_ok());
  }
  auto tick_all = [&](int times) {  // clocks move with the ticks (leases read them)
    for (int t = 0; t < times; ++t) {
      now_ms += cfg.lease_read.tick_interval_ms;
      for (NodeId id : c.ids()) c.set_time_ms(id, now_ms);
      c.tick_all(1);
    }
  };
  tick_all(60);
  safety->leaders(c);
  const NodeId lead = c.leader();
  if (lead != kNoNode && c.raw(lead).propose("final").is_ok()) {
    c.settle();
    tick_all(3);
    *commits += c.node(lead).applied.empty() || c.node(lead).applied.back() != "final" ? 0 : 1;
  }
}

TEST(Chaos, SafetyHoldsAcrossRandomFaultsAndTheGroupRecovers) {
  size_t recovered = 0;
  size_t applied = 0, terms = 0, conf_changes = 0, snapshots = 0, reads = 0;
  const int seeds = chaos_seeds();
  for (uint64_t seed = 1; seed <= static_cast<uint64_t>(seeds); ++seed) {
    Safety safety;
    run_chaos(seed, &safety, &recovered);
    ASSERT_TRUE(safety.violation.empty()) << "seed " << seed << ": " << safety.violation;
    EXPECT_GT(safety.applied_at.size(), 0u) << "seed " << seed;
    applied += safety.applied_at.size();
    terms += safety.leader_of_term.size();
    conf_changes += safety.conf_changes;
    snapshots += safety.snapshots;
    reads += safety.reads;
  }
  // Liveness is not guaranteed (a membership change can leave a group without a quorum of
  // live-and-connected voters), but after healing nearly every run must commit again.
  EXPECT_GE(recovered, static_cast<size_t>(seeds * 9 / 10));
  // The runs must actually exercise the protocol, not idle.
  EXPECT_GT(applied, static_cast<size_t>(seeds) * 10);
  EXPECT_GT(terms, static_cast<size_t>(seeds) * 2);
  EXPECT_GT(conf_changes, 0u);
  EXPECT_GT(snapshots, 0u);
  EXPECT_GT(reads, static_cast<size_t>(seeds / 2));
  std::printf("chaos: %d seeds, %zu applied indexes, %zu terms with a leader, %zu conf changes, %zu snapshots "
              "installed, %zu reads, %zu recovered\n",
              seeds, applied, terms, conf_changes, snapshots, reads, recovered);
}

}  // namespace
}  // namespace tally::raft::testing
