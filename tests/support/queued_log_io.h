// A LogIo that queues every operation until the test runs it, so a test (or the simulator) decides
// when each write, sync and blocking job happens, sees what is in flight, and can crash between them.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "host/common/assert.h"
#include "host/wal/log_io.h"

namespace tally::testing {

class QueuedLogIo final : public wal::LogIo {
 public:
  enum class Kind : uint8_t { kWrite, kSync, kBlocking };
  // Operations queued before the test must run some; a runaway loop, not a real bound.
  static constexpr size_t kQueuedMax = 1 << 16;

  void write(File& file, uint64_t offset, std::string_view bytes, bool sync, wal::Done done) override {
    push(Kind::kWrite, [&file, offset, bytes, sync, done = std::move(done)] {
      Status st = file.write_at(offset, bytes);
      if (st.is_ok() && sync) st = file.sync();
      done(std::move(st));
    });
  }
  void sync(File& file, wal::Done done) override {
    push(Kind::kSync, [&file, done = std::move(done)] { done(file.sync()); });
  }
  void run_blocking(std::function<Status()> work, wal::Done done) override {
    push(Kind::kBlocking, [work = std::move(work), done = std::move(done)] { done(work()); });
  }

  size_t queued() const { return ops_.size(); }
  Kind next_kind() const {
    TALLY_ASSERT(!ops_.empty());
    return ops_.front().kind;
  }
  // Runs the oldest operation (and its callback, which may queue more).
  void run_one() {
    TALLY_ASSERT(!ops_.empty());
    auto op = std::move(ops_.front().run);
    ops_.pop_front();
    op();
  }
  // Runs operations until none is queued; returns how many ran.
  size_t run_all() {
    size_t n = 0;
    while (!ops_.empty()) {
      run_one();
      TALLY_ASSERT(++n < kQueuedMax);
    }
    return n;
  }
  // Forgets what is queued without running it (the process died with it in flight).
  void drop_all() { ops_.clear(); }

 private:
  struct Op {
    Kind kind;
    std::function<void()> run;
  };
  void push(Kind kind, std::function<void()> run) {
    TALLY_ASSERT(ops_.size() < kQueuedMax);
    ops_.push_back(Op{kind, std::move(run)});
  }
  std::deque<Op> ops_;
};

}  // namespace tally::testing
