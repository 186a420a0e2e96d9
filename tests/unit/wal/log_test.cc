// The Log on a healthy disk: group commit (one write, one checksum batch), one batch in flight,
// segment rolls, oversized records, interval mode, stats, and recovery of everything written.
#include <gtest/gtest.h>

#include "host/wal/log.h"
#include "tests/support/mem_env.h"
#include "tests/support/queued_log_io.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

using tally::testing::MemEnv;
using tally::testing::QueuedLogIo;

const std::string kDir = "/node/wal/shard-000";

LogOptions small_segments(bool sync_each_batch = true) {
  LogOptions o;
  o.segment_bytes = kSmallSegmentBytes;
  o.sync_each_batch = sync_each_batch;
  return o;
}

std::unique_ptr<Log> open_log(Env& env, LogIo& io, LogOptions o, ChecksumFn fn = cpu_checksum(), uint64_t next_seq = 1) {
  auto log = Log::open(env, io, kDir, 0, next_seq, o, std::move(fn));
  EXPECT_TRUE(log.is_ok()) << log.status().to_string();
  return log.is_ok() ? std::move(*log) : nullptr;
}

// Flushes until nothing is pending; every batch must succeed at once (inline I/O).
void flush_all(Log& log) {
  for (int i = 0; i < 1000 && log.has_pending(); ++i) {
    bool ok = false;
    ASSERT_TRUE(log.flush([&](Status st) { ok = st.is_ok(); }));
    ASSERT_TRUE(ok);
  }
  ASSERT_FALSE(log.has_pending());
}

TEST(Log, OpenRejectsBadOptions) {
  MemEnv env;
  InlineLogIo io;
  LogOptions o;
  o.segment_bytes = 4096;
  EXPECT_EQ(Log::open(env, io, kDir, 0, 1, o, cpu_checksum()).status().code(), Code::kInvalidArgument);
  o.segment_bytes = kSmallSegmentBytes + 4;
  EXPECT_EQ(Log::open(env, io, kDir, 0, 1, o, cpu_checksum()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Log::open(env, io, kDir, 0, 0, small_segments(), cpu_checksum()).status().code(), Code::kInvalidArgument);
}

TEST(Log, GroupCommitIsOneWriteAndOneChecksumBatch) {
  MemEnv env;
  InlineLogIo inline_io;
  CountingIo io(inline_io);
  ChecksumCounts sums;
  auto log = open_log(env, io, small_segments(), cpu_checksum(&sums));
  EXPECT_EQ(io.blocking, 1u);  // the first segment, prepared at open
  Workload w(1, 4, 100);
  std::vector<Rec> appended;
  for (int i = 0; i < 100; ++i) {
    appended.push_back(w.next());
    log->append(appended.back().h, appended.back().payload);
  }
  EXPECT_TRUE(log->has_pending());
  EXPECT_EQ(io.writes, 0u);  // appends never do I/O
  int done = 0;
  ASSERT_TRUE(log->flush([&](Status st) {
    EXPECT_TRUE(st.is_ok());
    ++done;
  }));
  EXPECT_EQ(done, 1);
  EXPECT_EQ(io.writes, 1u);
  EXPECT_EQ(io.synced_writes, 1u);
  EXPECT_EQ(io.syncs, 0u);  // the fdatasync rides with the write
  EXPECT_EQ(sums.calls, 1u);
  EXPECT_EQ(sums.items, 200u);
  EXPECT_EQ(log->stats().batches, 1u);
  EXPECT_EQ(log->stats().records, 100u);
  EXPECT_EQ(log->stats().bytes, io.last_write_bytes);
  EXPECT_EQ(log->stats().syncs, 1u);
  EXPECT_EQ(log->current_segment(), 1u);
  log.reset();
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, appended);
  EXPECT_EQ(got->result.records, 100u);
  EXPECT_EQ(got->result.bytes, io.last_write_bytes);
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_TRUE(got->result.corruptions.empty());
  // The segment prepared ahead is there, empty, and counts for the next number.
  EXPECT_EQ(got->result.segments, 2u);
  EXPECT_EQ(got->result.next_seq, 3u);
}

TEST(Log, EmptyFlushCompletesAtOnce) {
  MemEnv env;
  InlineLogIo inline_io;
  CountingIo io(inline_io);
  auto log = open_log(env, io, small_segments());
  bool ok = false;
  EXPECT_TRUE(log->flush([&](Status st) { ok = st.is_ok(); }));
  EXPECT_TRUE(ok);
  EXPECT_EQ(io.writes, 0u);
}

