// Linearizable reads: ReadIndex on the leader and through followers, and lease reads.
#include "tests/unit/raft/test_util.h"

namespace tally::raft::testing {
namespace {

TEST(ReadIndex, LeaderConfirmsWithAHeartbeatQuorumBeforeAnswering) {
  Cluster c;
  start_cluster(c, 3);
  ASSERT_TRUE(c.raw(1).propose("a").is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(1).read_index("r1").is_ok());
  c.process_ready(1, nullptr);
  EXPECT_TRUE(c.node(1).reads.empty());  // not before a quorum answered the heartbeat round
  c.settle();
  ASSERT_EQ(c.node(1).reads.size(), 1u);
  EXPECT_EQ(c.node(1).reads[0].index, 2u);
  EXPECT_EQ(c.node(1).reads[0].context, "r1");
}

TEST(ReadIndex, DeposedLeaderNeverAnswers) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1}, {2, 3}});
  ASSERT_TRUE(c.raw(1).read_index("stale").is_ok());
  c.settle();
  for (int t = 0; t < 30; ++t) {
    c.raw(2).tick();
    c.raw(3).tick();
    c.settle();
  }
  ASSERT_NE(c.leader(), kNoNode);
  EXPECT_TRUE(c.node(1).reads.empty());
}

TEST(ReadIndex, ReadsBeforeTheNextRoundShareIt) {
  Cluster c;
  start_cluster(c, 3);
  // A burst far beyond the rounds a lease remembers: one heartbeat round confirms them all.
  constexpr int kReads = 1000;
  for (int i = 0; i < kReads; ++i) ASSERT_TRUE(c.raw(1).read_index("r" + std::to_string(i)).is_ok());
  c.process_ready(1, nullptr);
  size_t heartbeats = 0;
  for (const Message& m : c.queue()) heartbeats += m.type == MessageType::kHeartbeat ? 1 : 0;
  EXPECT_EQ(heartbeats, 2u);  // one round, to each follower
  c.settle();
  ASSERT_EQ(c.node(1).reads.size(), static_cast<size_t>(kReads));
  EXPECT_EQ(c.node(1).reads.back().context, "r999");
  EXPECT_TRUE(c.node(1).failed_reads.empty());
}

TEST(ReadIndex, DeposedLeaderFailsItsWaitingReads) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1}, {2, 3}});
  ASSERT_TRUE(c.raw(1).read_index("cut-off").is_ok());
  c.settle();
  EXPECT_TRUE(c.node(1).failed_reads.empty());  // still waiting for its round
  for (int t = 0; t < 25 && c.raw(1).is_leader(); ++t) {
    c.raw(1).tick();
    c.settle();
  }
  ASSERT_FALSE(c.raw(1).is_leader());  // check-quorum stepped it down
  EXPECT_EQ(c.node(1).failed_reads, (std::vector<std::string>{"cut-off"}));
  EXPECT_TRUE(c.node(1).reads.empty());
}

TEST(ReadIndex, ForwardedReadFailsWhenRefusedOrUnanswered) {
  Cluster c;
  c.add_nodes(range_ids(3), range_ids(3), {}, test_config());
  elect_without_commit(c, 1);
  c.settle();  // 2 and 3 learn the leader from its append; the no-op is committed by now
  ASSERT_TRUE(c.raw(2).read_index("answered").is_ok());
  c.settle();
  EXPECT_EQ(c.node(2).reads.size(), 1u);
  // The request is lost: after an election timeout of ticks the follower gives up.
  c.cut({2}, {1});
  ASSERT_TRUE(c.raw(2).read_index("lost").is_ok());
  c.settle();
  for (int t = 0; t < 10; ++t) {
    c.raw(2).tick();
    c.process_ready(2, nullptr);
  }
  EXPECT_EQ(c.node(2).failed_reads, (std::vector<std::string>{"lost"}));
  // A node that is not the leader refuses a forwarded read at once.
  c.heal();
  Message m;
  m.type = MessageType::kReadIndex;
  m.from = 2;
  m.to = 3;
  m.term = c.raw(3).term();
  m.context = "misdirected";
  ASSERT_TRUE(c.raw(3).step(m).is_ok());
  c.process_ready(3, nullptr);
  ASSERT_EQ(c.queue().size(), 1u);
  EXPECT_EQ(c.queue()[0].type, MessageType::kReadIndexResp);
  EXPECT_TRUE(c.queue()[0].reject);
}

TEST(ReadIndex, RefusedUntilTheLeaderCommittedAnEntryOfItsTerm) {
  Cluster c;
  c.add_nodes(range_ids(3), range_ids(3), {}, test_config());
  elect_without_commit(c, 1);
  EXPECT_EQ(c.raw(1).read_index("early").code(), Code::kUnavailable);
  c.settle();
  EXPECT_TRUE(c.raw(1).read_index("later").is_ok());
}

