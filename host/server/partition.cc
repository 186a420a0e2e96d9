#include "host/server/partition.h"

#include <string>

#include "host/common/log.h"
#include "host/server/blocking.h"
#include "host/server/client_session.h"
#include "host/server/command_codec.h"
#include "host/server/command_table.h"
#include "host/server/notify.h"
#include "host/server/server.h"
#include "host/server/shard.h"

namespace tally::server {

namespace {

constexpr std::string_view kErrLogFailed =
    "MISCONF Errors writing to the write-ahead log: writes are refused until the disk recovers (see INFO "
    "persistence)";
constexpr std::string_view kErrNotLeader = "TRYAGAIN the partition cannot take writes right now";
constexpr std::string_view kErrReadNotLeader = "TRYAGAIN the partition cannot serve reads right now (no leader here)";
constexpr std::string_view kErrReadsFull = "BUSY too many reads waiting for writes on this partition";

}  // namespace

struct Partition::DecodedScratch {
  DecodedCommand cmd;
};

void Partition::Target::deliver(proto::Reply& r) {
  if (done) {
    done(r);
  } else if (ClientSession* s = ClientSession::lookup(*to.home, to.conn_id)) {
    s->complete_reply(to.seq, r);
  }
}

Partition::Partition(uint32_t id, SlotRange slots, store::StoreOptions options, store::StoreShared* shared)
    : id_(id),
      slots_(slots),
      store_(std::make_unique<store::Store>(options, shared)),
      decoded_(std::make_unique<DecodedScratch>()) {}

Partition::~Partition() = default;

void Partition::set_group(std::unique_ptr<group::ReplicaGroup> g) {
  TALLY_ASSERT(group_ == nullptr && g != nullptr);
  group_ = std::move(g);
}

bool Partition::can_run_now(const CommandEntry& e, bool log_failed) const {
  if (!unavailable_.empty()) return false;  // submit() answers with the reason
  if (group_ == nullptr) return true;
  if (e.flags & kCmdWrite) return false;
  if (confirm_reads_) return false;  // every read waits for its ReadIndex round
  return log_failed || (reads_.empty() && batch_count_ == 0 && group_->caught_up());
}

bool Partition::serves_replica_read(const CommandEntry& e) const {
  if (!unavailable_.empty() || group_ == nullptr || (e.flags & kCmdWrite)) return false;
  return group_->role() == raft::Role::kFollower && group_->leader() != raft::kNoNode;
}

void Partition::submit(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, Done done) {
  submit_to(shard, e, argv, Target{std::move(done), {}});
}

void Partition::submit(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, ReplyTo to) {
  TALLY_ASSERT(to.home != nullptr);
  submit_to(shard, e, argv, Target{nullptr, to});
}

void Partition::submit_to(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, Target target) {
  TALLY_ASSERT(e.data != nullptr);
  CommandCounters& counters = shard.metrics->per_command[e.index];
  const uint64_t t0 = shard.clock->monotonic_ns();
  proto::Reply refused;
  if (!unavailable_.empty()) {
    CommandCounters::bump(counters.rejected);
    refused.error("CLUSTERDOWN partition " + std::to_string(id_) + " is unavailable: " + unavailable_);
    target.deliver(refused);
    return;
  }
  TALLY_ASSERT(group_ != nullptr);
  if (!(e.flags & kCmdWrite)) {
    if (reads_.size() >= kPendingReadsMax) {
      CommandCounters::bump(counters.rejected);
      refused.error(kErrReadsFull);
      target.deliver(refused);
      return;
    }
    // A linearizable read: it sees every write proposed before it, and nothing proposed after — not
    // even a later write of the entry now gathering (it runs at its place among that entry's commands).
    if (confirm_reads_ && (!group_->is_leader() || shard.log_failed())) {
      // Not leading, or the log failed (a read's confirmation arrives only through the log's loop).
      CommandCounters::bump(counters.rejected);
      refused.error(shard.log_failed() ? std::string(shard.log_error_text()) : std::string(kErrReadNotLeader));
      target.deliver(refused);
      return;
    }
    const bool in_batch = batch_count_ > 0;
    reads_.push_back(PendingRead{in_batch ? group_->last_index() + 1 : group_->last_index(),
                                 in_batch ? batch_count_ : kAfterEntry, confirm_reads_ ? read_round_ : 0, &e,
                                 std::vector<std::string>(argv.begin(), argv.end()), t0, std::move(target)});
    if (confirm_reads_ && !read_round_open_) {
      read_round_open_ = true;
      shard.mark_dirty(id_);
    }
    return;
  }
  const uint64_t now_ms = shard.clock->wall_ms();
  std::string_view error;
  if (shard.log_failed()) {
    error = shard.log_error_text();
  } else if ((e.flags & kCmdDenyOom) && !shard.admit_write(now_ms)) {
    error = store::kOomError;
  }
  if (error.empty() && !group_->is_leader()) error = kErrNotLeader;
  if (error.empty()) {
    // Into the entry this iteration gathers; proposed at the end of the iteration (or now if full).
    const uint64_t request = next_request_++;
    append_command(batch_, request, now_ms, argv);
    waiters_.push_back(Waiter{group_->last_index() + 1, batch_count_, request, &e, t0, std::move(target)});
    ++batch_count_;
    if (batch_.size() >= kBatchEntryBytesMax || batch_count_ >= kBatchEntryCommandsMax) {
      propose_batch(shard);
    } else {
      shard.mark_dirty(id_);
    }
    return;
  }
  CommandCounters::bump(counters.rejected);
  refused.error(error);
  target.deliver(refused);
}

void Partition::request_read_round(Shard& shard) {
  read_round_open_ = false;
  const uint64_t round = read_round_++;
  // A node that stepped down this iteration would forward the round to the new leader, and its reads
  // would wait for an index of its own log that may never be written: refuse them here instead.
  const Status st = group_->is_leader() ? group_->read_index(std::to_string(round))
                                        : Status::unavailable("not the leader");
  if (!st.is_ok()) read_refused(shard, std::to_string(round));
}

void Partition::read_confirmed(Shard& shard, const std::string& context, uint64_t index) {
  const uint64_t round = std::strtoull(context.c_str(), nullptr, 10);
  // Rounds only grow along reads_, so the confirmed reads are a prefix of the unconfirmed ones, and
  // raising their index to `index` keeps reads_ ordered (a later read's index is at least the commit
  // index when an earlier round was asked).
  for (PendingRead& r : reads_) {
    if (r.round == 0) continue;
    if (r.round > round) break;
    r.round = 0;
    if (index > r.index) {
      r.index = index;
      r.position = kAfterEntry;
    }
  }
  run_reads(shard, group_->applied(), kAfterEntry);
}

void Partition::read_refused(Shard& shard, const std::string& context) {
  (void)shard;
  const uint64_t round = std::strtoull(context.c_str(), nullptr, 10);
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->round != 0 && it->round <= round) {
      PendingRead r = std::move(*it);
      it = reads_.erase(it);
      refuse_read(r, "TRYAGAIN the read could not be confirmed: this node no longer leads the partition");
    } else {
      ++it;
    }
  }
}