TEST(Log, OneBatchInFlightWhileTheNextFills) {
  MemEnv env;
  QueuedLogIo io;
  auto log = open_log(env, io, small_segments());
  io.run_all();  // the first segment
  log->append(entry_header(1, 1, 1), "a");
  int first = 0, second = 0;
  ASSERT_TRUE(log->flush([&](Status st) { first += st.is_ok() ? 1 : 100; }));
  EXPECT_TRUE(log->busy());
  EXPECT_EQ(io.queued(), 2u);  // the next segment's preparation, and the write
  ASSERT_EQ(io.next_kind(), QueuedLogIo::Kind::kBlocking);
  io.run_one();
  log->append(entry_header(1, 1, 2), "b");
  log->append(entry_header(1, 1, 3), "c");
  EXPECT_FALSE(log->flush([&](Status) { ADD_FAILURE() << "refused flush must not complete"; }));
  EXPECT_TRUE(log->has_pending());
  env.manual_clock().advance_ms(5);
  ASSERT_EQ(io.next_kind(), QueuedLogIo::Kind::kWrite);
  io.run_one();
  EXPECT_EQ(first, 1);
  EXPECT_FALSE(log->busy());
  EXPECT_EQ(log->stats().sync_ns_total, 5'000'000u);
  EXPECT_EQ(log->stats().sync_ns_max, 5'000'000u);
  ASSERT_TRUE(log->flush([&](Status st) { second += st.is_ok() ? 1 : 100; }));
  io.run_all();
  EXPECT_EQ(second, 1);
  EXPECT_EQ(log->stats().batches, 2u);
  EXPECT_EQ(log->stats().records, 3u);
  log.reset();
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->recs.size(), 3u);
  EXPECT_EQ(got->recs[2].payload, "c");
}

TEST(Log, ABatchThatDoesNotFitGoesWholeToTheNextSegment) {
  MemEnv env;
  InlineLogIo inline_io;
  CountingIo io(inline_io);
  auto log = open_log(env, io, small_segments());
  const std::string payload(1000, 'p');  // 1048 bytes a record
  constexpr int kPerBatch = 10;
  uint64_t index = 0;
  for (int b = 0; b < 20; ++b) {
    for (int i = 0; i < kPerBatch; ++i) log->append(entry_header(1, 1, ++index), payload);
    flush_all(*log);
  }
  EXPECT_EQ(io.writes, 20u);  // one write a batch, no batch split
  EXPECT_EQ(log->current_segment(), 4u);
  log.reset();
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->result.records, 200u);
  // Each segment ends at a batch boundary: 6 batches of 10480 bytes fit 65472.
  const auto& s = got->result.segment_summaries;
  ASSERT_GE(s.size(), 4u);
  EXPECT_EQ(s[0].max_index.at(1), 60u);
  EXPECT_EQ(s[1].max_index.at(1), 120u);
  EXPECT_EQ(s[2].max_index.at(1), 180u);
  EXPECT_EQ(s[3].max_index.at(1), 200u);
}

TEST(Log, FlushTakesAtMostOneSegmentOfRecords) {
  MemEnv env;
  InlineLogIo inline_io;
  CountingIo io(inline_io);
  auto log = open_log(env, io, small_segments());
  for (uint64_t i = 1; i <= 150; ++i) log->append(entry_header(1, 1, i), std::string(1000, 'q'));
  ASSERT_TRUE(log->flush([](Status st) { EXPECT_TRUE(st.is_ok()); }));
  EXPECT_TRUE(log->has_pending());  // 62 records fill a segment; the rest wait
  flush_all(*log);
  EXPECT_EQ(io.writes, 3u);
  log.reset();
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->result.records, 150u);
}

TEST(Log, ARecordLargerThanASegmentGetsASegmentOfItsOwnSize) {
  MemEnv env;
  InlineLogIo io;
  auto log = open_log(env, io, small_segments());
  std::vector<Rec> appended = {Rec{entry_header(1, 1, 1), "small"},
                               Rec{entry_header(1, 1, 2), std::string(200 << 10, 'B')},
                               Rec{entry_header(1, 1, 3), "after"}};
  for (const Rec& r : appended) log->append(r.h, r.payload);
  flush_all(*log);
  log.reset();
  auto names = env.list_dir(kDir);
  ASSERT_TRUE(names.is_ok());
  // Segment 2 (prepared ahead, too small) was removed unused; 3 holds the big record alone.
  EXPECT_EQ(*names, (std::vector<std::string>{"00000000000000000001.wal", "00000000000000000003.wal",
                                               "00000000000000000004.wal", "00000000000000000005.wal"}));
  auto big = env.open_file(segment_path(kDir, 3), OpenMode::kRead);
  EXPECT_EQ(*(*big)->size(), kSegmentHeaderBytes + record_bytes(200 << 10));
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, appended);
}

