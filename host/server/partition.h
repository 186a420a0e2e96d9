// A partition: a fixed, contiguous range of Redis Cluster slots with its own store. It is the unit the
// node replicates, logs, snapshots and moves between shards; every key reaches its data only through
// the partition that owns the key's slot. A shard (one reactor core) holds a set of partitions.
//
// With a replica group (durability on, or peers), a write is proposed as part of a log entry and
// executed when the entry is applied, on every replica alike; its reply leaves then. The writes a
// partition takes during one loop iteration share one entry. A read runs once every write proposed
// before it is applied, and before any write proposed after it. Without a group (durability none on
// one node) everything runs at once: there is nothing to persist and nobody to wait for.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/assert.h"
#include "host/proto/reply_value.h"
#include "host/replication/group/group.h"
#include "host/server/changes.h"
#include "host/store/store.h"
#include "kernels/cpu/slot.h"

namespace tally::server {

struct CommandEntry;
struct Shard;

inline constexpr uint32_t kPartitionsDefault = 256;
inline constexpr uint32_t kPartitionsMax = kernels::kSlotCount;
// Reads waiting for earlier writes, per partition; past it reads are refused with an error.
inline constexpr size_t kPendingReadsMax = 65536;
// An entry gathering a loop iteration's writes is proposed early once it holds this much.
inline constexpr size_t kBatchEntryBytesMax = 4 << 20;
inline constexpr uint32_t kBatchEntryCommandsMax = 4096;

struct SlotRange {
  uint32_t first = 0;  // inclusive
  uint32_t last = 0;   // inclusive
};

// How the 16384 slots are cut into partitions: `count` (a power of two) equal, contiguous ranges.
class PartitionLayout {
 public:
  explicit PartitionLayout(uint32_t count) : count_(count) {
    TALLY_ASSERT(valid_count(count));
    shift_ = 0;
    while ((kernels::kSlotCount >> shift_) > count) ++shift_;
  }
  static bool valid_count(uint32_t count) {
    return count >= 1 && count <= kPartitionsMax && (count & (count - 1)) == 0;
  }
  uint32_t count() const { return count_; }
  uint32_t of_slot(uint32_t slot) const {
    TALLY_ASSERT(slot < kernels::kSlotCount);
    return slot >> shift_;
  }
  uint32_t of_key(std::string_view key) const { return of_slot(kernels::key_slot(key)); }
  SlotRange slots(uint32_t p) const {
    TALLY_ASSERT(p < count_);
    return {p << shift_, ((p + 1) << shift_) - 1};
  }

 private:
  uint32_t count_;
  uint32_t shift_;
};

class Partition {
 public:
  using Done = std::function<void(proto::Reply&)>;
  // A place in a session's reply order (the session may be gone when the reply comes): the common
  // destination of a reply computed later, with no function to allocate.
  struct ReplyTo {
    Shard* home = nullptr;
    uint64_t conn_id = 0;
    uint64_t seq = 0;
  };

  // `shared` is the holding shard's memory total and LRU clock (re-pointed when the partition moves).
  Partition(uint32_t id, SlotRange slots, store::StoreOptions options, store::StoreShared* shared);
  ~Partition();
  Partition(const Partition&) = delete;
  Partition& operator=(const Partition&) = delete;

  uint32_t id() const { return id_; }
  SlotRange slots() const { return slots_; }
  store::Store& store() { return *store_; }
  const store::Store& store() const { return *store_; }

  group::ReplicaGroup* group() { return group_.get(); }
  void set_group(std::unique_ptr<group::ReplicaGroup> g);
  // The first request id of this incarnation: ids of proposals made before a restart never collide.
  void set_request_base(uint64_t base) { next_request_ = base; }
  // A partition whose log or snapshot is damaged never serves: every command gets this error.
  void set_unavailable(std::string reason) { unavailable_ = std::move(reason); }
  const std::string& unavailable() const { return unavailable_; }

  // A command that may run on the store right now: always without a group; with one, a read with no
  // write of its own partition waiting to be applied (or any read while the log is failed: see
  // docs/wal-format.md).
  bool can_run_now(const CommandEntry& e, bool log_failed) const;
  // A replica read (a READONLY client, docs/cluster.md): a read that runs now on what this replica
  // has applied, without confirming leadership. Only on a follower that follows a leader it heard
  // from within the election timeout (a pre-candidate knows none) and whose partition is available.
  bool serves_replica_read(const CommandEntry& e) const;
  // The other case: a write is proposed and `done` gets its reply once its entry is applied; a read
  // waits until every write proposed before it is applied. `done` may run before submit() returns
  // (a refused write). Runs on the holding shard's thread, and so does `done`.
  void submit(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, Done done);
  void submit(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, ReplyTo to);

