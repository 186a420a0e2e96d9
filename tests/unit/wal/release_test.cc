// release(): segments none of whose records is still needed are deleted, oldest first, after each
// group's latest hard state living in them was appended again and made durable; across a restart
// through adopt(); never the current segment, never a corrupt one.
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

struct Rig {
  explicit Rig(uint64_t next_seq = 1) : env(mem, 1) { open(next_seq); }
  void open(uint64_t next_seq) {
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    auto l = Log::open(env, io, kDir, 0, next_seq, o, cpu_checksum());
    ASSERT_TRUE(l.is_ok());
    log = std::move(*l);
  }
  void hard_state(uint32_t group, uint64_t term, uint64_t commit, uint64_t vote) {
    log->append(hard_state_header(group, term, commit), encode_vote(vote));
  }
  // Entries from..to of each group, interleaved, 1000-byte payloads, batches of 10.
  void entries(const std::vector<uint32_t>& groups, uint64_t from, uint64_t to) {
    int n = 0;
    for (uint64_t i = from; i <= to; ++i) {
      for (uint32_t g : groups) {
        log->append(entry_header(g, 1, i), std::string(1000, static_cast<char>(g * 31 + i)));
        if (++n % 10 == 0) flush();
      }
    }
    flush();
  }
  void flush() {
    while (log->has_pending()) {
      bool ok = false;
      ASSERT_TRUE(log->flush([&](Status st) { ok = st.is_ok(); }));
      ASSERT_TRUE(ok);
    }
  }
  std::vector<std::string> files() { return *env.list_dir(kDir); }

  MemEnv mem;
  FaultEnv env;
  InlineLogIo io;
  std::unique_ptr<Log> log;
};

TEST(Release, DeletesTheOldestSegmentsAfterReappendingTheirHardStates) {
  Rig rig;
  rig.hard_state(1, 3, 0, 7);
  rig.hard_state(2, 4, 0, 8);
  rig.entries({1, 2}, 1, 120);  // 240 records: four segments and a bit
  const uint64_t segments_before = rig.files().size();
  ASSERT_GE(rig.log->current_segment(), 4u);

  rig.log->release(1, 120);  // group 2 still needs every segment
  EXPECT_EQ(rig.log->stats().segments_deleted, 0u);
  EXPECT_FALSE(rig.log->has_pending());

  rig.log->release(2, 60);  // segments 1 and 2 hold group 2 only up to index 60
  EXPECT_EQ(rig.log->stats().segments_deleted, 0u);
  EXPECT_TRUE(rig.log->has_pending());  // both hard states, appended again, wait to be durable
  rig.flush();
  EXPECT_EQ(rig.log->stats().segments_deleted, 2u);
  EXPECT_EQ(rig.files().size(), segments_before - 2);
  EXPECT_FALSE(rig.mem.exists(segment_path(kDir, 1)));
  EXPECT_FALSE(rig.mem.exists(segment_path(kDir, 2)));
  rig.log->release(2, 60);  // nothing more to do, nothing appended
  EXPECT_FALSE(rig.log->has_pending());
  rig.log.reset();

  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_TRUE(got->result.corruptions.empty());
  const auto& groups = got->replay.groups();
  EXPECT_EQ(groups.at(1).hard_state, (ReplayHardState{3, 0, 7}));
  EXPECT_EQ(groups.at(2).hard_state, (ReplayHardState{4, 0, 8}));
  // Everything above the released index is there.
  for (uint64_t i = 61; i <= 120; ++i) {
    ASSERT_TRUE(groups.at(2).entries.count(i)) << i;
    EXPECT_EQ(groups.at(2).entries.at(i).data, std::string(1000, static_cast<char>(2 * 31 + i)));
  }
  int hard_states = 0;
  for (const Rec& r : got->recs) hard_states += r.h.type == RecordType::kHardState ? 1 : 0;
  EXPECT_EQ(hard_states, 2);
}

TEST(Release, ANewerHardStateOnItsWayIsWaitedForNotDuplicated) {
  Rig rig;
  rig.hard_state(1, 1, 0, 5);
  rig.entries({1}, 1, 100);
  rig.hard_state(1, 2, 50, 6);  // not yet flushed
  rig.log->release(1, 100);
  EXPECT_EQ(rig.log->stats().segments_deleted, 0u);
  rig.flush();  // only the newer hard state goes out; then the old segments can go
  EXPECT_GE(rig.log->stats().segments_deleted, 1u);
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  int hard_states = 0;
  for (const Rec& r : got->recs) hard_states += r.h.type == RecordType::kHardState ? 1 : 0;
  EXPECT_EQ(hard_states, 1);
  EXPECT_EQ(got->replay.groups().at(1).hard_state, (ReplayHardState{2, 50, 6}));
}

TEST(Release, NeverTheCurrentSegment) {
  Rig rig;
  rig.entries({1}, 1, 20);
  ASSERT_EQ(rig.log->current_segment(), 1u);
  rig.log->release(1, 20);
  EXPECT_EQ(rig.log->stats().segments_deleted, 0u);
  EXPECT_TRUE(rig.mem.exists(segment_path(kDir, 1)));
}

TEST(Release, AfterARestartTheAdoptedSegmentsGoToo) {
  uint64_t next_seq = 0;
  Rig rig;
  rig.hard_state(1, 9, 0, 3);
  rig.entries({1}, 1, 150);
  rig.log.reset();
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  next_seq = got->result.next_seq;
  const size_t old_segments = got->result.segments;
  ASSERT_GE(old_segments, 4u);

  rig.open(next_seq);
  rig.log->adopt(got->result);
  rig.log->release(1, 150);
  EXPECT_TRUE(rig.log->has_pending());  // the hard state, from segment 1, appended again
  rig.flush();
  EXPECT_EQ(rig.log->stats().segments_deleted, old_segments);
  for (uint64_t seq = 1; seq < next_seq; ++seq) EXPECT_FALSE(rig.mem.exists(segment_path(kDir, seq))) << seq;
  rig.log.reset();
  got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->replay.groups().at(1).hard_state, (ReplayHardState{9, 0, 3}));
  EXPECT_TRUE(got->replay.groups().at(1).entries.empty());
}

TEST(Release, ACorruptSegmentAndEverythingAfterItStay) {
  Rig rig;
  rig.entries({1}, 1, 200);  // 60 a segment: segments 1 to 4
  rig.log.reset();
  ASSERT_TRUE(rig.env.flip_bit(segment_path(kDir, 2), 64 + 48 + 7, 2).is_ok());
  auto got = recover_all(rig.mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  rig.open(got->result.next_seq);
  rig.log->adopt(got->result);
  rig.log->release(1, 200);
  EXPECT_EQ(rig.log->stats().segments_deleted, 1u);
  EXPECT_FALSE(rig.mem.exists(segment_path(kDir, 1)));
  EXPECT_TRUE(rig.mem.exists(segment_path(kDir, 2)));
}

TEST(Release, AFailedDeletionIsTriedAgainLater) {
  Rig rig;
  rig.entries({1}, 1, 130);
  rig.env.inject(Fault{FaultOp::kRemove, FaultKind::kIoError, "*", 0, 1});
  rig.log->release(1, 130);
  EXPECT_EQ(rig.log->stats().segments_deleted, 0u);
  EXPECT_FALSE(rig.log->failed());  // not a failure of the log
  rig.entries({1}, 131, 131);       // the next durable batch looks again
  EXPECT_EQ(rig.log->stats().segments_deleted, 2u);
}

}  // namespace
}  // namespace tally::wal::test
