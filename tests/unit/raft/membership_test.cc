// Membership: single-server changes one at a time, learners, removal, and their guards.
#include "tests/unit/raft/test_util.h"

namespace tally::raft::testing {
namespace {

TEST(Membership, NewVoterJoinsAndCountsTowardsTheQuorum) {
  Cluster c;
  start_cluster(c, 3);
  c.add_nodes({4}, {}, {}, test_config());
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddVoter, 4, {}}).is_ok());
  c.settle();
  c.tick_all(2);
  EXPECT_EQ(c.raw(1).status().conf.voters, (std::vector<NodeId>{1, 2, 3, 4}));
  EXPECT_EQ(c.raw(4).status().conf.voters, (std::vector<NodeId>{1, 2, 3, 4}));
  // Four voters: a quorum is three, so 1 and 2 alone can no longer commit.
  c.partition({{1, 2}, {3, 4}});
  ASSERT_TRUE(c.raw(1).propose("x").is_ok());
  c.settle();
  EXPECT_TRUE(c.node(1).applied.empty());
  c.heal();
  c.tick_all(1);
  EXPECT_EQ(c.node(4).applied, (std::vector<std::string>{"x"}));
}

TEST(Membership, OnlyOneChangeAtATime) {
  Cluster c;
  start_cluster(c, 3);
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 4, {}}).is_ok());
  EXPECT_EQ(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 5, {}}).code(), Code::kUnavailable);
  c.add_nodes({4}, {}, {}, test_config());
  c.settle();
  EXPECT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 5, {}}).is_ok());
}

TEST(Membership, RefusedBeforeTheLeaderCommittedAnEntryOfItsTerm) {
  Cluster c;
  c.add_nodes(range_ids(3), range_ids(3), {}, test_config());
  elect_without_commit(c, 1);
  EXPECT_EQ(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kRemoveNode, 3, {}}).code(), Code::kUnavailable);
  c.settle();
  EXPECT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kRemoveNode, 3, {}}).is_ok());
}

TEST(Membership, ChangeThatLeavesNoVoterIsRefused) {
  Cluster c;
  c.add_nodes({1, 2}, {1}, {2}, test_config());
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(1).is_leader());
  EXPECT_EQ(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 1, {}}).code(), Code::kInvalidArgument);
  EXPECT_EQ(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kRemoveNode, 1, {}}).code(), Code::kInvalidArgument);
  EXPECT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddVoter, 2, {}}).is_ok());
}

TEST(Learner, ReceivesTheLogButIsNotCounted) {
  Cluster c;
  c.add_nodes({1, 2, 3}, {1, 2}, {3}, test_config());
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(1).is_leader());
  TallyInput in = c.raw(1).tally_input();
  EXPECT_EQ(in.voter_mask, 0b011u);  // slot 2 (node 3) carries a match but no vote
  // 1 and the learner 3 alone cannot commit.
  c.partition({{1, 3}, {2}});
  ASSERT_TRUE(c.raw(1).propose("x").is_ok());
  c.settle();
  EXPECT_EQ(c.raw(1).commit_index(), 1u);
  EXPECT_EQ(c.node(3).storage->last_index(), 2u);  // but the learner has the entry
  c.heal();
  c.tick_all(1);
  EXPECT_EQ(c.node(3).applied, (std::vector<std::string>{"x"}));
}

TEST(Learner, PromotionMakesItAVoter) {
  Cluster c;
  c.add_nodes({1, 2, 3}, {1, 2}, {3}, test_config());
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddVoter, 3, {}}).is_ok());
  c.settle();
  EXPECT_EQ(c.raw(3).status().conf.voters, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_TRUE(c.raw(3).status().conf.learners.empty());
  EXPECT_TRUE(c.raw(3).campaign().is_ok());
}

TEST(Membership, RemovedLeaderStepsDownAndTheRestElect) {
  Cluster c;
  start_cluster(c, 3);
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kRemoveNode, 1, {}}).is_ok());
  c.settle();
  EXPECT_NE(c.raw(1).role(), Role::kLeader);
  c.partition({{2, 3}, {1}});
  for (int t = 0; t < 40; ++t) {
    c.raw(2).tick();
    c.raw(3).tick();
    c.settle();
  }
  const NodeId lead = c.leader();
  ASSERT_TRUE(lead == 2 || lead == 3);
  EXPECT_EQ(c.raw(lead).status().conf.voters, (std::vector<NodeId>{2, 3}));
}

TEST(Membership, GroupsAreCappedAtTheTallyWidth) {
  Cluster c;
  start_cluster(c, 7);
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 8, {}}).is_ok());
  c.add_nodes({8}, {}, {}, test_config());
  c.settle();
  EXPECT_EQ(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddLearner, 9, {}}).code(),
            Code::kResourceExhausted);
}

}  // namespace
}  // namespace tally::raft::testing