TEST(ReadIndex, FollowerForwardsToTheLeader) {
  Cluster c;
  start_cluster(c, 3);
  ASSERT_TRUE(c.raw(1).propose("a").is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(3).read_index("f1").is_ok());
  c.settle();
  ASSERT_EQ(c.node(3).reads.size(), 1u);
  EXPECT_EQ(c.node(3).reads[0].index, 2u);
  EXPECT_TRUE(c.node(1).reads.empty());
}

TEST(LeaseRead, ServedLocallyWhileTheLeaseHoldsThenConfirmedAgain) {
  Cluster c;
  Config cfg = test_config();
  cfg.lease_read.enabled = true;
  cfg.lease_read.tick_interval_ms = 100;  // lease = 10 ticks * 100 ms - drift
  cfg.lease_read.clock_drift_max_ms = 50;
  start_cluster(c, 3, cfg);
  c.set_time_ms(1, 1000);
  c.tick_all(1);  // heartbeat round sent at 1000 ms, acknowledged by both followers
  c.set_time_ms(1, 1900);
  ASSERT_TRUE(c.raw(1).read_index("fast").is_ok());
  c.process_ready(1, nullptr);
  ASSERT_EQ(c.node(1).reads.size(), 1u);  // no heartbeat round needed
  EXPECT_TRUE(c.queue().empty());
  // 1000 + 1000 - 50 = 1950: at 1960 the lease no longer covers the drift bound.
  c.set_time_ms(1, 1960);
  ASSERT_TRUE(c.raw(1).read_index("slow").is_ok());
  c.process_ready(1, nullptr);
  EXPECT_EQ(c.node(1).reads.size(), 1u);
  EXPECT_FALSE(c.queue().empty());  // a heartbeat round confirms it instead
  c.settle();
  EXPECT_EQ(c.node(1).reads.size(), 2u);
}

TEST(LeaseRead, PartitionedLeaderStopsServingOnceTheLeaseRunsOut) {
  Cluster c;
  Config cfg = test_config();
  cfg.lease_read.enabled = true;
  start_cluster(c, 3, cfg);
  c.set_time_ms(1, 0);
  c.tick_all(1);
  c.partition({{1}, {2, 3}});
  c.set_time_ms(1, 2000);
  ASSERT_TRUE(c.raw(1).read_index("late").is_ok());
  c.settle();
  EXPECT_TRUE(c.node(1).reads.empty());
}

TEST(LeaseRead, ConfigRequiresCheckQuorumAndAClock) {
  TestClock clock;
  Config cfg = test_config();
  cfg.id = 1;
  cfg.voters = {1};
  cfg.lease_read.enabled = true;
  cfg.lease_read.clock = &clock;
  EXPECT_TRUE(cfg.validate().is_ok());
  cfg.check_quorum = false;
  EXPECT_FALSE(cfg.validate().is_ok());
  cfg.check_quorum = true;
  cfg.lease_read.clock = nullptr;  // a lease measured on no clock at all
  EXPECT_FALSE(cfg.validate().is_ok());
  cfg.lease_read.clock = &clock;
  cfg.lease_read.clock_drift_max_ms = cfg.election_tick * cfg.lease_read.tick_interval_ms;
  EXPECT_FALSE(cfg.validate().is_ok());
}

TEST(LeaseRead, FollowerStaysStickyForAnElectionTimeoutOfItsClockNotJustOfTicks) {
  Cluster c;
  Config cfg = test_config();
  cfg.lease_read.enabled = true;
  cfg.lease_read.tick_interval_ms = 100;
  start_cluster(c, 3, cfg);
  c.set_time_ms(1, 1000);
  c.set_time_ms(2, 1000);
  c.set_time_ms(3, 1000);
  c.tick_all(1);  // node 1's heartbeat reaches 2 and 3 at 1000 ms
  c.partition({{1}, {2, 3}});
  // Ten ticks in 901 ms: by ticks alone 2 and 3 would elect a leader.
  c.set_time_ms(2, 1901);
  c.set_time_ms(3, 1901);
  for (int t = 0; t < 30; ++t) {
    c.raw(2).tick();
    c.raw(3).tick();
    c.settle();
  }
  EXPECT_NE(c.raw(2).role(), Role::kLeader);
  EXPECT_NE(c.raw(3).role(), Role::kLeader);
  c.set_time_ms(2, 2001);
  c.set_time_ms(3, 2001);
  for (int t = 0; t < 30 && c.leader() == 1; ++t) {
    c.raw(2).tick();
    c.raw(3).tick();
    c.settle();
  }
  EXPECT_TRUE(c.raw(2).role() == Role::kLeader || c.raw(3).role() == Role::kLeader);
}

}  // namespace
}  // namespace tally::raft::testing
