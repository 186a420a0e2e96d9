// The replica group loop: what it persists, when it applies, how it waits for a log that completes
// later (a group commit) or fails, and how a restarted group replays what its log held; the shell's
// view of it (observer, internal entries, snapshot installs, reads) on a cluster of groups; and
// restarts from the write-ahead log over a simulated disk, with its faults.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "host/common/log.h"
#include "host/replication/group/group.h"
#include "host/replication/group/start.h"
#include "host/replication/group/wal_log.h"
#include "host/wal/log.h"
#include "host/wal/recovery.h"
#include "kernels/cpu/reference.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"

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
  void apply_internal(uint32_t, const raft::Entry& e, const raft::ConfState* conf) override {
    internal.push_back(e.type);
    if (conf != nullptr) confs.push_back(*conf);
  }
  void restore(uint32_t, const raft::Snapshot& snap) override { restored.push_back(snap); }
  void read_ready(uint32_t, const raft::ReadState& rs) override { reads.push_back(rs); }
  void read_failed(uint32_t, const std::string& context) override { failed_reads.push_back(context); }
  void send(uint32_t, std::vector<raft::Message> m) override { sent += m.size(); }
  std::vector<std::string> applied;
  raft::Index last_applied_to = 0;
  std::vector<raft::EntryType> internal;
  std::vector<raft::ConfState> confs;
  std::vector<raft::Snapshot> restored;
  std::vector<raft::ReadState> reads;
  std::vector<std::string> failed_reads;
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

// ---------------------------------------------------------------------------------------------
// The shell's view: an observer, and a cluster of groups on one thread.

class RecordingObserver final : public ReadyObserver {
 public:
  bool before_persist(uint32_t, const raft::Ready& rd) override {
    seen.push_back(rd.entries.size());
    return !stop;
  }
  void after_advance(uint32_t) override { ++advanced; }
  std::vector<size_t> seen;  // entries of each Ready, in order
  size_t advanced = 0;
  bool stop = false;
};

TEST(ReplicaGroup, TheObserverSeesEachReadyBeforeTheLogAndCanStopTheGroup) {
  HeldLog log;
  Recorder sm;
  RecordingObserver obs;
  GroupOptions o = single_voter();
  o.observer = &obs;
  auto g = std::move(ReplicaGroup::create(1, o, std::make_unique<raft::MemoryStorage>(), log, sm, sm).value());
  g->process();
  ASSERT_EQ(obs.seen.size(), 1u);  // the election's Ready, seen before the log got it
  ASSERT_EQ(log.held.size(), 1u);
  ASSERT_NE(g->in_flight(), nullptr);
  EXPECT_EQ(g->in_flight()->entries.size(), obs.seen[0]);
  EXPECT_EQ(obs.advanced, 0u);
  while (!log.held.empty()) log.complete();
  EXPECT_EQ(g->in_flight(), nullptr);
  EXPECT_EQ(obs.advanced, obs.seen.size());  // after every advance
  ASSERT_TRUE(g->propose("a").is_ok());
  obs.stop = true;
  g->process();
  EXPECT_TRUE(g->stopped());
  EXPECT_TRUE(log.held.empty());  // the stopped Ready never reached the log
  ASSERT_TRUE(g->propose("b").is_ok());
  g->process();
  EXPECT_TRUE(log.held.empty());
  EXPECT_TRUE(sm.applied.empty());
}

TEST(ReplicaGroup, CompactKeepsASnapshotOfTheAppliedStateForPeers) {
  MemoryLog log;
  Recorder sm;
  GroupOptions o = single_voter();
  o.log_entries_kept = UINT64_MAX;  // the shell compacts
  auto g = std::move(ReplicaGroup::create(1, o, std::make_unique<raft::MemoryStorage>(), log, sm, sm).value());
  g->process();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(g->propose("e" + std::to_string(i)).is_ok());
  g->process();
  const raft::Index applied = g->applied();
  ASSERT_GE(applied, 10u);
  ASSERT_TRUE(g->compact(applied, "image", applied - 3).is_ok());
  EXPECT_EQ(g->storage().first_index(), applied - 2);
  auto snap = g->storage().snapshot();
  ASSERT_TRUE(snap.is_ok());
  EXPECT_EQ(snap->metadata.index, applied);
  EXPECT_EQ(snap->data, "image");
  EXPECT_EQ(snap->metadata.conf.voters, (std::vector<raft::NodeId>{1}));
  ASSERT_TRUE(g->propose("after").is_ok());
  g->process();
  EXPECT_EQ(sm.applied.back(), "after");
}

