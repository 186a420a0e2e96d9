// The replica group loop: what it persists, when it applies, how it waits for a log that completes
// later (a group commit) or fails, and how a restarted group replays what its log held.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "host/replication/group/group.h"

namespace tally::group {
namespace {

// A log whose persists complete when the test says so (as a group commit does, later).
class HeldLog final : public GroupLog {
 public:
  struct Held {
    uint32_t group;
    std::vector<raft::Entry> entries;
    std::optional<raft::HardState> hard_state;
    std::function<void(Status)> done;
  };
  void persist(uint32_t group, const raft::Ready& rd, std::function<void(Status)> done) override {
    held.push_back(Held{group, rd.entries, rd.hard_state, std::move(done)});
  }
  // Completes the oldest persist.
  void complete(Status st = Status::ok()) {
    ASSERT_FALSE(held.empty());
    Held h = std::move(held.front());
    held.erase(held.begin());
    h.done(std::move(st));
  }
  std::vector<Held> held;
};

class Recorder final : public StateMachine, public Transport {
 public:
  void apply(uint32_t group, const raft::Entry& e) override { applied.push_back(e.data); }
  void applied_to(uint32_t group, raft::Index index) override { last_applied_to = index; }
  void send(uint32_t, std::vector<raft::Message> m) override { sent += m.size(); }
  std::vector<std::string> applied;
  raft::Index last_applied_to = 0;
  size_t sent = 0;
};

GroupOptions single_voter() {
  GroupOptions o;
  o.raft.id = 1;
  o.raft.voters = {1};
  return o;
}

TEST(ReplicaGroup, SingleVoterAppliesEachProposalOnceInOrder) {
  MemoryLog log;
  Recorder sm;
  auto g = ReplicaGroup::create(7, single_voter(), std::make_unique<raft::MemoryStorage>(), log, sm, sm);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  (*g)->process();
  ASSERT_TRUE((*g)->is_leader());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE((*g)->propose("e" + std::to_string(i)).is_ok());
    if (i % 7 == 0) (*g)->process();
  }
  (*g)->process();
  ASSERT_EQ(sm.applied.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sm.applied[i], "e" + std::to_string(i));
  EXPECT_TRUE((*g)->caught_up());
  EXPECT_EQ(sm.last_applied_to, (*g)->applied());
  EXPECT_EQ(sm.sent, 0u);  // nobody to send to
}

TEST(ReplicaGroup, NothingIsAppliedBeforeTheLogSaysDurableAndProposalsWaitForTheNextBatch) {
  HeldLog log;
  Recorder sm;
  auto g = std::move(ReplicaGroup::create(1, single_voter(), std::make_unique<raft::MemoryStorage>(), log, sm, sm).value());
  g->process();
  // The election's hard state (and the leader's no-op) are persisted first.
  while (!log.held.empty()) log.complete();
  ASSERT_TRUE(g->is_leader());
  ASSERT_TRUE(g->propose("a").is_ok());
  ASSERT_TRUE(g->propose("b").is_ok());
  g->process();
  ASSERT_EQ(log.held.size(), 1u);
  EXPECT_EQ(log.held[0].entries.size(), 2u);  // one Ready, one persist for both
  EXPECT_TRUE(g->persisting());
  ASSERT_TRUE(g->propose("c").is_ok());
  g->process();
  EXPECT_EQ(log.held.size(), 1u);  // c waits: the group persists one Ready at a time
  EXPECT_TRUE(sm.applied.empty());
  log.complete();
  EXPECT_EQ(sm.applied, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(log.held.size(), 1u);  // c's Ready went to the log as soon as a and b were done
  EXPECT_EQ(log.held[0].entries.size(), 1u);
  log.complete();
  EXPECT_EQ(sm.applied, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(g->caught_up());
}

TEST(ReplicaGroup, AFailedPersistStopsTheGroupUntilTheLogCompletesItAgain) {
  HeldLog log;
  Recorder sm;
  auto g = std::move(ReplicaGroup::create(1, single_voter(), std::make_unique<raft::MemoryStorage>(), log, sm, sm).value());
  g->process();
  while (!log.held.empty()) log.complete();
  ASSERT_TRUE(g->propose("x").is_ok());
  g->process();
  ASSERT_EQ(log.held.size(), 1u);
  auto done = log.held[0].done;
  log.held.clear();
  done(Status::io_error("fdatasync: Input/output error"));
  EXPECT_TRUE(sm.applied.empty());
  EXPECT_FALSE(g->log_error().is_ok());
  ASSERT_TRUE(g->propose("y").is_ok());
  g->process();
  EXPECT_TRUE(log.held.empty());  // stopped: nothing new goes to a failed log
  done(Status::ok());             // the log rewrote the records and they are durable now
  EXPECT_TRUE(g->log_error().is_ok());
  while (!log.held.empty()) log.complete();
  EXPECT_EQ(sm.applied, (std::vector<std::string>{"x", "y"}));
}

TEST(ReplicaGroup, ARestartedGroupReplaysTheCommittedEntriesAfterItsSnapshot) {
  // What recovery hands over: a snapshot at 3 (the store already holds 1..3) and entries 4..6, of
  // which 5 were committed.
  auto storage = std::make_unique<raft::MemoryStorage>();
  raft::Snapshot snap;
  snap.metadata.index = 3;
  snap.metadata.term = 1;
  snap.metadata.conf.voters = {1};
  ASSERT_TRUE(storage->apply_snapshot(snap).is_ok());
  ASSERT_TRUE(storage->append({raft::Entry{1, 4, raft::EntryType::kNormal, "four"},
                               raft::Entry{1, 5, raft::EntryType::kNormal, "five"},
                               raft::Entry{1, 6, raft::EntryType::kNormal, "six"}}).is_ok());
  storage->set_hard_state(raft::HardState{1, 1, 5});
  storage->set_conf(snap.metadata.conf);
  MemoryLog log;
  Recorder sm;
  GroupOptions o = single_voter();
  o.raft.applied = 3;
  auto g = std::move(ReplicaGroup::create(1, o, std::move(storage), log, sm, sm).value());
  g->process();
  // 4 and 5 were committed; 6 commits with the new leader's no-op; nothing before 4 comes again.
  EXPECT_EQ(sm.applied, (std::vector<std::string>{"four", "five", "six"}));
  ASSERT_TRUE(g->propose("seven").is_ok());
  g->process();
  EXPECT_EQ(sm.applied.back(), "seven");
}

}  // namespace
}  // namespace tally::group
