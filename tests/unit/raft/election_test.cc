// Elections: timeouts, the vote restriction, pre-vote, check-quorum, leader stickiness, transfer.
#include "tests/unit/raft/test_util.h"

namespace tally::raft::testing {
namespace {

TEST(Election, TimeoutElectsExactlyOneLeaderAndCommitsItsNoop) {
  Cluster c;
  c.add_nodes(range_ids(3), range_ids(3), {}, test_config());
  c.tick_all(25);  // randomized timeouts are within [10, 20)
  const NodeId lead = c.leader();
  ASSERT_NE(lead, kNoNode);
  int leaders = 0;
  for (NodeId n : c.ids()) {
    leaders += c.raw(n).role() == Role::kLeader ? 1 : 0;
    EXPECT_EQ(c.raw(n).leader(), lead);
    EXPECT_EQ(c.raw(n).term(), c.raw(lead).term());
    EXPECT_EQ(c.raw(n).commit_index(), 1u);  // the leader's no-op
  }
  EXPECT_EQ(leaders, 1);
  auto e = c.node(lead).storage->entries(1, 2, UINT64_MAX);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(e->front().type, EntryType::kNoop);
}

TEST(Election, CandidateWithShorterLogIsRefused) {
  Cluster c;
  Config cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  start_cluster(c, 3, cfg);
  c.partition({{1, 2}, {3}});
  ASSERT_TRUE(c.raw(1).propose("x").is_ok());
  c.settle();
  ASSERT_EQ(c.raw(2).commit_index(), 2u);
  c.heal();
  // Node 3 missed entry 2: its vote request is refused by 1 and 2 (they only adopt its term).
  ASSERT_TRUE(c.raw(3).campaign().is_ok());
  c.settle();
  EXPECT_EQ(c.raw(3).role(), Role::kFollower);  // a quorum refused it
  EXPECT_EQ(c.raw(1).term(), c.raw(3).term());
  EXPECT_EQ(c.raw(1).role(), Role::kFollower);
  c.tick_all(40);
  EXPECT_NE(c.leader(), 3u);
  EXPECT_NE(c.leader(), kNoNode);
}

TEST(Election, PreVoteKeepsAnIsolatedNodeFromRaisingItsTerm) {
  Cluster c;
  start_cluster(c, 3);
  const Term before = c.raw(1).term();
  c.partition({{1, 2}, {3}});
  c.tick_all(100);
  EXPECT_EQ(c.raw(3).term(), before);  // pre-votes failed, the term never moved
  c.heal();
  c.tick_all(5);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raw(1).term(), before);
}

TEST(Election, WithoutPreVoteAnIsolatedNodeDisruptsTheGroupOnReturn) {
  Cluster c;
  Config cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  start_cluster(c, 3, cfg);
  const Term before = c.raw(1).term();
  c.partition({{1, 2}, {3}});
  c.tick_all(100);
  EXPECT_GT(c.raw(3).term(), before + 3);
  c.heal();
  c.tick_all(30);
  EXPECT_GT(c.raw(c.leader()).term(), before + 3);  // the old leader was deposed by the term jump
}

TEST(Election, CheckQuorumMakesAnIsolatedLeaderStepDown) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1}, {2, 3}});
  // The first check after the partition still sees the peers heard from before it; the second does not.
  for (int t = 0; t < 19; ++t) {
    c.raw(1).tick();
    c.settle();
  }
  EXPECT_EQ(c.raw(1).role(), Role::kLeader);
  c.raw(1).tick();
  EXPECT_EQ(c.raw(1).role(), Role::kFollower);
  EXPECT_TRUE(c.raw(1).propose("x").code() == Code::kUnavailable);
}

TEST(Election, WithoutCheckQuorumAnIsolatedLeaderStaysLeader) {
  Cluster c;
  Config cfg = test_config();
  cfg.check_quorum = false;
  start_cluster(c, 3, cfg);
  c.partition({{1}, {2, 3}});
  for (int t = 0; t < 30; ++t) {
    c.raw(1).tick();
    c.settle();
  }
  EXPECT_EQ(c.raw(1).role(), Role::kLeader);
}

TEST(Election, FollowersInLeaseIgnoreADisruptiveVoteRequest) {
  Cluster c;
  start_cluster(c, 3);
  Message m;
  m.type = MessageType::kVote;
  m.from = 3;
  m.to = 2;
  m.term = c.raw(2).term() + 5;
  m.index = 100;
  m.log_term = 100;
  ASSERT_TRUE(c.raw(2).step(m).is_ok());
  EXPECT_EQ(c.raw(2).term(), m.term - 5);  // ignored: node 2 heard from leader 1 recently
  m.transfer = true;                       // a transfer is invited, so it passes
  ASSERT_TRUE(c.raw(2).step(m).is_ok());
  EXPECT_EQ(c.raw(2).term(), m.term);
}

