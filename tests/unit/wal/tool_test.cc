// `tallyctl wal verify` and `tallyctl wal truncate` over a node directory of several shards: what
// they print and their exit statuses (0 clean, 1 torn tail only, 2 corruption).
#include <gtest/gtest.h>

#include "host/wal/log.h"
#include "host/wal/wal_tool.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

using tally::testing::FaultEnv;
using tally::testing::MemEnv;

const std::string kNode = "/node";

struct Node : ::testing::Test {
  void SetUp() override {
    for (uint32_t shard = 0; shard < 2; ++shard) {
      InlineLogIo io;
      LogOptions o;
      o.segment_bytes = kSmallSegmentBytes;
      auto log = Log::open(mem, io, shard_dir(kNode, shard), shard, 1, o, cpu_checksum());
      ASSERT_TRUE(log.is_ok());
      for (uint64_t i = 1; i <= 100; ++i) {
        (*log)->append(entry_header(static_cast<uint32_t>(shard * 10 + i % 2), 1, i), std::string(1000, 'v'));
        if (i % 10 == 0) {
          ASSERT_TRUE((*log)->flush([](Status st) { EXPECT_TRUE(st.is_ok()); }));
        }
      }
    }
  }
  MemEnv mem;
  FaultEnv env{mem, 1};
};

TEST_F(Node, VerifyCleanLog) {
  std::string out;
  EXPECT_EQ(verify_command(mem, kNode, out), kVerifyClean);
  EXPECT_EQ(out,
            "shard-000: 3 segments, 100 records, 104800 bytes, OK\n"
            "shard-001: 3 segments, 100 records, 104800 bytes, OK\n");
}

TEST_F(Node, VerifyTornTailOnlyChangesNothing) {
  const std::string seg = segment_path(shard_dir(kNode, 1), 2);
  const uint64_t last = 64 + 39 * 1048;  // record 100 of shard 1, the last of segment 2
  ASSERT_TRUE(env.flip_bit(seg, last + 60, 1).is_ok());
  std::string out;
  EXPECT_EQ(verify_command(mem, kNode, out), kVerifyTornTail);
  EXPECT_NE(out.find("shard-001: 3 segments, 99 records"), std::string::npos) << out;
  EXPECT_NE(out.find("  torn tail at " + seg + ":" + std::to_string(last) + " group 10: payload checksum"),
            std::string::npos) << out;
  out.clear();
  EXPECT_EQ(verify_command(mem, kNode, out), kVerifyTornTail);  // verify repaired nothing
}

TEST_F(Node, VerifyAndTruncateCorruption) {
  const std::string seg = segment_path(shard_dir(kNode, 0), 1);
  const uint64_t bad = 64 + 20 * 1048;
  ASSERT_TRUE(env.flip_bit(seg, bad + 20, 0).is_ok());  // a reserved header byte: header checksum
  std::string out;
  EXPECT_EQ(verify_command(mem, kNode, out), kVerifyCorruption);
  EXPECT_NE(out.find("shard-000: 3 segments, 60 records, 62880 bytes, 1 corrupt records\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  corruption at " + seg + ":" + std::to_string(bad) + " unknown group: header checksum\n"),
            std::string::npos) << out;
  EXPECT_NE(out.find("  unavailable: every partition of this shard"), std::string::npos) << out;
  EXPECT_NE(out.find("  unavailable groups: 0 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("shard-001: 3 segments, 100 records, 104800 bytes, OK"), std::string::npos) << out;

  out.clear();
  EXPECT_EQ(truncate_command(mem, kNode, 0, "1:" + std::to_string(bad), out), 0) << out;
  EXPECT_EQ(out, shard_dir(kNode, 0) + ": cut at segment 1 offset " + std::to_string(bad) + ", 79 records dropped\n");
  out.clear();
  EXPECT_EQ(verify_command(mem, kNode, out), kVerifyClean) << out;
  EXPECT_NE(out.find("shard-000: 1 segments, 20 records"), std::string::npos) << out;
}

TEST_F(Node, BadArguments) {
  std::string out;
  EXPECT_EQ(truncate_command(mem, kNode, 0, "1-64", out), 2);
  EXPECT_EQ(truncate_command(mem, kNode, 0, "1:", out), 2);
  EXPECT_EQ(truncate_command(mem, kNode, 0, "99999999999999999999999:64", out), 2);
  EXPECT_EQ(truncate_command(mem, kNode, 7, "1:64", out), 2);
  out.clear();
  EXPECT_EQ(verify_command(mem, "/elsewhere", out), kVerifyCorruption);
  EXPECT_NE(out.find("cannot read /elsewhere/wal"), std::string::npos) << out;
  uint64_t seq = 0, offset = 0;
  EXPECT_TRUE(parse_position("12:4096", seq, offset));
  EXPECT_EQ(seq, 12u);
  EXPECT_EQ(offset, 4096u);
}

}  // namespace
}  // namespace tally::wal::test
