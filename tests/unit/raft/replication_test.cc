// Log replication: ordering, conflict repair, the commit rule (Figure 8), flow control, batching,
// snapshots, the tally seam and the planted replication bugs.
#include <algorithm>

#include "host/replication/raft/tally_batch.h"
#include "tests/unit/raft/test_util.h"

namespace tally::raft::testing {
namespace {

TEST(Replication, ProposalsCommitAndApplyInOrderEverywhere) {
  Cluster c;
  start_cluster(c, 3);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.raw(1).propose("v" + std::to_string(i)).is_ok());
    c.settle();
  }
  const std::vector<std::string> want = {"v0", "v1", "v2", "v3", "v4"};
  for (NodeId n : c.ids()) {
    EXPECT_EQ(c.node(n).applied, want) << n;
    EXPECT_EQ(c.raw(n).commit_index(), 6u);
  }
}

TEST(Replication, FollowerProposalIsRefused) {
  Cluster c;
  start_cluster(c, 3);
  EXPECT_EQ(c.raw(2).propose("x").code(), Code::kUnavailable);
}

TEST(Replication, ConflictingUncommittedSuffixIsRepaired) {
  Cluster c;
  Config cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  start_cluster(c, 3, cfg);
  // Leader 1 appends two entries only it holds, then loses leadership.
  c.partition({{1}, {2, 3}});
  ASSERT_TRUE(c.raw(1).propose(std::vector<std::string>{"lost1", "lost2"}).is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(2).campaign().is_ok());
  c.settle();
  ASSERT_EQ(c.raw(2).role(), Role::kLeader);
  ASSERT_TRUE(c.raw(2).propose("kept").is_ok());
  c.settle();
  c.heal();
  c.tick_all(3);
  // Node 1's entries 2 and 3 conflict with leader 2's log and are replaced.
  EXPECT_EQ(c.raw(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).applied, (std::vector<std::string>{"kept"}));
  EXPECT_EQ(c.node(1).storage->last_index(), c.node(2).storage->last_index());
  EXPECT_EQ(c.node(1).storage->term(3).value(), c.raw(2).term());
}

TEST(Replication, ConflictRepairSkipsAWholeTermPerRoundTrip) {
  Cluster c;
  Config cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  start_cluster(c, 3, cfg);
  c.partition({{1}, {2, 3}});
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.raw(1).propose("old" + std::to_string(i)).is_ok());
  c.settle();  // 1/2..1/21: twenty term-1 entries only node 1 holds
  ASSERT_TRUE(c.raw(2).campaign().is_ok());
  c.settle();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.raw(2).propose("new" + std::to_string(i)).is_ok());
  c.settle();  // 2/2..2/7 on 2 and 3
  ASSERT_TRUE(c.raw(3).campaign().is_ok());
  c.settle();  // fresh leader 3 (term 3) probes node 1 from the end of its own log
  ASSERT_TRUE(c.raw(3).is_leader());
  c.heal();
  c.raw(3).tick();
  size_t rejects = 0;
  for (int round = 0; round < 50; ++round) {
    for (NodeId n : c.ids()) c.process_ready(n, nullptr);
    if (c.queue().empty()) break;
    for (const Message& m : c.queue()) rejects += (m.type == MessageType::kAppendResp && m.reject) ? 1 : 0;
    c.deliver({}, {}, nullptr);
  }
  // Node 1's hint says "my entry 7 has term 1"; the leader skips its whole term-2 run at once.
  EXPECT_EQ(rejects, 1u);
  EXPECT_EQ(c.node(1).applied, c.node(3).applied);
  EXPECT_EQ(c.node(1).storage->last_index(), c.node(3).storage->last_index());
}