void Partition::refuse_read(PendingRead& r, std::string_view error) {
  proto::Reply out;
  out.error(error);
  r.target.deliver(out);
}

void Partition::propose_batch(Shard& shard) {
  if (read_round_open_) request_read_round(shard);
  if (batch_count_ == 0) return;
  TALLY_ASSERT(group_ != nullptr);
  const uint64_t expected = group_->last_index() + 1;
  const Status st = group_->propose(std::move(batch_));
  batch_.clear();
  batch_count_ = 0;
  if (st.is_ok()) {
    TALLY_ASSERT(group_->last_index() == expected);  // the waiters and reads named this index
    shard.mark_dirty(id_);
    return;
  }
  fail_batch(shard, st.code() == Code::kResourceExhausted ? std::string("BUSY too many writes waiting for the log")
                                                          : std::string(kErrNotLeader));
}

void Partition::fail_batch(Shard& shard, const std::string& error) {
  // Nothing of the entry was proposed: its writes failed (certainly), its reads run now.
  const uint64_t index = group_->last_index() + 1;
  while (!waiters_.empty() && waiters_.back().index == index) {
    proto::Reply r;
    r.error(error);
    Target t = std::move(waiters_.back().target);
    waiters_.pop_back();
    t.deliver(r);
  }
  // The reads placed in that entry now wait for what is before it (the entry will never exist).
  for (PendingRead& r : reads_) {
    if (r.index == index) {
      r.index = index - 1;
      r.position = kAfterEntry;
    }
  }
  run_reads(shard, group_->applied(), kAfterEntry);
}

