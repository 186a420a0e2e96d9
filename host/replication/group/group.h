// A replica group in production code: one partition's Raft node and the loop that drives it —
// persist, then send, then apply, then advance — behind a log, a transport and a state machine, so
// tallyd and the simulator run the same loop (etcd's raftexample serveChannels, made asynchronous:
// persisting may finish later, on a group commit, and the loop picks up where it stopped).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "host/common/status.h"
#include "host/replication/raft/raft.h"
#include "host/replication/raft/storage.h"

namespace tally::group {

// Where a group's Raft state becomes durable. Groups of one shard share one log, so the Readys of
// several groups persisted during one loop iteration share one write and one sync (group commit).
class GroupLog {
 public:
  virtual ~GroupLog() = default;
  // Persists what `rd` asks of `group` (entries, hard state). `done` runs on the owner's thread once
  // it is durable, or with the error that stopped it; until then the group does nothing else (and
  // `rd` stays valid: the group keeps it).
  virtual void persist(uint32_t group, const raft::Ready& rd, std::function<void(Status)> done) = 0;
};

// How a group's messages reach its peers (nothing on a single node).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void send(uint32_t group, std::vector<raft::Message> messages) = 0;
};

// What committed entries are applied to.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // A committed normal entry of `group`, in log order, each exactly once per incarnation of the group
  // (after a restart, entries after the restored state's index come again: docs/raft.md).
  virtual void apply(uint32_t group, const raft::Entry& entry) = 0;
  // Everything up to `index` is applied (reads waiting for it may run).
  virtual void applied_to(uint32_t group, raft::Index index) = 0;
  // A committed no-op or membership change, which the group handled itself (a change through
  // RawNode::apply_conf_change; `conf` is the membership after it, null for a no-op). In log order
  // with apply(); most state machines have nothing to do.
  virtual void apply_internal(uint32_t group, const raft::Entry& entry, const raft::ConfState* conf);
  // A snapshot sent by the leader is durable and installed in the group's log: the state machine
  // becomes its image. A single voter never receives one.
  virtual void restore(uint32_t group, const raft::Snapshot& snapshot);
  // ReadIndex: the read accepted with `rs.context` may run once the applied index reaches rs.index.
  virtual void read_ready(uint32_t group, const raft::ReadState& rs);
  // The read accepted with `context` will never get a ReadState (leadership lost, forward refused).
  virtual void read_failed(uint32_t group, const std::string& context);
};

// Looks at the loop from outside, for the simulator's checkers and fault injection (tallyd has none).
class ReadyObserver {
 public:
  virtual ~ReadyObserver() = default;
  // Each Ready just taken from the core, before it goes to the log. False stops the group for good:
  // nothing of this Ready is persisted, sent or applied, and process() does nothing more.
  virtual bool before_persist(uint32_t group, const raft::Ready& rd) = 0;
  // After advance(), once a Ready's work is done: the shell may compact (ReplicaGroup::compact).
  virtual void after_advance(uint32_t group);
};

// A log that persists nothing: a memory-only group (durability none with peers, and tests).
class MemoryLog final : public GroupLog {
 public:
  void persist(uint32_t, const raft::Ready&, std::function<void(Status)> done) override { done(Status::ok()); }
};

struct GroupOptions {
  raft::Config raft;
  // Entries kept in memory behind the applied index, for peers that lag (0 on a single voter: once
  // applied, an entry is needed only on disk). A shell that compacts itself passes UINT64_MAX.
  uint64_t log_entries_kept = 0;
  ReadyObserver* observer = nullptr;  // outlives the group; null in tallyd
};

class ReplicaGroup {
 public:
  // `storage` holds what recovery found (hard state, membership, entries after the restored state);
  // options.raft.applied names the index the state machine was restored to. A single voter campaigns
  // at once: it has nobody to wait for.
  static Result<std::unique_ptr<ReplicaGroup>> create(uint32_t id, GroupOptions options,
                                                      std::unique_ptr<raft::MemoryStorage> storage,
                                                      GroupLog& log, Transport& transport, StateMachine& sm);
  ~ReplicaGroup();
  ReplicaGroup(const ReplicaGroup&) = delete;
  ReplicaGroup& operator=(const ReplicaGroup&) = delete;

  uint32_t id() const { return id_; }
  // Leader only: appends an entry. kUnavailable when not leader, kResourceExhausted when too much is
  // uncommitted. The entry's index is last_index() right after.
  Status propose(std::string data);
  raft::Index last_index() const { return raw_->last_index(); }
  raft::Index applied() const { return raw_->applied_index(); }
  // The term of the entry at applied() (what a snapshot of the applied state records).
  raft::Term applied_term() const {
    auto t = storage_->term(applied());
    return t.is_ok() ? *t : 0;
  }
  bool is_leader() const { return raw_->is_leader(); }
  // Nothing proposed is waiting to be applied.
  bool caught_up() const { return applied() == last_index(); }

  void tick() { raw_->tick(); }
  Status step(const raft::Message& m) { return raw_->step(m); }
  // Pass-throughs to the core for a shell with peers; like tick() and step(), follow with process().
  Status campaign() { return raw_->campaign(); }
  Status read_index(std::string context) { return raw_->read_index(std::move(context)); }
  Status transfer_leader(raft::NodeId target) { return raw_->transfer_leader(target); }
  Status propose_conf_change(const raft::ConfChange& cc) { return raw_->propose_conf_change(cc); }

  raft::Role role() const { return raw_->role(); }
  raft::Term term() const { return raw_->term(); }
  raft::NodeId leader() const { return raw_->leader(); }
  raft::Index commit_index() const { return raw_->commit_index(); }
  raft::NodeStatus status() const { return raw_->status(); }
  // The core itself, for a node-level driver such as raft::TallyBatch (follow with process()).
  raft::RawNode& raw() { return *raw_; }
  // What the core reads: everything the log made durable, as the group last compacted it.
  const raft::MemoryStorage& storage() const { return *storage_; }
  // The Ready handed to the log and not yet durable, or null.
  const raft::Ready* in_flight() const { return persisting_ ? &ready_ : nullptr; }

  // Records a snapshot of the state machine at `index` (applied; the current membership with it),
  // then drops the in-memory entries through `compact_to` <= index. Not while a Ready persists that
  // installs a snapshot. Peers that need what was dropped get the snapshot.
  Status compact(raft::Index index, std::string data, raft::Index compact_to);

  // Runs the loop as far as it goes now: takes a Ready and hands it to the log; when the log says it
  // is durable, sends, applies, advances and goes on. Call after every input (proposal, message, tick).
  void process();
  // A Ready is being persisted.
  bool persisting() const { return persisting_; }
  // The log reported an error; the group stops until the log recovers and completes the persist.
  const Status& log_error() const { return log_error_; }
  // The observer stopped the group.
  bool stopped() const { return stopped_; }

 private:
  ReplicaGroup(uint32_t id, GroupOptions options, std::unique_ptr<raft::MemoryStorage> storage,
               std::unique_ptr<raft::RawNode> raw, GroupLog& log, Transport& transport, StateMachine& sm);
  void on_persisted(Status st);

  uint32_t id_;
  GroupOptions options_;
  std::unique_ptr<raft::MemoryStorage> storage_;
  std::unique_ptr<raft::RawNode> raw_;
  GroupLog& log_;
  Transport& transport_;
  StateMachine& sm_;
  raft::Ready ready_;       // the Ready being persisted
  bool persisting_ = false;
  bool in_process_ = false;  // process() is on the stack (a log that completes at once re-enters it)
  bool stopped_ = false;
  Status log_error_;
};

}  // namespace tally::group