// Groups of one cluster, one per node, on one thread: messages queue until deliver() hands them over.
class Cluster final : public Transport {
 public:
  explicit Cluster(std::vector<raft::NodeId> voters) {
    for (raft::NodeId id : voters) {
      GroupOptions o;
      o.raft.id = id;
      o.raft.voters = voters;
      o.raft.seed = id;
      o.log_entries_kept = UINT64_MAX;
      groups[id] = std::move(ReplicaGroup::create(0, o, std::make_unique<raft::MemoryStorage>(), log, *this, sms[id]).value());
    }
  }
  void send(uint32_t, std::vector<raft::Message> m) override {
    for (raft::Message& msg : m) queue.push_back(std::move(msg));
  }
  // Hands queued messages over until none is left; messages to or from `cut` are lost.
  void deliver(raft::NodeId cut = raft::kNoNode) {
    for (int round = 0; round < 1000 && !queue.empty(); ++round) {
      std::vector<raft::Message> q;
      q.swap(queue);
      for (const raft::Message& m : q) {
        auto it = groups.find(m.to);
        if (m.to == cut || m.from == cut || it == groups.end()) continue;
        (void)it->second->step(m);
        it->second->process();
      }
    }
  }
  ReplicaGroup& g(raft::NodeId id) { return *groups.at(id); }
  void elect(raft::NodeId id) {
    ASSERT_TRUE(g(id).campaign().is_ok());
    g(id).process();
    deliver();
    ASSERT_TRUE(g(id).is_leader());
  }

  MemoryLog log;
  std::map<raft::NodeId, Recorder> sms;
  std::map<raft::NodeId, std::unique_ptr<ReplicaGroup>> groups;
  std::vector<raft::Message> queue;
};

TEST(ReplicaGroup, FollowersApplyTheNoopAndMembershipChangesThroughTheStateMachine) {
  Cluster c({1, 2, 3});
  c.elect(1);
  ASSERT_TRUE(c.g(1).propose("a").is_ok());
  c.g(1).process();
  c.deliver();
  raft::ConfChange cc;
  cc.type = raft::ConfChangeType::kAddLearner;
  cc.node = 4;
  ASSERT_TRUE(c.g(1).propose_conf_change(cc).is_ok());
  c.g(1).process();
  c.deliver();
  c.g(1).tick();  // a heartbeat carries the commit index to the followers
  c.g(1).process();
  c.deliver();
  for (raft::NodeId id : {1, 2, 3}) {
    SCOPED_TRACE(id);
    const Recorder& sm = c.sms[id];
    EXPECT_EQ(sm.applied, (std::vector<std::string>{"a"}));
    ASSERT_EQ(sm.internal.size(), 2u);
    EXPECT_EQ(sm.internal[0], raft::EntryType::kNoop);
    EXPECT_EQ(sm.internal[1], raft::EntryType::kConfChange);
    ASSERT_EQ(sm.confs.size(), 1u);
    EXPECT_EQ(sm.confs[0].learners, (std::vector<raft::NodeId>{4}));
    EXPECT_EQ(c.g(id).storage().initial_state().conf.learners, (std::vector<raft::NodeId>{4}));
  }
}

TEST(ReplicaGroup, ReadIndexResultsAndFailedReadsReachTheStateMachine) {
  Cluster c({1, 2, 3});
  c.elect(1);
  ASSERT_TRUE(c.g(2).read_index("r1").is_ok());  // forwarded to the leader
  c.g(2).process();
  c.deliver();
  c.g(1).tick();  // the heartbeat round that confirms the leader
  c.g(1).process();
  c.deliver();
  ASSERT_EQ(c.sms[2].reads.size(), 1u);
  EXPECT_EQ(c.sms[2].reads[0].context, "r1");
  EXPECT_GE(c.sms[2].reads[0].index, 1u);
  // The leader is cut off: the forwarded read gets no answer and fails within an election timeout.
  ASSERT_TRUE(c.g(2).read_index("r2").is_ok());
  c.g(2).process();
  for (int i = 0; i < 25 && c.sms[2].failed_reads.empty(); ++i) {
    c.g(2).tick();
    c.g(2).process();
    c.deliver(1);
  }
  EXPECT_EQ(c.sms[2].failed_reads, (std::vector<std::string>{"r2"}));
  EXPECT_EQ(c.sms[2].reads.size(), 1u);
}

