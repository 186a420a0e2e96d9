#include "host/server/partition.h"

#include <string>

#include "host/common/log.h"
#include "host/server/command_codec.h"
#include "host/server/command_table.h"
#include "host/server/server.h"
#include "host/server/shard.h"

namespace tally::server {

namespace {

constexpr std::string_view kErrLogFailed =
    "MISCONF Errors writing to the write-ahead log: writes are refused until the disk recovers (see INFO "
    "persistence)";
constexpr std::string_view kErrNotLeader = "TRYAGAIN the partition cannot take writes right now";
constexpr std::string_view kErrReadsFull = "BUSY too many reads waiting for writes on this partition";

}  // namespace

Partition::Partition(uint32_t id, SlotRange slots, store::StoreOptions options, store::StoreShared* shared)
    : id_(id), slots_(slots), store_(std::make_unique<store::Store>(options, shared)) {}

Partition::~Partition() = default;

void Partition::set_group(std::unique_ptr<group::ReplicaGroup> g) {
  TALLY_ASSERT(group_ == nullptr && g != nullptr);
  group_ = std::move(g);
}

bool Partition::can_run_now(const CommandEntry& e, bool log_failed) const {
  if (!unavailable_.empty()) return false;  // submit() answers with the reason
  if (group_ == nullptr) return true;
  if (e.flags & kCmdWrite) return false;
  return log_failed || (reads_.empty() && group_->caught_up());
}

void Partition::submit(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv, Done done) {
  TALLY_ASSERT(e.data != nullptr);
  CommandCounters& counters = shard.metrics->per_command[e.index];
  const uint64_t t0 = shard.clock->monotonic_ns();
  proto::Reply refused;
  if (!unavailable_.empty()) {
    CommandCounters::bump(counters.rejected);
    refused.error("CLUSTERDOWN partition " + std::to_string(id_) + " is unavailable: " + unavailable_);
    done(refused);
    return;
  }
  TALLY_ASSERT(group_ != nullptr);
  if (!(e.flags & kCmdWrite)) {
    if (reads_.size() >= kPendingReadsMax) {
      CommandCounters::bump(counters.rejected);
      refused.error(kErrReadsFull);
      done(refused);
      return;
    }
    // A linearizable read: it sees every write proposed before it, and nothing proposed after.
    reads_.push_back(PendingRead{group_->last_index(), &e, std::vector<std::string>(argv.begin(), argv.end()), t0,
                                 std::move(done)});
    return;
  }
  const uint64_t now_ms = shard.clock->wall_ms();
  std::string_view error;
  if (shard.log_failed()) {
    error = shard.log_error_text();
  } else if ((e.flags & kCmdDenyOom) && !shard.admit_write(now_ms)) {
    error = store::kOomError;
  }
  if (error.empty()) {
    const uint64_t request = next_request_++;
    const Status st = group_->propose(encode_command(request, now_ms, argv));
    if (st.is_ok()) {
      waiters_.push_back(Waiter{group_->last_index(), request, &e, t0, std::move(done)});
      shard.mark_dirty(id_);
      return;
    }
    error = st.code() == Code::kResourceExhausted ? std::string_view("BUSY too many writes waiting for the log")
                                                   : kErrNotLeader;
  }
  CommandCounters::bump(counters.rejected);
  refused.error(error);
  done(refused);
}

void Partition::apply(Shard& shard, uint64_t index, std::string_view data) {
  DecodedCommand cmd;
  TALLY_ASSERT_MSG(decode_command(data, cmd), "a committed log entry is not a command");
  const CommandEntry* e = CommandTable::instance().find(cmd.argv[0]);
  TALLY_ASSERT_MSG(e != nullptr && e->data != nullptr, "a committed log entry names no data command");
  // Every replica draws the same randomness (SPOP) and the same time (TTLs) for this entry.
  store_->reseed(index ^ (uint64_t{id_} << 48));
  proto::Reply& r = shard.apply_scratch;
  r.clear();
  applying_ = true;
  ExecContext ctx{*store_, r, cmd.now_ms};
  e->data->handler(ctx, cmd.argv);
  applying_ = false;
  while (!waiters_.empty() && waiters_.front().index <= index) {
    Waiter w = std::move(waiters_.front());
    waiters_.pop_front();
    if (w.index == index && w.request == cmd.request_id) {
      CommandCounters& counters = shard.metrics->per_command[w.entry->index];
      counters.record(shard.clock->monotonic_ns() - w.t0_ns, r.is_error());
      CommandCounters::bump(shard.metrics->commands_processed);
      w.done(r);
    } else {
      // Another entry took its place (a new leader's): what became of it is unknown.
      proto::Reply unknown;
      unknown.error("TRYAGAIN the write's outcome is unknown: the partition's log changed hands");
      w.done(unknown);
    }
  }
  run_reads(shard, index);
}

void Partition::applied_to(Shard& shard, uint64_t index) { run_reads(shard, index); }

void Partition::run_reads(Shard& shard, uint64_t applied) {
  while (!reads_.empty() && reads_.front().index <= applied) {
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
  shard.metrics->per_command[r.entry->index].record(shard.clock->monotonic_ns() - r.t0_ns, out.is_error());
  CommandCounters::bump(shard.metrics->commands_processed);
  r.done(out);
}

void Partition::fail_waiting(Shard& shard, std::string_view error) {
  std::deque<Waiter> waiters;
  waiters.swap(waiters_);
  std::string text(error);
  text += " (the outcome of this write is unknown: it may yet be applied)";
  for (Waiter& w : waiters) {
    proto::Reply r;
    r.error(text);
    w.done(r);
  }
  std::deque<PendingRead> reads;
  reads.swap(reads_);
  for (PendingRead& r : reads) run_read(shard, r);
}

void Partition::log_deletion(Shard& shard, std::string_view key) {
  if (group_ == nullptr || applying_ || shard.log_failed()) return;
  const std::string_view argv[] = {"del", key};
  // Request id 0: nobody waits for it. A refusal (not leader) leaves the key to the leader's expiry.
  if (group_->propose(encode_command(0, shard.clock->wall_ms(), argv)).is_ok()) shard.mark_dirty(id_);
}

}  // namespace tally::server