// Figure 8 of the Raft paper (the steps of tests/sim/scenarios/figure8.txt). Returns node 1's
// commit index once it, leader of term 3, holds the term-1 entry "a" at index 2 on a majority
// (nodes 1, 2, 3) while its own no-op is on two nodes only.
Index figure8_commit(bool bug, std::vector<std::string>* applied) {
  Cluster c;
  Config cfg = test_config();
  cfg.pre_vote = false;
  cfg.check_quorum = false;
  cfg.max_size_per_msg = 1;  // one entry per append, so index 2 travels alone
  cfg.bugs.count_prior_term_replicas = bug;
  c.add_nodes(range_ids(5), range_ids(5), {}, cfg);
  TALLY_ASSERT(c.raw(1).campaign().is_ok());
  c.settle();
  c.partition({{1, 2}, {3, 4, 5}});
  TALLY_ASSERT(c.raw(1).propose("a").is_ok());
  c.settle();  // 1/2 "a" on nodes 1 and 2 only
  c.crash(1);
  TALLY_ASSERT(c.raw(5).campaign().is_ok());  // 5 wins term 2 with 3 and 4, appends 2/2, crashes
  c.stabilize({5}, nullptr);
  c.deliver({3, 4}, {}, nullptr);
  c.stabilize({3, 4}, nullptr);
  c.deliver({5}, {}, nullptr);
  c.process_ready(5, nullptr);
  TALLY_ASSERT(c.raw(5).is_leader());
  c.crash(5);
  TALLY_ASSERT(c.restart(1).is_ok());
  c.partition({{1, 2, 3, 4}, {5}});
  TALLY_ASSERT(c.raw(1).campaign().is_ok());  // loses term 2 (3 and 4 voted for 5)
  c.settle();
  TALLY_ASSERT(c.raw(1).campaign().is_ok());  // wins term 3
  c.stabilize({1}, nullptr);
  c.deliver({2, 3, 4}, {}, nullptr);
  c.stabilize({2, 3, 4}, nullptr);
  c.deliver({1}, {}, nullptr);
  c.process_ready(1, nullptr);
  TALLY_ASSERT(c.raw(1).is_leader());
  c.deliver({2, 3}, {4}, nullptr);  // 2 takes the no-op 3/3, 3 rejects (it lacks index 2)
  c.process_ready(2, nullptr);
  c.process_ready(3, nullptr);
  c.deliver({1}, {}, nullptr);
  c.process_ready(1, nullptr);  // probe: 1/2 "a" to node 3
  c.deliver({3}, {}, nullptr);
  c.process_ready(3, nullptr);
  c.deliver({1}, {}, nullptr);
  c.process_ready(1, nullptr);
  *applied = c.node(1).applied;
  return c.raw(1).commit_index();
}

TEST(CommitRule, Figure8LeaderDoesNotCommitAnEarlierTermEntryOnAMajority) {
  std::vector<std::string> applied;
  EXPECT_EQ(figure8_commit(false, &applied), 1u);
  EXPECT_TRUE(applied.empty());
  // Planted bug: it counts the replicas and commits index 2, which node 5 can still overwrite.
  EXPECT_EQ(figure8_commit(true, &applied), 2u);
  EXPECT_EQ(applied, (std::vector<std::string>{"a"}));
}

TEST(CommitRule, ExternalTallyCommitsOnlyThroughTheDriver) {
  Cluster c;
  Config cfg = test_config();
  cfg.external_tally = true;
  c.add_nodes(range_ids(3), range_ids(3), {}, cfg);
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  ASSERT_TRUE(c.raw(1).is_leader());
  EXPECT_EQ(c.raw(1).commit_index(), 0u);  // nothing commits until the driver tallies
  TallyInput in = c.raw(1).tally_input();
  EXPECT_EQ(in.voter_mask, 0b111u);
  EXPECT_EQ(in.match[0], 1u);
  uint64_t q = 0;
  kernels::tally_commit_cpu(in.match, &in.voter_mask, 1, &q);
  EXPECT_EQ(q, 1u);
  EXPECT_TRUE(c.raw(1).commit_to_quorum_index(in, q));
  EXPECT_EQ(c.raw(1).commit_index(), 1u);
  EXPECT_FALSE(c.raw(1).commit_to_quorum_index(in, q));  // never twice, never backwards
}

