// Crashes at random points, over many seeds (MemEnv drops what was not synced, tearing the write
// after the prefix it keeps): recovery must return every record whose batch was acknowledged, in
// order, and nothing corrupt; a torn tail is reported and truncated. Then the same under a storm of
// transient faults with retries, and with I/O still in flight at the crash.
#include <gtest/gtest.h>

#include "host/wal/log.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"
#include "tests/support/queued_log_io.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

using tally::testing::Fault;
using tally::testing::FaultEnv;
using tally::testing::FaultKind;
using tally::testing::FaultOp;
using tally::testing::kFaultForever;
using tally::testing::MemEnv;
using tally::testing::QueuedLogIo;

const std::string kDir = "/node/wal/shard-000";

// After the crash: repair, check, and check that a second recovery finds the log clean.
void check_after_crash(MemEnv& mem, const std::vector<Rec>& appended, size_t durable, uint64_t seed, int& torn) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  auto got = recover_all(mem, kDir, RecoverMode::kRepairTail);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  ASSERT_TRUE(got->result.corruptions.empty()) << got->result.corruptions[0].file << ":"
                                               << got->result.corruptions[0].offset << " "
                                               << got->result.corruptions[0].what;
  ASSERT_TRUE(got->result.unavailable.empty());
  expect_durable_prefix(appended, durable, *got);
  if (!got->result.torn_tail) return;
  ++torn;
  auto again = recover_all(mem, kDir);
  ASSERT_TRUE(again.is_ok());
  EXPECT_FALSE(again->result.torn_tail);
  EXPECT_TRUE(again->result.corruptions.empty());
  EXPECT_EQ(again->recs, got->recs);
}

TEST(Crash, AtRandomPointsLosesNothingAcknowledged) {
  const uint64_t kSeeds = seed_count(400);
  int torn = 0, cut = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    MemEnv mem(seed);
    FaultEnv env(mem, seed);
    Rng rng(seed);
    // A failed fdatasync may or may not drop the dirty pages.
    if (rng.chance(1, 2)) env.on_failed_sync = [&](const std::string& path) { mem.drop_unsynced(path); };
    const bool fsync_mode = rng.chance(3, 4);
    // The power goes after a random number of changes to the disk.
    env.inject(Fault{FaultOp::kAnyChange, FaultKind::kIoError, "*", rng.range(0, 700), kFaultForever});
    InlineLogIo io;
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    o.sync_each_batch = fsync_mode;
    auto log = Log::open(env, io, kDir, 0, 1, o, cpu_checksum());
    std::vector<Rec> appended;
    size_t durable = 0;
    Workload w(seed, 4, 3000);
    for (int b = 0; log.is_ok() && b < 200 && !(*log)->failed(); ++b) {
      for (uint64_t i = rng.range(1, 8); i > 0; --i) {
        appended.push_back(w.next());
        (*log)->append(appended.back().h, appended.back().payload);
      }
      const size_t upto = appended.size();
      ASSERT_TRUE((*log)->flush([&, upto](Status st) {
        if (st.is_ok() && fsync_mode) durable = upto;
      }));
      ASSERT_FALSE((*log)->has_pending());
      if (!fsync_mode && rng.chance(1, 3)) {
        (*log)->sync_now([&, upto](Status st) {
          if (st.is_ok()) durable = upto;
        });
      }
    }
    if (log.is_ok()) {
      cut += (*log)->failed() ? 1 : 0;
      log->reset();
    }
    mem.crash(rng);
    check_after_crash(mem, appended, durable, seed, torn);
    if (HasFatalFailure()) return;
  }
  // The seeds cover crashes that tear the last batch, and crashes inside the run.
  EXPECT_GT(torn, 40);
  EXPECT_GT(cut, 150);
}

