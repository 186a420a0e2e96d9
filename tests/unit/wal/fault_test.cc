// The Log on a failing disk (docs/wal-format.md, "Disk faults while running"): EIO on fdatasync and
// on write, short writes, a retry that fails again, and ENOSPC while preparing a segment.
#include <gtest/gtest.h>

#include "host/wal/log.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

using tally::testing::Fault;
using tally::testing::FaultEnv;
using tally::testing::FaultKind;
using tally::testing::FaultOp;
using tally::testing::MemEnv;

const std::string kDir = "/node/wal/shard-000";
const std::string kSegment1 = "*/00000000000000000001.wal";

struct Rig {
  explicit Rig(bool drop_pages = true, uint64_t seed = 1) : mem(seed), env(mem, seed) {
    // After a failed fdatasync the kernel may drop the dirty pages: model the worst case.
    if (drop_pages) env.on_failed_sync = [this](const std::string& path) { mem.drop_unsynced(path); };
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    auto l = Log::open(env, io, kDir, 0, 1, o, cpu_checksum());
    EXPECT_TRUE(l.is_ok());
    log = std::move(*l);
  }
  // Appends `n` records of `payload_bytes` and returns them.
  std::vector<Rec> append(int n, size_t payload_bytes = 500) {
    std::vector<Rec> out;
    for (int i = 0; i < n; ++i) {
      ++index;
      out.push_back(Rec{entry_header(1, 1, index), std::string(payload_bytes, static_cast<char>('a' + index % 26))});
      log->append(out.back().h, out.back().payload);
      appended.push_back(out.back());
    }
    return out;
  }
  // Flushes; returns the status its done got.
  Status flush() {
    Status got = Status::internal("done did not run");
    EXPECT_TRUE(log->flush([&](Status st) { got = std::move(st); }));
    return got;
  }
  Status retry() {
    Status got = Status::internal("done did not run");
    log->retry([&](Status st) { got = std::move(st); });
    return got;
  }

  MemEnv mem;
  FaultEnv env;
  InlineLogIo io;
  std::unique_ptr<Log> log;
  std::vector<Rec> appended;
  uint64_t index = 0;
};

std::string read_range(Env& env, const std::string& path, uint64_t from, uint64_t to) {
  auto data = env.read_file(path);
  EXPECT_TRUE(data.is_ok());
  return data->substr(from, to - from);
}

class SyncFailure : public ::testing::TestWithParam<bool> {};

TEST_P(SyncFailure, FailsTheLogUntilARetryRewritesIntoAFreshSegment) {
  Rig rig(GetParam());
  rig.append(3);
  ASSERT_TRUE(rig.flush().is_ok());
  const uint64_t batch2_at = kSegmentHeaderBytes + 3 * record_bytes(500);
  rig.env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, kSegment1, 0, 1});
  rig.append(2);
  const Status st = rig.flush();
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_TRUE(rig.log->failed());
  EXPECT_EQ(rig.log->failure().code(), Code::kIoError);
  EXPECT_FALSE(rig.log->out_of_space());

  // Nothing later completes while failed.
  rig.append(4);
  EXPECT_FALSE(rig.log->flush([](Status) { ADD_FAILURE() << "a failed log completed a batch"; }));
  EXPECT_TRUE(rig.log->has_pending());
  Status synced;
  rig.log->sync_now([&](Status s) { synced = std::move(s); });
  EXPECT_EQ(synced.code(), Code::kIoError);

  ASSERT_TRUE(rig.retry().is_ok());
  EXPECT_FALSE(rig.log->failed());
  EXPECT_EQ(rig.log->current_segment(), 2u);  // a fresh segment, never written before
  // What the failed batch may have left in segment 1 is zeros now.
  EXPECT_EQ(read_range(rig.mem, segment_path(kDir, 1), batch2_at, batch2_at + 2 * record_bytes(500)),
            std::string(2 * record_bytes(500), '\0'));
  ASSERT_TRUE(rig.flush().is_ok());
  EXPECT_EQ(rig.log->stats().failures, 1u);
  rig.log.reset();

  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);  // each exactly once, in order
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_TRUE(got->result.corruptions.empty());
}

INSTANTIATE_TEST_SUITE_P(DirtyPages, SyncFailure, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Dropped" : "Kept"; });

TEST(WriteFailure, IsHandledLikeASyncFailure) {
  Rig rig;
  rig.append(3);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.env.inject(Fault{FaultOp::kWrite, FaultKind::kIoError, kSegment1, 0, 1});
  rig.append(2);
  EXPECT_EQ(rig.flush().code(), Code::kIoError);
  ASSERT_TRUE(rig.log->failed());
  ASSERT_TRUE(rig.retry().is_ok());
  rig.append(1);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);
}