TEST(CommitRule, AsyncTallyResultIsDroppedOnceTheTermOrTheVotersChanged) {
  Cluster c;
  Config cfg = test_config();
  cfg.external_tally = true;
  c.add_nodes(range_ids(4), {1, 2, 3}, {4}, cfg);
  ASSERT_TRUE(c.raw(1).campaign().is_ok());
  c.settle();
  TallyBatch batch;
  std::vector<RawNode*> nodes = {&c.raw(1)};
  ASSERT_EQ(batch.run(nodes), 1u);  // the no-op commits
  c.settle();
  // A batch built now, whose result comes back after the learner was promoted: the quorum
  // index counted a majority of three voters, and there are four now.
  ASSERT_TRUE(c.raw(1).propose_conf_change(ConfChange{ConfChangeType::kAddVoter, 4, {}}).is_ok());
  c.settle();
  ASSERT_EQ(batch.run(nodes), 1u);
  c.settle();
  ASSERT_EQ(c.raw(1).status().conf.voters, (std::vector<NodeId>{1, 2, 3, 4}));
  c.partition({{1, 2}, {3, 4}});
  ASSERT_TRUE(c.raw(1).propose("x").is_ok());
  c.settle();
  const TallyInput before = c.raw(1).tally_input();
  ASSERT_EQ(quorum::committed_index(before), 2u);  // 1 and 2 of 4 voters: not a majority
  TallyInput stale = before;
  stale.voter_mask = 0b0111;  // as if tallied with the three voters of before the promotion
  stale.conf_version -= 1;
  EXPECT_FALSE(c.raw(1).commit_to_quorum_index(stale, quorum::committed_index(stale)));
  EXPECT_EQ(c.raw(1).commit_index(), 2u);
  // Same configuration, later term: dropped too.
  TallyInput old_term = before;
  old_term.term -= 1;
  EXPECT_FALSE(c.raw(1).commit_to_quorum_index(old_term, 3));
  // A fresh tally of the current term and configuration is applied.
  c.heal();
  c.tick_all(2);  // heartbeats bring 3 and 4 the entry
  EXPECT_EQ(batch.build(nodes), 1u);
  const std::vector<uint64_t> commit = {quorum::committed_index(c.raw(1).tally_input())};
  EXPECT_EQ(batch.apply(commit), 1u);
  EXPECT_EQ(c.raw(1).commit_index(), 3u);
}

TEST(CommitRule, ManyGroupsTallyInOneBatch) {
  // A node-level driver gathers every group's input into one structure-of-arrays batch.
  constexpr size_t kGroups = 3;
  std::vector<Cluster> clusters(kGroups);
  Config cfg = test_config();
  cfg.external_tally = true;
  for (auto& c : clusters) {
    c.add_nodes(range_ids(3), range_ids(3), {}, cfg);
    ASSERT_TRUE(c.raw(1).campaign().is_ok());
    c.settle();
  }
  ASSERT_TRUE(clusters[1].raw(1).propose("x").is_ok());
  clusters[1].settle();
  std::vector<uint64_t> match(kGroups * kernels::kTallyReplicasMax);
  std::vector<uint32_t> masks(kGroups);
  std::vector<uint64_t> commit(kGroups);
  for (size_t g = 0; g < kGroups; ++g) {
    TallyInput in = clusters[g].raw(1).tally_input();
    std::copy(in.match, in.match + kernels::kTallyReplicasMax, match.begin() + g * kernels::kTallyReplicasMax);
    masks[g] = in.voter_mask;
  }
  kernels::tally_commit_cpu(match.data(), masks.data(), kGroups, commit.data());
  // Group 1 also replicated "x" at index 2; nothing is committed until the driver hands it back.
  EXPECT_EQ(commit, (std::vector<uint64_t>{1, 2, 1}));
  for (size_t g = 0; g < kGroups; ++g) {
    EXPECT_EQ(clusters[g].raw(1).commit_index(), 0u);
    EXPECT_TRUE(clusters[g].raw(1).commit_to_quorum_index(clusters[g].raw(1).tally_input(), commit[g]));
    clusters[g].settle();
    EXPECT_EQ(clusters[g].raw(2).commit_index(), commit[g]);  // followers learn it
  }
  EXPECT_EQ(clusters[1].node(3).applied, (std::vector<std::string>{"x"}));
}