TEST(Election, GrantedVoteIsInTheHardStateOfTheSameReady) {
  MemoryStorage s;
  Config cfg = test_config();
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  auto raw = RawNode::create(cfg, &s);
  ASSERT_TRUE(raw.is_ok());
  Message m;
  m.type = MessageType::kVote;
  m.from = 1;
  m.to = 2;
  m.term = 1;
  ASSERT_TRUE(raw.value()->step(m).is_ok());
  Ready rd = raw.value()->ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, 1u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_FALSE(rd.messages[0].reject);
}

// Crash after granting a vote, restart, and get asked by another candidate of the same term.
Message vote_after_restart(bool bug) {
  MemoryStorage s;
  Config cfg = test_config();
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  cfg.bugs.vote_without_persist = bug;
  {
    auto raw = RawNode::create(cfg, &s).value();
    Message m;
    m.type = MessageType::kVote;
    m.from = 1;
    m.to = 2;
    m.term = 1;
    TALLY_ASSERT(raw->step(m).is_ok());
    Ready rd = raw->ready();
    if (rd.hard_state) s.set_hard_state(*rd.hard_state);
    raw->advance();
  }
  auto raw = RawNode::create(cfg, &s).value();
  Message m;
  m.type = MessageType::kVote;
  m.from = 3;
  m.to = 2;
  m.term = 1;
  TALLY_ASSERT(raw->step(m).is_ok());
  Ready rd = raw->ready();
  TALLY_ASSERT(rd.messages.size() == 1);
  return rd.messages[0];
}

TEST(Election, VoteSurvivesACrashUnlessTheVoteWithoutPersistBugIsPlanted) {
  EXPECT_TRUE(vote_after_restart(false).reject);
  EXPECT_FALSE(vote_after_restart(true).reject);  // two votes in one term: the planted bug
}

TEST(Transfer, LeadershipMovesToTheTargetAndProposalsPauseMeanwhile) {
  Cluster c;
  start_cluster(c, 3);
  const Term before = c.raw(1).term();
  c.partition({{1, 2}, {3}});
  ASSERT_TRUE(c.raw(1).propose("a").is_ok());
  c.settle();
  c.heal();
  ASSERT_TRUE(c.raw(1).transfer_leader(3).is_ok());
  EXPECT_EQ(c.raw(1).propose("b").code(), Code::kUnavailable);
  c.settle();  // 3 catches up first, then gets TimeoutNow
  EXPECT_EQ(c.leader(), 3u);
  EXPECT_EQ(c.raw(3).term(), before + 1);
  EXPECT_EQ(c.raw(1).role(), Role::kFollower);
  ASSERT_TRUE(c.raw(3).propose("b").is_ok());
  c.settle();
  EXPECT_EQ(c.node(1).applied, (std::vector<std::string>{"a", "b"}));
}

TEST(Transfer, AbortsAfterAnElectionTimeoutWhenTheTargetIsUnreachable) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1, 2}, {3}});
  ASSERT_TRUE(c.raw(1).transfer_leader(3).is_ok());
  c.settle();
  EXPECT_EQ(c.raw(1).status().lead_transferee, 3u);
  for (int t = 0; t < 10; ++t) {
    c.raw(1).tick();
    c.raw(2).tick();
    c.settle();
  }
  EXPECT_EQ(c.raw(1).status().lead_transferee, kNoNode);
  EXPECT_TRUE(c.raw(1).propose("x").is_ok());
}

TEST(Learner, NeverCampaigns) {
  Cluster c;
  c.add_nodes({1, 2, 3}, {1, 2}, {3}, test_config());
  for (int t = 0; t < 100; ++t) c.raw(3).tick();
  c.settle();
  EXPECT_EQ(c.raw(3).term(), 0u);
  EXPECT_EQ(c.raw(3).campaign().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace tally::raft::testing

namespace tally::raft::testing {
namespace {

TEST(Election, GrantSupersededByAHigherTermBeforeTheReadyIsStillSafeToSend) {
  MemoryStorage s;
  Config cfg = test_config();
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  auto raw = RawNode::create(cfg, &s).value();
  Message v;
  v.type = MessageType::kVote;
  v.from = 1;
  v.to = 2;
  v.term = 5;
  ASSERT_TRUE(raw->step(v).is_ok());
  Message a;
  a.type = MessageType::kHeartbeat;
  a.from = 3;
  a.to = 2;
  a.term = 6;
  ASSERT_TRUE(raw->step(a).is_ok());
  Ready rd = raw->ready();  // the term-6 hard state covers the term-5 grant
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 6u);
  EXPECT_EQ(rd.hard_state->vote, kNoNode);
  ASSERT_EQ(rd.messages.size(), 2u);
  EXPECT_EQ(rd.messages[0].type, MessageType::kVoteResp);
  EXPECT_FALSE(rd.messages[0].reject);
}

}  // namespace
}  // namespace tally::raft::testing