TEST(ReplicaGroup, AFollowerBehindACompactedLogInstallsTheLeadersSnapshot) {
  Cluster c({1, 2, 3});
  c.elect(1);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c.g(1).propose("e" + std::to_string(i)).is_ok());
    c.g(1).process();
    c.deliver(3);  // node 3 hears nothing
  }
  c.g(1).tick();
  c.g(1).process();
  c.deliver(3);
  const raft::Index applied = c.g(1).applied();
  ASSERT_EQ(c.sms[1].applied.size(), 6u);
  ASSERT_TRUE(c.g(1).compact(applied, "image of 6", applied).is_ok());
  ASSERT_TRUE(c.g(1).propose("after").is_ok());
  c.g(1).process();
  for (int i = 0; i < 5; ++i) {
    c.deliver();
    c.g(1).tick();
    c.g(1).process();
  }
  c.deliver();
  const Recorder& sm = c.sms[3];
  ASSERT_EQ(sm.restored.size(), 1u);
  EXPECT_EQ(sm.restored[0].metadata.index, applied);
  EXPECT_EQ(sm.restored[0].data, "image of 6");
  EXPECT_EQ(sm.applied, (std::vector<std::string>{"after"}));  // what the snapshot covers never comes again
  EXPECT_EQ(c.g(3).storage().first_index(), applied + 1);
}

// ---------------------------------------------------------------------------------------------
// Restarting from what the log read back (group::add_record, the replay rule).

wal::RecordHeader entry_rec(uint64_t index, uint64_t term) {
  wal::RecordHeader h;
  h.type = wal::RecordType::kEntry;
  h.term = term;
  h.index = index;
  return h;
}

wal::RecordHeader hard_state_rec(uint64_t term, uint64_t commit) {
  wal::RecordHeader h;
  h.type = wal::RecordType::kHardState;
  h.term = term;
  h.index = commit;
  return h;
}

std::vector<std::pair<uint64_t, uint64_t>> index_terms(const GroupStart& s) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const raft::Entry& e : s.entries) out.emplace_back(e.index, e.term);
  return out;
}

TEST(GroupStart, AnEntryReplacesTheLogFromItsIndexOnEvenAtOrBelowTheSnapshot) {
  GroupStart s;
  s.snapshot_index = 5;
  s.snapshot_term = 1;
  for (uint64_t i = 3; i <= 7; ++i) add_record(s, entry_rec(i, 1), "x", "log");
  EXPECT_EQ(index_terms(s), (std::vector<std::pair<uint64_t, uint64_t>>{{6, 1}, {7, 1}}));
  // A later leader overwrote the log from 4 and its entries stop at 5, below the snapshot: 6 and 7
  // of term 1 are gone from the log (a snapshot of this log would not hold them either).
  add_record(s, entry_rec(4, 2), "y", "log");
  add_record(s, entry_rec(5, 2), "y", "log");
  EXPECT_TRUE(s.entries.empty());
  add_record(s, entry_rec(6, 2), "z", "log");
  add_record(s, hard_state_rec(2, 6), wal::encode_vote(1), "log");
  finish(s);
  EXPECT_TRUE(s.unavailable.empty()) << s.unavailable;
  EXPECT_EQ(index_terms(s), (std::vector<std::pair<uint64_t, uint64_t>>{{6, 2}}));
  EXPECT_EQ(s.hard_state, (raft::HardState{2, 1, 6}));
}

TEST(GroupStart, EntriesOlderThanAnInstalledSnapshotAreNotPartOfTheLogAfterIt) {
  // A replica held entries 1..8 of term 2, then installed a leader's snapshot at 5 of term 4: the
  // records of 6..8 (term 2) are still on disk, but they are not what follows the snapshot.
  GroupStart s;
  s.snapshot_index = 5;
  s.snapshot_term = 4;
  for (uint64_t i = 1; i <= 8; ++i) add_record(s, entry_rec(i, 2), "x", "log");
  add_record(s, hard_state_rec(4, 5), wal::encode_vote(2), "log");
  finish(s);
  EXPECT_TRUE(s.unavailable.empty()) << s.unavailable;
  EXPECT_TRUE(s.entries.empty());
  // Entries of the snapshot's term or later that follow it are kept.
  GroupStart t;
  t.snapshot_index = 5;
  t.snapshot_term = 4;
  add_record(t, entry_rec(6, 4), "a", "log");
  add_record(t, entry_rec(7, 5), "b", "log");
  add_record(t, hard_state_rec(5, 7), wal::encode_vote(2), "log");
  finish(t);
  EXPECT_EQ(index_terms(t), (std::vector<std::pair<uint64_t, uint64_t>>{{6, 4}, {7, 5}}));
}

