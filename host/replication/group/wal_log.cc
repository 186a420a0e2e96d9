#include "host/replication/group/wal_log.h"

#include "host/common/assert.h"

namespace tally::group {

void WalGroupLog::persist(uint32_t group, const raft::Ready& rd, std::function<void(Status)> done) {
  // Installing a snapshot sent by a leader replaces the group's state: its file is written (durably)
  // first, and a restart starts from it; the log keeps only the records after it. A single node
  // never receives one.
  if (rd.snapshot.has_value()) {
    TALLY_ASSERT_MSG(install_ != nullptr, "wal: a snapshot install without an installer");
    const Status st = install_(group, *rd.snapshot);
    if (!st.is_ok()) {
      // The snapshot's file could not be made durable: the Ready waits (nothing of it is logged, sent
      // or applied) and the install is tried again until it succeeds.
      for (const PendingInstall& pi : installs_) TALLY_ASSERT_MSG(pi.group != group, "wal: two installs of one group");
      installs_.push_back(PendingInstall{group, &rd, std::move(done)});
      return;
    }
  }
  log_records(group, rd, std::move(done));
}

void WalGroupLog::retry_installs() {
  if (installs_.empty()) return;
  // A record's done may persist the group's next Ready at once: those join installs_ anew.
  std::vector<PendingInstall> pending;
  pending.swap(installs_);
  for (PendingInstall& pi : pending) {
    if (install_(pi.group, *pi.rd->snapshot).is_ok()) {
      log_records(pi.group, *pi.rd, std::move(pi.done));
    } else {
      installs_.push_back(std::move(pi));
    }
  }
}

void WalGroupLog::log_records(uint32_t group, const raft::Ready& rd, Callback done) {
  if (rd.entries.empty() && !rd.hard_state.has_value()) {
    done(Status::ok());  // nothing to make durable
    return;
  }
  const size_t before = log_.pending_records();
  for (const raft::Entry& e : rd.entries) {
    wal::RecordHeader h;
    h.type = wal::RecordType::kEntry;
    h.entry_type = static_cast<uint8_t>(e.type);
    h.group = group;
    h.term = e.term;
    h.index = e.index;
    log_.append(h, e.data);
  }
  if (rd.hard_state) {
    wal::RecordHeader h;
    h.type = wal::RecordType::kHardState;
    h.group = group;
    h.term = rd.hard_state->term;
    h.index = rd.hard_state->commit;
    log_.append(h, wal::encode_vote(rd.hard_state->vote));
  }
  appended_ += log_.pending_records() - before;
  waiting_.push_back(Waiting{appended_, std::move(done)});
}

void WalGroupLog::flush() {
  if (!log_.has_pending() || log_.busy() || log_.failed() || retrying_) return;
  const bool started = log_.flush([this](Status st) { completed(std::move(st)); });
  TALLY_ASSERT_MSG(started, "wal: flush refused while not busy");
}

void WalGroupLog::completed(Status st) {
  // A batch takes a prefix of the pending records (at most a segment's worth): the Readys whose last
  // record was in it are the ones this completion concerns; the rest wait for a later batch. This
  // runs inside flush() when the I/O completes at once (tests, the simulator).
  const uint64_t taken = appended_ - log_.pending_records();
  std::vector<Callback> done;
  while (!waiting_.empty() && waiting_.front().last_record <= taken) {
    done.push_back(std::move(waiting_.front().done));
    waiting_.pop_front();
  }
  if (!st.is_ok()) {
    // The groups stop (their persist failed); they are completed again once retry() succeeds.
    if (on_failure_) on_failure_(st);
    for (Callback& cb : done) cb(st);
    failed_.insert(failed_.end(), std::make_move_iterator(done.begin()), std::make_move_iterator(done.end()));
    return;
  }
  for (Callback& cb : done) cb(Status::ok());
}

void WalGroupLog::retry(std::function<void(Status)> done) {
  if (retrying_) return;
  retrying_ = true;
  log_.retry([this, done = std::move(done)](Status st) {
    retrying_ = false;
    if (st.is_ok()) {
      std::vector<Callback> resumed;
      resumed.swap(failed_);
      for (Callback& cb : resumed) cb(Status::ok());
    }
    done(std::move(st));
  });
}

}  // namespace tally::group