TEST(Log, PayloadLongerThanOneChecksumRange) {
  MemEnv env;
  InlineLogIo io;
  ChecksumCounts sums;
  auto log = open_log(env, io, small_segments(), cpu_checksum(&sums));
  std::string payload(kernels::kChecksumItemBytesMax + 12345, '\0');
  Rng rng(4);
  for (char& c : payload) c = static_cast<char>(rng.next());
  log->append(entry_header(2, 1, 1), payload);
  flush_all(*log);
  EXPECT_EQ(sums.calls, 1u);
  EXPECT_EQ(sums.items, 3u);  // the header, and the payload in two ranges
  log.reset();
  auto got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->recs.size(), 1u);
  EXPECT_TRUE(got->recs[0].payload == payload);
}

TEST(Log, RecoversEverythingWrittenAndGoesOnAfterReopening) {
  MemEnv env;
  InlineLogIo io;
  Workload w(7, 5, 2000);
  std::vector<Rec> appended;
  Rng rng(7);
  auto write_some = [&](Log& log, int batches) {
    for (int b = 0; b < batches; ++b) {
      const uint64_t n = rng.range(1, 20);
      for (uint64_t i = 0; i < n; ++i) {
        appended.push_back(w.next());
        log.append(appended.back().h, appended.back().payload);
      }
      flush_all(log);
    }
  };
  auto log = open_log(env, io, small_segments());
  write_some(*log, 100);
  log.reset();
  auto got = recover_all(env, kDir, RecoverMode::kRepairTail);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, appended);
  EXPECT_GT(got->result.segments, 5u);

  log = open_log(env, io, small_segments(), cpu_checksum(), got->result.next_seq);
  log->adopt(got->result);
  write_some(*log, 50);
  log.reset();
  got = recover_all(env, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, appended);
  EXPECT_TRUE(got->replay == replay_of(appended, appended.size()));
}

TEST(Log, IntervalModeWritesWithoutSyncAndSyncNowMakesItDurable) {
  MemEnv env;
  InlineLogIo inline_io;
  CountingIo io(inline_io);
  auto log = open_log(env, io, small_segments(false));
  for (uint64_t i = 1; i <= 5; ++i) {
    log->append(entry_header(1, 1, i), "x");
    flush_all(*log);
  }
  EXPECT_EQ(io.writes, 5u);
  EXPECT_EQ(io.synced_writes, 0u);
  EXPECT_GT(env.unsynced_writes(segment_path(kDir, 1)), 0u);
  bool synced = false;
  log->sync_now([&](Status st) { synced = st.is_ok(); });
  EXPECT_TRUE(synced);
  EXPECT_EQ(io.syncs, 1u);
  EXPECT_EQ(env.unsynced_writes(segment_path(kDir, 1)), 0u);
  // Nothing written since: completes at once, no I/O.
  log->sync_now([&](Status st) { EXPECT_TRUE(st.is_ok()); });
  EXPECT_EQ(io.syncs, 1u);
  // A roll syncs the segment left behind first, so unsynced records only ever lie in one segment.
  log->append(entry_header(1, 1, 6), "y");
  flush_all(*log);
  log->append(entry_header(1, 1, 7), std::string(kSmallSegmentBytes - 200, 'z'));
  flush_all(*log);
  EXPECT_EQ(io.syncs, 2u);
  EXPECT_EQ(env.unsynced_writes(segment_path(kDir, 1)), 0u);
  EXPECT_EQ(log->current_segment(), 2u);
}

TEST(Log, IntervalModeCrashKeepsWhatSyncNowCovered) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    MemEnv env(seed);
    InlineLogIo io;
    auto log = open_log(env, io, small_segments(false));
    Workload w(seed, 3, 300);
    std::vector<Rec> appended;
    size_t durable = 0;
    Rng rng(seed);
    for (int b = 0; b < 40; ++b) {
      for (uint64_t i = rng.range(1, 5); i > 0; --i) {
        appended.push_back(w.next());
        log->append(appended.back().h, appended.back().payload);
      }
      flush_all(*log);
      if (rng.chance(1, 4)) {
        const size_t upto = appended.size();
        log->sync_now([&, upto](Status st) {
          if (st.is_ok()) durable = upto;
        });
      }
    }
    log.reset();
    env.crash(rng);
    auto got = recover_all(env, kDir, RecoverMode::kRepairTail);
    ASSERT_TRUE(got.is_ok());
    EXPECT_TRUE(got->result.corruptions.empty());
    expect_durable_prefix(appended, durable, *got);
  }
}

}  // namespace
}  // namespace tally::wal::test
