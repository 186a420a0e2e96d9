// Recovery of damaged logs (docs/wal-format.md, "Reading: recovery"): bit flips in payloads and
// headers, zeroed headers, damaged segment headers, the torn tail rule, and truncate_at().
#include <gtest/gtest.h>

#include "host/wal/log.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

using tally::testing::FaultEnv;
using tally::testing::MemEnv;

const std::string kDir = "/node/wal/shard-000";
constexpr size_t kPayloadBytes = 1000;
constexpr uint64_t kRecordBytes = 48 + kPayloadBytes;
constexpr int kPerSegment = 60;  // 6 batches of 10 records fill a 64 KiB segment
constexpr int kRecords = 150;    // segments 1 and 2 full, 3 half, 4 prepared and empty

// Record k (from 0) lies in segment k / 60 + 1 at 64 + (k % 60) * 1048; its group is k % 3 + 1.
uint64_t seq_of(int k) { return static_cast<uint64_t>(k / kPerSegment + 1); }
uint64_t offset_of(int k) { return kSegmentHeaderBytes + static_cast<uint64_t>(k % kPerSegment) * kRecordBytes; }
uint32_t group_of(int k) { return static_cast<uint32_t>(k % 3 + 1); }

struct Damaged : ::testing::Test {
  void SetUp() override {
    InlineLogIo io;
    LogOptions o;
    o.segment_bytes = kSmallSegmentBytes;
    auto log = Log::open(mem, io, kDir, 0, 1, o, cpu_checksum());
    ASSERT_TRUE(log.is_ok());
    for (int k = 0; k < kRecords; ++k) {
      (*log)->append(entry_header(group_of(k), 1, static_cast<uint64_t>(k / 3 + 1)), std::string(kPayloadBytes, static_cast<char>(k)));
      if (k % 10 == 9) {
        ASSERT_TRUE((*log)->flush([](Status st) { EXPECT_TRUE(st.is_ok()); }));
      }
    }
    ASSERT_EQ((*log)->current_segment(), 3u);
  }
  MemEnv mem;
  FaultEnv env{mem, 1};
};

TEST_F(Damaged, PayloadBitFlipIsCorruptionOfAKnownGroup) {
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, seq_of(30)), offset_of(30) + 48 + 500, 3).is_ok());
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  const BadRecord& b = got->result.corruptions[0];
  EXPECT_EQ(b.file, segment_path(kDir, 1));
  EXPECT_EQ(b.offset, offset_of(30));
  EXPECT_TRUE(b.group_known);
  EXPECT_EQ(b.group, group_of(30));
  EXPECT_EQ(b.what, "payload checksum");
  EXPECT_FALSE(got->result.torn_tail);
  ASSERT_EQ(got->result.unavailable.size(), 1u);
  EXPECT_EQ(got->result.unavailable.begin()->first, group_of(30));
  EXPECT_EQ(got->result.records, kRecords - 1u);  // never served; the rest are
  EXPECT_TRUE(got->result.segment_summaries[0].corrupt);
}

TEST_F(Damaged, HeaderBitFlipIsCorruptionOfUnknownGroupAndEveryGroupAfterItIsUnavailable) {
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, seq_of(30)), offset_of(30) + 26, 0).is_ok());  // the term
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  const BadRecord& b = got->result.corruptions[0];
  EXPECT_EQ(b.offset, offset_of(30));
  EXPECT_FALSE(b.group_known);
  EXPECT_EQ(b.what, "header checksum");
  EXPECT_EQ(got->result.unavailable.size(), 3u);
  EXPECT_TRUE(got->result.unknown_group);
  // The rest of that segment cannot be framed; later segments are read.
  EXPECT_EQ(got->result.records, 30u + 90u);
  EXPECT_FALSE(got->result.torn_tail);
}

TEST_F(Damaged, AHeaderFlipHidingAGroupsLastRecordKeepsThatGroupDownToo) {
  // Record 148 is the last of group 2; after it only record 149, of group 3. Group 2 has nothing
  // after the damage, yet the hidden record was its newest: it must not start without it.
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, seq_of(148)), offset_of(148) + 8, 1).is_ok());  // the length
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  ASSERT_TRUE(got->result.unknown_group);
  EXPECT_EQ(got->result.unknown_group->offset, offset_of(148));
  EXPECT_EQ(got->result.unavailable.size(), 3u);
  EXPECT_TRUE(got->result.unavailable.count(2));
}