TEST(CommitRule, TallyBatchCommitsEveryLeaderGroupInOneCall) {
  constexpr size_t kGroups = 4;
  std::vector<Cluster> clusters(kGroups);
  Config cfg = test_config();
  cfg.external_tally = true;
  std::vector<RawNode*> nodes;
  for (size_t g = 0; g < kGroups; ++g) {
    clusters[g].add_nodes(range_ids(3), range_ids(3), {}, cfg);
    ASSERT_TRUE(clusters[g].raw(1).campaign().is_ok());
    clusters[g].settle();
    for (NodeId n = 1; n <= 3; ++n) nodes.push_back(&clusters[g].raw(n));  // followers are skipped
  }
  TallyBatch batch;
  EXPECT_EQ(batch.run(nodes), kGroups);  // every group commits its replicated no-op
  EXPECT_EQ(batch.voter_mask().size(), kGroups);
  EXPECT_EQ(batch.match().size(), kGroups * kernels::kTallyReplicasMax);
  for (size_t g = 0; g < kGroups; ++g) EXPECT_EQ(clusters[g].raw(1).commit_index(), 1u);
  clusters[2].partition({{1}, {2, 3}});
  ASSERT_TRUE(clusters[2].raw(1).propose("cut off").is_ok());
  ASSERT_TRUE(clusters[0].raw(1).propose("ok").is_ok());
  clusters[0].settle();
  clusters[2].settle();
  EXPECT_EQ(batch.run(nodes), 1u);  // only group 0 has a new quorum
  EXPECT_EQ(clusters[0].raw(1).commit_index(), 2u);
  EXPECT_EQ(clusters[2].raw(1).commit_index(), 1u);
}

TEST(Replication, FollowerRejectsMismatchedPrevTermUnlessTheBugIsPlanted) {
  for (bool bug : {false, true}) {
    MemoryStorage s;
    ASSERT_TRUE(s.append({Entry{1, 1, EntryType::kNoop, {}}}).is_ok());
    s.set_hard_state(HardState{1, 1, 0});
    Config cfg = test_config();
    cfg.id = 2;
    cfg.voters = {1, 2, 3};
    cfg.bugs.accept_mismatched_prev_term = bug;
    auto raw = RawNode::create(cfg, &s).value();
    Message m;
    m.type = MessageType::kAppend;
    m.from = 3;
    m.to = 2;
    m.term = 2;
    m.index = 1;
    m.log_term = 2;  // our entry 1 has term 1
    m.entries = {Entry{2, 2, EntryType::kNormal, "x"}};
    ASSERT_TRUE(raw->step(m).is_ok());
    Ready rd = raw->ready();
    ASSERT_EQ(rd.messages.size(), 1u);
    EXPECT_EQ(rd.messages[0].reject, !bug) << bug;
    EXPECT_EQ(rd.entries.size(), bug ? 1u : 0u);
  }
}

TEST(Replication, ApplyBeforeCommitBugHandsOutUncommittedEntries) {
  for (bool bug : {false, true}) {
    Cluster c;
    Config cfg = test_config();
    cfg.bugs.apply_before_commit = bug;
    start_cluster(c, 3, cfg);
    c.partition({{1}, {2, 3}});
    ASSERT_TRUE(c.raw(1).propose("uncommitted").is_ok());
    c.settle();
    EXPECT_EQ(c.raw(1).commit_index(), 1u);
    EXPECT_EQ(c.node(1).applied.size(), bug ? 1u : 0u) << bug;
  }
}