TEST(GroupStart, AGapOrACommitPastTheLogMakesTheGroupUnavailable) {
  GroupStart gap;
  add_record(gap, entry_rec(1, 1), "", "log A");
  add_record(gap, entry_rec(3, 1), "", "log A");
  finish(gap);
  EXPECT_EQ(gap.unavailable, "log gap: entry 3 follows entry 1 in log A");
  GroupStart lost;
  add_record(lost, entry_rec(1, 1), "", "log");
  add_record(lost, hard_state_rec(1, 2), wal::encode_vote(1), "log");
  finish(lost);
  EXPECT_EQ(lost.unavailable, "the log ends at entry 1 but entry 2 was committed");
  GroupStart snap_only;  // a snapshot covers what the hard state has not caught up with
  snap_only.snapshot_index = 9;
  snap_only.snapshot_term = 3;
  add_record(snap_only, hard_state_rec(2, 4), wal::encode_vote(2), "log");
  finish(snap_only);
  EXPECT_TRUE(snap_only.unavailable.empty());
  EXPECT_EQ(snap_only.hard_state, (raft::HardState{3, 2, 9}));
  auto storage = make_storage(snap_only, raft::ConfState{{1, 2, 3}, {}});
  ASSERT_TRUE(storage.is_ok());
  EXPECT_EQ((*storage)->first_index(), 10u);
  EXPECT_EQ((*storage)->last_index(), 9u);
  EXPECT_EQ((*storage)->initial_state().conf.voters, (std::vector<raft::NodeId>{1, 2, 3}));
}

// ---------------------------------------------------------------------------------------------
// A single voter over the write-ahead log on a simulated disk (tests/support): group commit, crash,
// fsync EIO, recovery into a new group.

const bool kQuiet = log::set_level("off");

struct WalNode {
  explicit WalNode(uint64_t seed) : mem(seed), env(mem, seed) {
    env.on_failed_sync = [this](const std::string& path) { mem.drop_unsynced(path); };
  }
  // A log and a group started from what the disk holds.
  void start() {
    GroupStart s;
    auto r = wal::recover(mem, kDir, wal::RecoverMode::kRepairTail,
                          [&](const wal::RecordHeader& h, std::string_view payload) { add_record(s, h, payload, kDir); });
    ASSERT_TRUE(r.is_ok());
    finish(s);
    ASSERT_TRUE(s.unavailable.empty()) << s.unavailable;
    wal::LogOptions lo;
    lo.segment_bytes = wal::kSegmentBytesMin;
    auto l = wal::Log::open(env, io, kDir, 0, r->next_seq, lo,
                            [](kernels::ChecksumBatch& b) { return kernels::checksum_cpu_checked(b); });
    ASSERT_TRUE(l.is_ok());
    log = std::move(l).value();
    log->adopt(*r);
    wal_log = std::make_unique<WalGroupLog>(*log);
    sm = Recorder{};
    auto storage = make_storage(s, raft::ConfState{{1}, {}});
    ASSERT_TRUE(storage.is_ok());
    group = std::move(ReplicaGroup::create(1, single_voter(), std::move(storage).value(), *wal_log, sm, sm).value());
    settle();
  }
  // The end of a loop iteration: group commits until the group is idle.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      group->process();
      if (!log->has_pending() || wal_log->failed()) return;
      wal_log->flush();
    }
  }
  void crash() {
    group.reset();
    wal_log.reset();
    log.reset();
    env.clear_faults();
    mem.crash(rng);
  }

  static constexpr const char* kDir = "/node/wal";
  testing::MemEnv mem;
  testing::FaultEnv env;
  wal::InlineLogIo io;
  Rng rng{7};
  std::unique_ptr<wal::Log> log;
  std::unique_ptr<WalGroupLog> wal_log;
  Recorder sm;
  std::unique_ptr<ReplicaGroup> group;
};