void Partition::apply(Shard& shard, uint64_t index, std::string_view data) {
  DecodedCommand& cmd = decoded_->cmd;
  CommandReader reader(data);
  // Applying is where a replicated partition removes expired keys: at the same place in every
  // replica's log, with the entry's time.
  if (confirm_reads_) store_->set_erase_expired(true);
  // Every replica draws the same randomness (SPOP) for this entry.
  store_->reseed(index ^ (uint64_t{id_} << 48));
  uint32_t position = 0;
  for (; reader.next(cmd); ++position) {
    run_reads(shard, index, position);
    const CommandEntry* e = CommandTable::instance().find(cmd.argv[0]);
    TALLY_ASSERT_MSG(e != nullptr && e->data != nullptr, "a committed log entry names no data command");
    proto::Reply& r = shard.apply_scratch;
    r.clear();
    applying_ = true;
    ExecContext ctx{*store_, r, cmd.now_ms};
    const bool notify = (e->flags & kCmdWrite) && notifications_on();
    const uint64_t present = notify ? keys_present(*store_, *e, cmd.argv, cmd.now_ms) : 0;
    const uint64_t stamp0 = store_->write_stamp();
    e->data->handler(ctx, cmd.argv);
    applying_ = false;
    if (notify) notify_source_misses(shard, *e, cmd.argv, present);
    if (store_->write_stamp() != stamp0) {  // something was written
      notify_written(shard, *e, cmd.argv);
      record_changes(shard, *e, cmd.argv, index, position, cmd.now_ms);
      if (notify) notify_write(shard, *store_, *e, cmd.argv, cmd.now_ms, present);
    }
    while (!waiters_.empty() &&
           (waiters_.front().index < index || (waiters_.front().index == index && waiters_.front().position <= position))) {
      Waiter w = std::move(waiters_.front());
      waiters_.pop_front();
      if (w.index == index && w.position == position && w.request == cmd.request_id) {
        CommandCounters& counters = shard.metrics->per_command[w.entry->index];
        counters.record(shard.clock->monotonic_ns() - w.t0_ns, r.is_error());
        CommandCounters::bump(shard.metrics->commands_processed);
        w.target.deliver(r);
      } else {
        // Another entry took its place (a new leader's): what became of it is unknown.
        proto::Reply unknown;
        unknown.error("TRYAGAIN the write's outcome is unknown: the partition's log changed hands");
        w.target.deliver(unknown);
      }
    }
  }
  TALLY_ASSERT_MSG(!reader.malformed(), "a committed log entry is not a list of commands");
  if (confirm_reads_) store_->set_erase_expired(false);
  run_reads(shard, index, kAfterEntry);
}

void Partition::record_changes(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv,
                               uint64_t index, uint32_t position, uint64_t now_ms) {
  if (!changes_.enabled) return;
  if (server::record_changes(*store_, changes_, change_key_, id_, index, position, now_ms, e, argv)) {
    shard.blocking.written(change_key_);
  }
}

void Partition::applied_to(Shard& shard, uint64_t index) { run_reads(shard, index, kAfterEntry); }

void Partition::run_reads(Shard& shard, uint64_t index, uint32_t position) {
  while (!reads_.empty() && reads_.front().round == 0 &&
         (reads_.front().index < index || (reads_.front().index == index && reads_.front().position <= position))) {
    PendingRead r = std::move(reads_.front());
    reads_.pop_front();
    run_read(shard, r);
  }
}

void Partition::run_read(Shard& shard, PendingRead& r) {
  std::vector<std::string_view> argv(r.args.begin(), r.args.end());
  proto::Reply& out = shard.apply_scratch;
  out.clear();
  ExecContext ctx{*store_, out, shard.clock->wall_ms()};
  r.entry->data->handler(ctx, argv);
  if (notifications_on()) notify_misses(shard, *store_, *r.entry, argv, ctx.now_ms);
  shard.metrics->per_command[r.entry->index].record(shard.clock->monotonic_ns() - r.t0_ns, out.is_error());
  CommandCounters::bump(shard.metrics->commands_processed);
  r.target.deliver(out);
}

void Partition::fail_waiting(Shard& shard, std::string_view error) {
  std::string text(error);
  text += " (the outcome of this write is unknown: it may yet be applied)";
  answer_waiters(text);
  std::deque<PendingRead> reads;
  reads.swap(reads_);
  const uint64_t applied = group_ != nullptr ? group_->applied() : 0;
  for (PendingRead& r : reads) {
    // A replicated partition's read runs only at the index that makes it linearizable; one not yet
    // reached (or not yet confirmed) is refused rather than answered from older state.
    if (r.round != 0 || (confirm_reads_ && r.index > applied)) {
      refuse_read(r, "TRYAGAIN the read could not be completed: the write-ahead log failed");
    } else {
      run_read(shard, r);
    }
  }
}

void Partition::answer_waiters(std::string_view error) {
  std::deque<Waiter> waiters;
  waiters.swap(waiters_);
  for (Waiter& w : waiters) {
    proto::Reply r;
    r.error(error);
    w.target.deliver(r);
  }
}

void Partition::leadership_lost(Shard& shard) {
  (void)shard;
  answer_waiters("TRYAGAIN the write's outcome is unknown: this node no longer leads the partition");
}

void Partition::log_deletion(Shard& shard, std::string_view key) {
  if (group_ == nullptr || applying_ || shard.log_failed() || !group_->is_leader()) return;
  const std::string_view argv[] = {"del", key};
  // Request id 0: nobody waits for it.
  append_command(batch_, 0, shard.clock->wall_ms(), argv);
  ++batch_count_;
  shard.mark_dirty(id_);
}

}  // namespace tally::server