TEST(FlowControl, InflightMessagesAreBoundedPerFollower) {
  Cluster c;
  Config cfg = test_config();
  cfg.max_inflight_msgs = 2;
  cfg.max_size_per_msg = 1;  // one entry per message
  start_cluster(c, 3, cfg);
  ASSERT_TRUE(c.raw(1).propose(std::vector<std::string>{"a", "b", "c", "d", "e"}).is_ok());
  c.process_ready(1, nullptr);
  size_t to2 = 0;
  for (const Message& m : c.queue()) to2 += (m.to == 2 && m.type == MessageType::kAppend) ? 1 : 0;
  EXPECT_EQ(to2, 2u);  // the window, not five
  EXPECT_EQ(c.raw(1).status().progress.at(2).inflights.msgs(), 2u);
  c.settle();  // acks open the window until everything is through
  EXPECT_EQ(c.node(2).applied, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(c.raw(1).status().progress.at(2).inflights.msgs(), 0u);
}

TEST(FlowControl, InflightBytesAreBoundedPerFollower) {
  Cluster c;
  Config cfg = test_config();
  cfg.max_inflight_bytes = 100;
  cfg.max_size_per_msg = 1;
  start_cluster(c, 3, cfg);
  ASSERT_TRUE(c.raw(1).propose(std::vector<std::string>(10, std::string(40, 'x'))).is_ok());
  c.process_ready(1, nullptr);
  size_t to2 = 0;
  for (const Message& m : c.queue()) to2 += (m.to == 2 && m.type == MessageType::kAppend) ? 1 : 0;
  EXPECT_EQ(to2, 2u);  // 64 bytes each: the second crosses the 100-byte window
  c.settle();
  EXPECT_EQ(c.node(3).applied.size(), 10u);
}

TEST(FlowControl, InflightEntriesAreBoundedPerFollower) {
  Cluster c;
  Config cfg = test_config();
  cfg.max_inflight_entries = 3;
  start_cluster(c, 3, cfg);
  ASSERT_TRUE(c.raw(1).propose(std::vector<std::string>(10, "e")).is_ok());
  c.process_ready(1, nullptr);
  size_t entries_to_2 = 0;
  for (const Message& m : c.queue()) {
    if (m.to == 2 && m.type == MessageType::kAppend) entries_to_2 += m.entries.size();
  }
  EXPECT_EQ(entries_to_2, 3u);  // one message cut to the window, then paused
  EXPECT_EQ(c.raw(1).status().progress.at(2).inflights.entries(), 3u);
  c.settle();
  EXPECT_EQ(c.node(2).applied.size(), 10u);
  EXPECT_EQ(c.raw(1).status().progress.at(2).inflights.entries(), 0u);
}

TEST(FlowControl, UncommittedProposalsAreBounded) {
  Cluster c;
  Config cfg = test_config();
  cfg.max_uncommitted_entries = 4;
  start_cluster(c, 3, cfg);
  c.partition({{1}, {2, 3}});
  EXPECT_TRUE(c.raw(1).propose(std::vector<std::string>{"a", "b", "c", "d"}).is_ok());
  EXPECT_EQ(c.raw(1).propose("e").code(), Code::kResourceExhausted);
}

TEST(Batching, ProposalsBetweenTwoReadysShareOneAppendPerFollower) {
  Cluster c;
  start_cluster(c, 3);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.raw(1).propose("p" + std::to_string(i)).is_ok());
  c.process_ready(1, nullptr);
  size_t appends = 0;
  size_t entries = 0;
  for (const Message& m : c.queue()) {
    if (m.type != MessageType::kAppend) continue;
    ++appends;
    entries += m.entries.size();
  }
  EXPECT_EQ(appends, 2u);
  EXPECT_EQ(entries, 20u);
  c.settle();
  EXPECT_EQ(c.node(3).applied.size(), 10u);
}

