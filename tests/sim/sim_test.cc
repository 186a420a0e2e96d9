// The simulator itself: a seed replays bit for bit, its history survives the JSON-lines round
// trip and passes the checker, and a planted bug's violation names its replay command.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/sim/linearizability.h"
#include "tests/sim/simulation.h"

namespace tally::sim {
namespace {

TEST(Simulation, SameSeedReplaysExactly) {
  for (uint64_t seed : {3u, 4u}) {
    SimOptions o;
    o.seed = seed;
    o.record_history = true;
    Simulation a(o), b(o);
    const SimReport ra = a.run(), rb = b.run();
    EXPECT_FALSE(ra.violation) << ra.kind << ": " << ra.detail;
    EXPECT_EQ(ra.messages, rb.messages);
    EXPECT_EQ(ra.committed, rb.committed);
    EXPECT_EQ(ra.simulated_ms, rb.simulated_ms);
    EXPECT_GT(ra.client_ops, 50u);
    EXPECT_GT(ra.committed, 10u);
    ASSERT_EQ(a.history(), b.history());
    o.seed = seed + 100;
    Simulation c(o);
    c.run();
    EXPECT_NE(a.history(), c.history());
  }
}

TEST(Simulation, HistoryRoundTripsAndIsLinearizable) {
  SimOptions o;
  o.seed = 5;
  o.nodes = 5;
  o.record_history = true;
  Simulation sim(o);
  const SimReport r = sim.run();
  ASSERT_FALSE(r.violation) << r.kind << ": " << r.detail;
  EXPECT_EQ(r.nodes, 5u);
  const std::string path = ::testing::TempDir() + "sim_history.jsonl";
  ASSERT_TRUE(write_history(path, sim.history()).is_ok());
  Result<std::vector<Operation>> back = read_history(path);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, sim.history());
  size_t unknown = 0, ok = 0;
  for (const Operation& op : *back) {
    unknown += op.outcome == Outcome::kUnknown ? 1 : 0;
    ok += op.outcome == Outcome::kOk ? 1 : 0;
  }
  EXPECT_GT(ok, 20u);
  // Calls and returns carry the nanosecond they happened at, not the millisecond step.
  size_t sub_ms = 0;
  for (const Operation& op : *back) sub_ms += op.call_ns % 1'000'000 != 0 && op.return_ns % 1'000'000 != 0 ? 1 : 0;
  EXPECT_GT(sub_ms, back->size() / 2);
  EXPECT_EQ(check_history(*back).verdict, Verdict::kLinearizable);
  // Corrupt one successful read: the checker must notice.
  for (Operation& op : *back) {
    if (op.op == OpKind::kRead && op.outcome == Outcome::kOk) {
      op.result = 12345;
      break;
    }
  }
  EXPECT_EQ(check_history(*back).verdict, Verdict::kNotLinearizable);
  std::remove(path.c_str());
}

TEST(Simulation, TheSeedsReachTheSituationsTheCheckersNeed) {
  // Each of these is where a class of protocol bug bites (docs/sim.md); a change to the fault
  // mix that stops reaching one would silently blind a checker.
  uint64_t leases = 0, lease_reads = 0, no_check_quorum = 0, async_tally = 0, pauses = 0, transfers = 0;
  uint64_t joins = 0, leaves = 0, two_learners = 0, snapshots = 0, stale_leader = 0, failed_reads = 0;
  uint64_t log_failures = 0, log_retries = 0, torn_tails = 0, damaged = 0, kept_down = 0, conf_lost = 0;
  uint64_t segments_deleted = 0, early_send = 0;
  constexpr uint64_t kSeeds = 60;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    SimOptions o;
    o.seed = seed;
    const SimReport r = Simulation(o).run();
    ASSERT_FALSE(r.violation) << "seed " << seed << ": " << r.kind << ": " << r.detail;
    leases += r.leases ? 1 : 0;
    lease_reads += r.lease_reads > 0 ? 1 : 0;
    no_check_quorum += r.check_quorum ? 0 : 1;
    async_tally += r.async_tally ? 1 : 0;
    early_send += r.early_send ? 1 : 0;
    pauses += r.pauses > 0 ? 1 : 0;
    transfers += r.transfers > 0 ? 1 : 0;
    joins += r.joins > 0 ? 1 : 0;
    leaves += r.leaves > 0 ? 1 : 0;
    two_learners += r.learners_max >= 2 ? 1 : 0;
    snapshots += r.snapshots_installed > 0 ? 1 : 0;
    stale_leader += r.stale_leader_requests > 0 ? 1 : 0;
    failed_reads += r.failed_reads;
    log_failures += r.disk_failures > 0 ? 1 : 0;
    log_retries += r.log_retries > 0 ? 1 : 0;
    torn_tails += r.torn_tails > 0 ? 1 : 0;
    damaged += r.logs_damaged > 0 ? 1 : 0;
    kept_down += r.replicas_kept_down > 0 ? 1 : 0;
    conf_lost += r.conf_change_crashes > 0 ? 1 : 0;
    segments_deleted += r.segments_deleted > 0 ? 1 : 0;
  }
  EXPECT_GT(leases, kSeeds / 5);
  EXPECT_EQ(lease_reads, leases);
  EXPECT_GT(no_check_quorum, kSeeds / 10);
  EXPECT_GT(async_tally, kSeeds / 10);
  EXPECT_GT(early_send, kSeeds / 3);
  EXPECT_LT(early_send, kSeeds * 2 / 3);
  EXPECT_GT(pauses, kSeeds / 3);
  EXPECT_GT(transfers, kSeeds / 5);
  EXPECT_GT(joins, 0u);
  EXPECT_GT(leaves, 0u);
  EXPECT_GT(two_learners, kSeeds / 4);
  EXPECT_GT(snapshots, kSeeds / 4);
  EXPECT_GE(stale_leader, kSeeds / 10);  // the target: a deposed leader gets requests in 10 % of seeds
  EXPECT_GT(failed_reads, 0u);
  // The disk: the write-ahead log fails and recovers, crashes tear its tail, a damaged log keeps its
  // replicas down, membership changes are lost before their sync, snapshots free segments.
  EXPECT_GT(log_failures, kSeeds / 3);
  EXPECT_GT(log_retries, kSeeds / 4);
  EXPECT_GT(torn_tails, kSeeds / 2);
  EXPECT_GT(damaged, kSeeds / 20);
  EXPECT_GT(kept_down, 0u);
  EXPECT_GT(conf_lost, kSeeds / 20);
  EXPECT_GT(segments_deleted, kSeeds / 3);
}