TEST(ShortWrite, LeftAloneItIsATornTailThatRepairTruncates) {
  Rig rig;
  rig.append(3);
  ASSERT_TRUE(rig.flush().is_ok());
  const uint64_t batch2_at = kSegmentHeaderBytes + 3 * record_bytes(500);
  rig.env.inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, kSegment1, 0, 1, 100});
  rig.append(3);
  EXPECT_EQ(rig.flush().code(), Code::kIoError);
  rig.log.reset();

  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_TRUE(got->result.torn_tail);
  EXPECT_EQ(got->result.torn_tail->file, segment_path(kDir, 1));
  EXPECT_EQ(got->result.torn_tail->offset, batch2_at);
  EXPECT_EQ(got->result.torn_tail->what, "payload checksum");  // the header went whole, the payload did not
  EXPECT_TRUE(got->result.corruptions.empty());
  EXPECT_TRUE(got->result.unavailable.empty());
  EXPECT_EQ(got->recs.size(), 3u);

  ASSERT_TRUE(recover_all(rig.mem, kDir, RecoverMode::kRepairTail).is_ok());
  got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_EQ(got->recs.size(), 3u);
  EXPECT_EQ(read_range(rig.mem, segment_path(kDir, 1), batch2_at, batch2_at + 100), std::string(100, '\0'));
}

TEST(ShortWrite, RetriedLeavesNoTraceButTheRecords) {
  Rig rig;
  rig.append(3);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.env.inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, kSegment1, 0, 1, 700});
  rig.append(3);
  EXPECT_FALSE(rig.flush().is_ok());
  ASSERT_TRUE(rig.retry().is_ok());
  rig.append(2);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_TRUE(got->result.corruptions.empty());
}

TEST(Retry, ThatFailsLeavesTheLogFailedAndCanBeTriedAgain) {
  Rig rig;
  rig.append(2);
  ASSERT_TRUE(rig.flush().is_ok());
  // The batch's sync fails, then the retry's (zeroing segment 1), then the disk heals.
  rig.env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, kSegment1, 0, 2});
  rig.append(2);
  EXPECT_FALSE(rig.flush().is_ok());
  EXPECT_EQ(rig.retry().code(), Code::kIoError);
  EXPECT_TRUE(rig.log->failed());
  EXPECT_EQ(rig.log->stats().failures, 2u);
  ASSERT_TRUE(rig.retry().is_ok());
  EXPECT_FALSE(rig.log->failed());
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);
}

TEST(Retry, RewriteThatFailsIsZeroedAndRewrittenAgain) {
  Rig rig;
  rig.append(2);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, kSegment1, 0, 1});
  rig.env.inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, "*/00000000000000000002.wal", 0, 1, 60});
  rig.append(2);
  EXPECT_FALSE(rig.flush().is_ok());
  EXPECT_EQ(rig.retry().code(), Code::kIoError);  // the rewrite into segment 2 is torn
  ASSERT_TRUE(rig.retry().is_ok());               // zeroes that, rewrites into segment 3
  EXPECT_EQ(rig.log->current_segment(), 3u);
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);
  EXPECT_TRUE(got->result.corruptions.empty());
}

TEST(Retry, OnAHealthyLogSucceedsAtOnce) {
  Rig rig;
  EXPECT_TRUE(rig.retry().is_ok());
}

// Segments of 64 KiB, records of 30 KB: two a segment. The disk holds three segments.
TEST(OutOfSpace, PreparingASegmentFailsThenTheWaitingBatchThenRetrySucceedsOnceSpaceIsBack) {
  Rig rig;
  rig.env.set_space_limit(3 * kSmallSegmentBytes + 100);
  for (int b = 0; b < 4; ++b) {
    rig.append(1, 30000);
    ASSERT_TRUE(rig.flush().is_ok()) << b;
  }
  EXPECT_FALSE(rig.log->out_of_space());
  rig.append(1, 30000);  // rolls to segment 3; preparing segment 4 ahead runs out of space
  ASSERT_TRUE(rig.flush().is_ok());
  EXPECT_TRUE(rig.log->out_of_space());
  EXPECT_FALSE(rig.log->failed());
  rig.append(1, 30000);
  ASSERT_TRUE(rig.flush().is_ok());  // segment 3 still has room
  rig.append(1, 30000);
  const Status st = rig.flush();     // needs a segment: one more try, no space
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_TRUE(rig.log->failed());
  EXPECT_TRUE(rig.log->out_of_space());
  EXPECT_EQ(rig.retry().code(), Code::kResourceExhausted);
  // Failed preparations leave no file behind.
  EXPECT_EQ(*rig.env.list_dir(kDir), (std::vector<std::string>{"00000000000000000001.wal", "00000000000000000002.wal",
                                                                "00000000000000000003.wal"}));
  rig.env.set_space_limit(10 * kSmallSegmentBytes);
  ASSERT_TRUE(rig.retry().is_ok());
  EXPECT_FALSE(rig.log->failed());
  EXPECT_FALSE(rig.log->out_of_space());
  rig.append(1, 30000);
  ASSERT_TRUE(rig.flush().is_ok());
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->recs, rig.appended);
}

TEST(OutOfSpace, AloneIsClearedByRetryOnceAPreparationSucceeds) {
  Rig rig;
  rig.append(1);
  ASSERT_TRUE(rig.flush().is_ok());  // segment 2 is prepared ahead here
  rig.env.inject(Fault{FaultOp::kAllocate, FaultKind::kNoSpace, "*", 0, 2});
  rig.append(1, 65000);
  ASSERT_TRUE(rig.flush().is_ok());  // rolls to segment 2; preparing 3 fails
  EXPECT_TRUE(rig.log->out_of_space());
  EXPECT_FALSE(rig.log->failed());
  EXPECT_EQ(rig.retry().code(), Code::kResourceExhausted);
  EXPECT_TRUE(rig.retry().is_ok());
  EXPECT_FALSE(rig.log->out_of_space());
}

}  // namespace
}  // namespace tally::wal::test