TEST(Snapshot, LaggingFollowerInstallsTheLeadersSnapshot) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1, 2}, {3}});
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(c.raw(1).propose("s" + std::to_string(i)).is_ok());
  c.settle();
  ASSERT_TRUE(c.compact(1, 6).is_ok());  // node 3 now needs entries the leader dropped
  c.heal();
  c.tick_all(2);
  EXPECT_EQ(c.node(3).storage->snapshot()->metadata.index, 6u);
  EXPECT_EQ(c.node(3).applied, c.node(1).applied);
  EXPECT_EQ(c.raw(3).commit_index(), 7u);
  ASSERT_TRUE(c.raw(1).propose("after").is_ok());
  c.settle();
  EXPECT_EQ(c.node(3).applied.back(), "after");
  EXPECT_EQ(c.raw(1).status().progress.at(3).state, ProgressState::kReplicate);
}

TEST(Snapshot, LostSnapshotIsResent) {
  Cluster c;
  start_cluster(c, 3);
  c.partition({{1, 2}, {3}});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.raw(1).propose("s" + std::to_string(i)).is_ok());
  c.settle();
  ASSERT_TRUE(c.compact(1, 4).is_ok());
  c.heal();
  // Run the cluster but lose every snapshot message on the way.
  size_t lost = 0;
  for (int t = 0; t < 3; ++t) {
    c.raw(1).tick();
    for (int round = 0; round < 10; ++round) {
      for (NodeId n : c.ids()) c.process_ready(n, nullptr);
      auto& q = c.queue();
      const size_t before = q.size();
      q.erase(std::remove_if(q.begin(), q.end(), [](const Message& m) { return m.type == MessageType::kSnapshot; }),
              q.end());
      lost += before - q.size();
      c.deliver({}, {}, nullptr);
    }
  }
  ASSERT_GE(lost, 1u);
  EXPECT_EQ(c.raw(1).status().progress.at(3).state, ProgressState::kSnapshot);
  EXPECT_TRUE(c.node(3).applied.empty());
  c.raw(1).report_unreachable(3);  // the shell's transport tells the core it failed
  c.tick_all(1);
  EXPECT_EQ(c.node(3).applied, c.node(1).applied);
  EXPECT_EQ(c.raw(1).status().progress.at(3).state, ProgressState::kReplicate);
}

TEST(Restart, NodeRecoversItsLogAndReappliesCommittedEntries) {
  Cluster c;
  start_cluster(c, 3);
  ASSERT_TRUE(c.raw(1).propose(std::vector<std::string>{"a", "b"}).is_ok());
  c.settle();
  c.crash(2);
  ASSERT_TRUE(c.restart(2).is_ok());
  EXPECT_EQ(c.raw(2).commit_index(), 3u);
  c.settle();
  EXPECT_EQ(c.node(2).applied, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace tally::raft::testing

namespace tally::raft::testing {
namespace {

TEST(Snapshot, FollowerThatHasTheSnapshotPointRepliesWithItsCommitNotItsStaleTail) {
  MemoryStorage s;
  std::vector<Entry> ents;
  for (Index i = 1; i <= 4; ++i) ents.push_back(Entry{1, i, EntryType::kNormal, "x"});
  ASSERT_TRUE(s.append(ents).is_ok());
  s.set_hard_state(HardState{1, 1, 2});
  Config cfg = test_config();
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  auto raw = RawNode::create(cfg, &s).value();
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 3;
  m.to = 2;
  m.term = 2;
  m.snapshot.metadata = SnapshotMetadata{3, 1, ConfState{{1, 2, 3}, {}}};
  ASSERT_TRUE(raw->step(m).is_ok());
  Ready rd = raw->ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].index, 3u);  // entry 4 may be from a dead term: never claim it
  EXPECT_FALSE(rd.snapshot.has_value());
  EXPECT_EQ(raw->commit_index(), 3u);
  raw->advance();
  // A late copy of an older snapshot, below the commit index: the same answer.
  m.snapshot.metadata = SnapshotMetadata{2, 1, ConfState{{1, 2, 3}, {}}};
  ASSERT_TRUE(raw->step(m).is_ok());
  rd = raw->ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].index, 3u);
}