  // End of a loop iteration: the writes gathered since the last one go to the group as one entry.
  void propose_batch(Shard& shard);

  // The replica group's state machine calls: a committed entry of commands, and how far applying got.
  void apply(Shard& shard, uint64_t index, std::string_view data);
  void applied_to(Shard& shard, uint64_t index);
  // A group with other replicas confirms reads by ReadIndex: a read runs only once a heartbeat round
  // showed this node still leads, at an index at least the commit index when the read was asked
  // (linearizable even when a newer leader exists elsewhere). Set when the group is created.
  // Such a group also removes expired keys only by applying logged deletions (the store hides them
  // until then).
  void set_confirm_reads(bool yes) {
    confirm_reads_ = yes;
    store_->set_erase_expired(!yes);
  }
  bool replicated() const { return confirm_reads_; }
  // The group's answer for the reads of round `context`: they may run once `index` is applied; or
  // they cannot be confirmed here (leadership lost) and are refused.
  void read_confirmed(Shard& shard, const std::string& context, uint64_t index);
  void read_refused(Shard& shard, const std::string& context);

  // The log failed: every write still waiting is answered with `error` (its outcome is unknown: its
  // entry may yet be applied), and waiting reads run now.
  void fail_waiting(Shard& shard, std::string_view error);
  // The group no longer leads: writes still waiting are answered as of unknown outcome at once (their
  // entries may yet commit under the new leader), rather than left hanging.
  void leadership_lost(Shard& shard);
  bool has_waiting_writes() const { return !waiters_.empty(); }
  // Logs the deletion of a key the server removed on its own (eviction, expiry), when it has a group.
  void log_deletion(Shard& shard, std::string_view key);

  // The change stream (changes.h): where this partition keeps it and how much.
  void set_change_stream(const ChangeStreamOptions& o, std::string key) {
    changes_ = o;
    change_key_ = std::move(key);
    if (o.enabled) store_->set_pinned_prefix(change_key_.substr(0, change_key_.find('{')));
  }
  const std::string& change_key() const { return change_key_; }
  // After a write command that wrote to this partition's store: its changes join the change stream
  // (index 0 without a log), and readers waiting on the stream are woken.
  void record_changes(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, uint64_t index,
                      uint32_t position, uint64_t now_ms);

 private:
  // Where a reply goes: `done` when set, else `to`.
  struct Target {
    Done done;
    ReplyTo to;
    void deliver(proto::Reply& r);
  };
  // Where a command stands in the log: its entry's index and its place among the entry's commands
  // (kAfterEntry: after all of them, for a read that waits for a whole entry).
  static constexpr uint32_t kAfterEntry = UINT32_MAX;
  struct Waiter {
    uint64_t index = 0;       // its entry's index
    uint32_t position = 0;    // its place in the entry
    uint64_t request = 0;     // its request id (checked at apply: the command there must be ours)
    const CommandEntry* entry = nullptr;
    uint64_t t0_ns = 0;
    Target target;
  };
  struct PendingRead {
    uint64_t index = 0;     // runs once this entry is applied up to `position`
    uint32_t position = 0;
    uint64_t round = 0;     // the ReadIndex round confirming it; 0 once confirmed (or not needed)
    const CommandEntry* entry = nullptr;
    std::vector<std::string> args;
    uint64_t t0_ns = 0;
    Target target;
  };
  void submit_to(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, Target target);
  // Reads due before command `position` of entry `index` runs (kAfterEntry: once it is all applied).
  void run_reads(Shard& shard, uint64_t index, uint32_t position);
  void fail_batch(Shard& shard, const std::string& error);
  void run_read(Shard& shard, PendingRead& r);
  void refuse_read(PendingRead& r, std::string_view error);
  // Every write still waiting gets `error` (their outcome is unknown to them).
  void answer_waiters(std::string_view error);
  // Asks the group to confirm the reads gathered this iteration (one ReadIndex per round).
  void request_read_round(Shard& shard);

  uint32_t id_;
  SlotRange slots_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<group::ReplicaGroup> group_;
  std::deque<Waiter> waiters_;     // by increasing index
  std::deque<PendingRead> reads_;  // by increasing index
  struct DecodedScratch;
  std::unique_ptr<DecodedScratch> decoded_;  // the entry being applied, decoded (reused)
  uint64_t next_request_ = 1;
  std::string batch_;         // the entry gathering this iteration's writes
  uint32_t batch_count_ = 0;  // commands in it
  bool applying_ = false;  // an entry is being applied: expiry found now is part of it, not logged
  bool confirm_reads_ = false;
  uint64_t read_round_ = 1;        // the round the reads arriving now join
  bool read_round_open_ = false;   // reads joined read_round_ and it is not yet asked for
  std::string unavailable_;
  ChangeStreamOptions changes_;
  std::string change_key_;
};

}  // namespace tally::server