TEST_F(Damaged, ZeroedHeaderWithRecordsAfterItIsCorruptionNotTheEnd) {
  ASSERT_TRUE(env.zero_range(segment_path(kDir, seq_of(40)), offset_of(40), 48).is_ok());
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  EXPECT_EQ(got->result.corruptions[0].what, "zeroed record header");
  EXPECT_EQ(got->result.corruptions[0].offset, offset_of(40));
}

TEST_F(Damaged, FlipInTheLastRecordReadsAsATornTail) {
  // The rule's blind spot: nothing valid follows, so it cannot be told from a torn write.
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, seq_of(149)), offset_of(149) + 100, 0).is_ok());
  auto got = recover_all(mem, kDir, RecoverMode::kRepairTail);
  ASSERT_TRUE(got.is_ok());
  EXPECT_TRUE(got->result.corruptions.empty());
  ASSERT_TRUE(got->result.torn_tail);
  EXPECT_EQ(got->result.torn_tail->offset, offset_of(149));
  EXPECT_EQ(got->result.records, kRecords - 1u);
  got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_EQ(got->result.records, kRecords - 1u);
}

TEST_F(Damaged, SegmentHeaderDamageMakesItsGroupsUnavailableButItsRecordsAreRead) {
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, 2), 20, 0).is_ok());  // the sequence number
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  EXPECT_EQ(got->result.corruptions[0].file, segment_path(kDir, 2));
  EXPECT_EQ(got->result.corruptions[0].offset, 0u);
  EXPECT_EQ(got->result.corruptions[0].what, "segment header: checksum");
  EXPECT_EQ(got->result.records, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(got->result.unavailable.size(), 3u);
}

TEST_F(Damaged, TornHeaderOfTheUnusedLastSegmentIsATornTail) {
  ASSERT_TRUE(env.zero_range(segment_path(kDir, 4), 30, 34).is_ok());  // a preparation cut short
  auto got = recover_all(mem, kDir, RecoverMode::kRepairTail);
  ASSERT_TRUE(got.is_ok());
  ASSERT_TRUE(got->result.torn_tail);
  EXPECT_EQ(got->result.torn_tail->file, segment_path(kDir, 4));
  EXPECT_EQ(got->result.torn_tail->offset, 0u);
  EXPECT_TRUE(got->result.corruptions.empty());
  got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_FALSE(got->result.torn_tail);  // now all zeros: an unused segment
  EXPECT_EQ(got->result.records, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(got->result.next_seq, 5u);
}

TEST_F(Damaged, TruncateAtTheBadRecordDropsItAndEverythingAfter) {
  ASSERT_TRUE(env.flip_bit(segment_path(kDir, seq_of(30)), offset_of(30) + 30, 0).is_ok());
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  ASSERT_EQ(got->result.corruptions.size(), 1u);
  auto dropped = truncate_at(mem, kDir, 1, got->result.corruptions[0].offset);
  ASSERT_TRUE(dropped.is_ok()) << dropped.status().to_string();
  EXPECT_EQ(*dropped, static_cast<uint64_t>(kRecords - 31));  // the valid ones after the bad record
  EXPECT_EQ(*mem.list_dir(kDir), std::vector<std::string>{"00000000000000000001.wal"});
  got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_TRUE(got->result.corruptions.empty());
  EXPECT_FALSE(got->result.torn_tail);
  EXPECT_EQ(got->result.records, 30u);
}

TEST_F(Damaged, TruncateAtChecksItsArguments) {
  EXPECT_EQ(truncate_at(mem, kDir, 1, 13).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(truncate_at(mem, kDir, 1, 32).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(truncate_at(mem, kDir, 9, 64).status().code(), Code::kNotFound);
  EXPECT_EQ(truncate_at(mem, kDir, 1, kSmallSegmentBytes + 8).status().code(), Code::kInvalidArgument);
  auto got = recover_all(mem, kDir);
  EXPECT_EQ(got->result.records, static_cast<uint64_t>(kRecords));  // untouched
}

TEST(Recovery, MissingOrEmptyDirectoryIsAnEmptyLog) {
  MemEnv mem;
  auto got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->result.segments, 0u);
  EXPECT_EQ(got->result.next_seq, 1u);
  ASSERT_TRUE(mem.create_dirs(kDir).is_ok());
  {
    auto f = mem.open_file(kDir + "/notes.txt", OpenMode::kCreate);  // not a segment name: ignored
    ASSERT_TRUE((*f)->write_at(0, "hello").is_ok());
  }
  got = recover_all(mem, kDir);
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ(got->result.segments, 0u);
}

}  // namespace
}  // namespace tally::wal::test