TEST(Crash, UnderTransientFaultsWithRetriesLosesNothingAcknowledged) {
  const uint64_t kSeeds = seed_count(200);
  int torn = 0;
  uint64_t failures = 0, retries_ok = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    MemEnv mem(seed);
    FaultEnv env(mem, seed);
    Rng rng(seed);
    if (rng.chance(1, 2)) env.on_failed_sync = [&](const std::string& path) { mem.drop_unsynced(path); };
    for (uint64_t f = rng.range(1, 4); f > 0; --f) {
      switch (rng.uniform(4)) {
        case 0: env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, "*.wal", rng.range(0, 60), rng.range(1, 2)}); break;
        case 1: env.inject(Fault{FaultOp::kWrite, FaultKind::kIoError, "*.wal", rng.range(0, 60), 1}); break;
        case 2: env.inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, "*.wal", rng.range(0, 60), 1}); break;
        default: env.inject(Fault{FaultOp::kAllocate, FaultKind::kNoSpace, "*", rng.range(0, 6), rng.range(1, 3)}); break;
      }
    }
    env.inject(Fault{FaultOp::kAnyChange, FaultKind::kIoError, "*", rng.range(50, 900), kFaultForever});
    InlineLogIo io;
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    auto log = Log::open(env, io, kDir, 0, 1, o, cpu_checksum());
    ASSERT_TRUE(log.is_ok());
    std::vector<Rec> appended;
    size_t durable = 0;
    Workload w(seed, 4, 3000);
    for (int tick = 0; tick < 300; ++tick) {
      if ((*log)->failed() || (*log)->out_of_space()) {
        (*log)->retry([&](Status st) { retries_ok += st.is_ok() ? 1 : 0; });
        if ((*log)->failed()) continue;
      }
      for (uint64_t i = rng.range(1, 8); i > 0; --i) {
        appended.push_back(w.next());
        (*log)->append(appended.back().h, appended.back().payload);
      }
      const size_t upto = appended.size();
      ASSERT_TRUE((*log)->flush([&, upto](Status st) {
        if (st.is_ok()) durable = upto;
      }));
    }
    failures += (*log)->stats().failures;
    log->reset();
    mem.crash(rng);
    check_after_crash(mem, appended, durable, seed, torn);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(failures, kSeeds);
  EXPECT_GT(retries_ok, kSeeds / 2);
  EXPECT_GT(torn, 10);
}

TEST(Crash, WithIoInFlightLosesNothingAcknowledged) {
  const uint64_t kSeeds = seed_count(200);
  int torn = 0;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    MemEnv mem(seed);
    QueuedLogIo io;
    Rng rng(seed);
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    o.sync_each_batch = rng.chance(1, 2);
    auto log = Log::open(mem, io, kDir, 0, 1, o, cpu_checksum());
    ASSERT_TRUE(log.is_ok());
    std::vector<Rec> appended;
    size_t durable = 0;
    Workload w(seed, 3, 2000);
    const uint64_t steps = rng.range(1, 600);
    for (uint64_t step = 0; step < steps; ++step) {
      switch (rng.uniform(3)) {
        case 0:  // the shard's loop: appends, and a flush at the end of the iteration
          for (uint64_t i = rng.range(1, 4); i > 0; --i) {
            appended.push_back(w.next());
            (*log)->append(appended.back().h, appended.back().payload);
          }
          if (!(*log)->busy()) {
            // The batch holds everything appended so far unless some did not fit one segment; then
            // its done proves nothing about the last ones, and it counts for nothing here.
            auto covers = std::make_shared<size_t>(appended.size());
            const bool fsync_mode = o.sync_each_batch;
            ASSERT_TRUE((*log)->flush([&, covers, fsync_mode](Status st) {
              ASSERT_TRUE(st.is_ok());
              if (fsync_mode) durable = std::max(durable, *covers);
            }));
            if ((*log)->has_pending()) *covers = 0;
          }
          break;
        case 1:
          if (io.queued() > 0) io.run_one();
          break;
        default:
          if (!o.sync_each_batch && !(*log)->busy() && !(*log)->has_pending()) {
            const size_t upto = appended.size();
            (*log)->sync_now([&, upto](Status st) {
              if (st.is_ok()) durable = upto;
            });
          }
          break;
      }
    }
    io.drop_all();  // the process dies with its I/O in flight
    log->reset();
    mem.crash(rng);
    check_after_crash(mem, appended, durable, seed, torn);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(torn, 10);
}

}  // namespace
}  // namespace tally::wal::test