TEST(ReplicaGroupOverTheWal, ARestartReplaysEveryAcknowledgedEntryFromTheLog) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    WalNode n(seed);
    n.start();
    std::vector<std::string> acked;
    for (int i = 0; i < 30; ++i) {
      std::string value = "v";
      value += std::to_string(i);
      ASSERT_TRUE(n.group->propose(std::move(value)).is_ok());
      if (i % 4 == 3) n.settle();
    }
    // The rest is written, not synced, when the power goes (MemEnv keeps a random prefix of it).
    n.group->process();
    const std::vector<std::string> applied = n.sm.applied;
    ASSERT_GE(applied.size(), 28u);
    n.crash();
    n.start();
    // Everything applied before the crash was durable: it comes back, in order, and nothing else.
    ASSERT_GE(n.sm.applied.size(), applied.size());
    EXPECT_TRUE(std::equal(applied.begin(), applied.end(), n.sm.applied.begin()));
    ASSERT_TRUE(n.group->propose("after").is_ok());
    n.settle();
    EXPECT_EQ(n.sm.applied.back(), "after");
  }
}

TEST(ReplicaGroupOverTheWal, AFailedFsyncStopsTheGroupUntilTheLogRewritesThenNothingIsLost) {
  WalNode n(3);
  n.start();
  testing::Fault f;
  f.op = testing::FaultOp::kSync;
  f.kind = testing::FaultKind::kIoError;
  f.pattern = "*.wal";
  n.env.inject(f);
  ASSERT_TRUE(n.group->propose("x").is_ok());
  n.settle();
  EXPECT_TRUE(n.wal_log->failed());
  EXPECT_FALSE(n.group->log_error().is_ok());
  EXPECT_TRUE(n.sm.applied.empty());  // not durable: not applied
  ASSERT_TRUE(n.group->propose("y").is_ok());
  n.settle();
  EXPECT_TRUE(n.sm.applied.empty());
  Status retried = Status::internal("retry did not complete");
  n.wal_log->retry([&](Status st) { retried = std::move(st); });
  ASSERT_TRUE(retried.is_ok()) << retried.to_string();
  n.settle();
  EXPECT_EQ(n.sm.applied, (std::vector<std::string>{"x", "y"}));
  n.crash();
  n.start();
  EXPECT_EQ(n.sm.applied, (std::vector<std::string>{"x", "y"}));
}

TEST(ReplicaGroupOverTheWal, AFailedSnapshotInstallHoldsItsReadyAndIsTriedAgainUntilItSucceeds) {
  WalNode n(5);
  n.start();
  int failures_left = 2, installs = 0;
  n.wal_log->set_snapshot_installer([&](uint32_t group, const raft::Snapshot& snap) {
    EXPECT_EQ(group, 7u);
    EXPECT_EQ(snap.metadata.index, 40u);
    ++installs;
    return failures_left-- > 0 ? Status::exhausted("no space left on device") : Status::ok();
  });
  // A follower's Ready installing its leader's snapshot, with the entry after it and its hard state.
  raft::Ready rd;
  rd.snapshot = raft::Snapshot{};
  rd.snapshot->metadata.index = 40;
  rd.snapshot->metadata.term = 3;
  rd.entries = {raft::Entry{3, 41, raft::EntryType::kNormal, "after"}};
  rd.hard_state = raft::HardState{3, 0, 40};
  rd.must_sync = true;
  std::vector<Status> outcomes;
  n.wal_log->persist(7, rd, [&](Status st) { outcomes.push_back(std::move(st)); });
  n.wal_log->flush();
  // Held, not failed: nothing of the Ready is logged while its snapshot is not durable.
  EXPECT_TRUE(outcomes.empty());
  EXPECT_EQ(n.wal_log->installs_waiting(), 1u);
  EXPECT_FALSE(n.log->has_pending());
  n.wal_log->retry_installs();
  EXPECT_TRUE(outcomes.empty());
  n.wal_log->retry_installs();  // the third try succeeds: the records go to the log
  EXPECT_EQ(installs, 3);
  EXPECT_EQ(n.wal_log->installs_waiting(), 0u);
  n.wal_log->flush();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].is_ok()) << outcomes[0].to_string();
  n.wal_log->retry_installs();  // nothing waits: nothing is installed again
  EXPECT_EQ(installs, 3);
  // The entry after the snapshot is in the log for group 7.
  bool found = false;
  auto r = wal::recover(n.mem, WalNode::kDir, wal::RecoverMode::kRepairTail,
                        [&](const wal::RecordHeader& h, std::string_view payload) {
                          found |= h.group == 7 && h.index == 41 && payload == "after";
                        });
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace tally::group