TEST(Simulation, ACorruptLogIsNeverServed) {
  // Seed 13 damages a log while its node is down (docs/sim.md): its replicas stay down, and the run is
  // clean. Served anyway, from what could be read, the replica restarts without records it had
  // acknowledged, and the durable-state check says so.
  SimOptions o;
  o.seed = 13;
  const SimReport clean = Simulation(o).run();
  ASSERT_FALSE(clean.violation) << clean.kind << ": " << clean.detail;
  ASSERT_GT(clean.logs_damaged, 0u);
  EXPECT_GT(clean.replicas_kept_down, 0u);
  o.bug = PlantedBug::kServeCorruptLog;
  const SimReport served = Simulation(o).run();
  ASSERT_TRUE(served.violation);
  EXPECT_EQ(served.kind, "durable state");
}

TEST(Simulation, ViolationNamesItsReplayCommand) {
  SimOptions o;
  o.bug = PlantedBug::kApplyBeforeCommit;
  SimReport r;
  for (o.seed = 1; o.seed <= 20; ++o.seed) {
    r = Simulation(o).run();
    if (r.violation) break;
  }
  ASSERT_TRUE(r.violation);
  EXPECT_FALSE(r.kind.empty());
  const std::string seed = std::to_string(o.seed);
  EXPECT_EQ(replay_command(o, r.nodes), "tally-sim --seed " + seed + " --bug apply_before_commit");
  o.nodes = 7;
  EXPECT_EQ(replay_command(o, 7), "tally-sim --seed " + seed + " --nodes 7 --bug apply_before_commit");
  EXPECT_EQ(parse_planted_bug("lww_ignore_node_id"), PlantedBug::kLwwIgnoreNodeId);
  EXPECT_FALSE(parse_planted_bug("nonsense").has_value());
}

}  // namespace
}  // namespace tally::sim