TEST(Replication, FollowerCommitsOnlyWhatTheAppendVouchedFor) {
  // The follower's entries 3 and 4 came from a leader of term 1 that lost; the leader of term 3
  // sends entry 2 (which matches) with its commit index 4. Entries 3 and 4 of the leader may
  // differ from the follower's, so the follower commits 2, not 4.
  MemoryStorage s;
  std::vector<Entry> ents;
  for (Index i = 1; i <= 4; ++i) ents.push_back(Entry{1, i, EntryType::kNormal, "x"});
  ASSERT_TRUE(s.append(ents).is_ok());
  s.set_hard_state(HardState{2, 0, 1});
  Config cfg = test_config();
  cfg.id = 2;
  cfg.voters = {1, 2, 3};
  auto raw = RawNode::create(cfg, &s).value();
  Message m;
  m.type = MessageType::kAppend;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.index = 1;
  m.log_term = 1;
  m.commit = 4;
  m.entries = {Entry{1, 2, EntryType::kNormal, "x"}};
  ASSERT_TRUE(raw->step(m).is_ok());
  EXPECT_EQ(raw->commit_index(), 2u);
  Ready rd = raw->ready();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].index, 2u);
  for (const Entry& e : rd.committed_entries) EXPECT_LE(e.index, 2u);
}

TEST(Replication, ALeaderThatSendsBeforePersistingCountsItsOwnEntriesOnlyOnceDurable) {
  Cluster c;
  Config cfg = test_config();
  cfg.leader_sends_before_persist = true;
  start_cluster(c, 3, cfg);
  const Index before = c.raw(1).commit_index();
  ASSERT_TRUE(c.raw(1).propose("x").is_ok());
  const Index x = c.raw(1).last_index();
  Ready rd = c.raw(1).ready();
  // The appends leave before the leader's own copy is durable; nothing else does.
  ASSERT_EQ(rd.early_messages.size(), 2u);
  for (const Message& m : rd.early_messages) EXPECT_EQ(m.type, MessageType::kAppend);
  for (const Message& m : rd.messages) EXPECT_NE(m.type, MessageType::kAppend);
  ASSERT_EQ(rd.entries.size(), 1u);
  // Follower 2 persists the entry and acknowledges it while the leader's disk is still writing.
  const Message& to2 = rd.early_messages[0].to == 2 ? rd.early_messages[0] : rd.early_messages[1];
  ASSERT_TRUE(c.raw(2).step(to2).is_ok());
  Ready r2 = c.raw(2).ready();
  ASSERT_TRUE(c.node(2).storage->append(r2.entries).is_ok());
  if (r2.hard_state) c.node(2).storage->set_hard_state(*r2.hard_state);
  ASSERT_EQ(r2.messages.size(), 1u);
  const Message ack = r2.messages[0];
  c.raw(2).advance();
  ASSERT_EQ(ack.type, MessageType::kAppendResp);
  ASSERT_TRUE(c.raw(1).step(ack).is_ok());
  // One durable copy of three: not committed, though the leader holds the entry in memory.
  EXPECT_EQ(c.raw(1).commit_index(), before);
  // The leader's own write completes: two durable copies, committed.
  ASSERT_TRUE(c.node(1).storage->append(rd.entries).is_ok());
  if (rd.hard_state) c.node(1).storage->set_hard_state(*rd.hard_state);
  c.raw(1).advance();
  EXPECT_EQ(c.raw(1).commit_index(), x);
  c.settle();
  for (NodeId n : c.ids()) EXPECT_EQ(c.node(n).applied.back(), "x") << n;
}

}  // namespace
}  // namespace tally::raft::testing
