// The Log on a real directory (Env::posix() in a mkdtemp folder): preallocated segments with their
// final names, written, reopened and recovered; and the tallyctl commands over it.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "host/wal/log.h"
#include "host/wal/wal_tool.h"
#include "tests/unit/wal/wal_test_util.h"

namespace tally::wal::test {
namespace {

class PosixLog : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tally-wal-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    node_ = tmpl;
    dir_ = shard_dir(node_, 0);
  }
  void TearDown() override { std::filesystem::remove_all(node_); }
  std::string node_, dir_;
};

TEST_F(PosixLog, WritesReopensAndRecovers) {
  Env& env = Env::posix();
  InlineLogIo io;
  LogOptions o;
  o.segment_bytes = kSmallSegmentBytes;
  Workload w(11, 3, 4000);
  std::vector<Rec> appended;
  for (int run = 0; run < 2; ++run) {
    auto r = recover_all(env, dir_, RecoverMode::kRepairTail);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->recs, appended);
    auto log = Log::open(env, io, dir_, 0, r->result.next_seq, o, cpu_checksum());
    ASSERT_TRUE(log.is_ok()) << log.status().to_string();
    (*log)->adopt(r->result);
    for (int b = 0; b < 40; ++b) {
      for (int i = 0; i < 10; ++i) {
        appended.push_back(w.next());
        (*log)->append(appended.back().h, appended.back().payload);
      }
      bool ok = false;
      ASSERT_TRUE((*log)->flush([&](Status st) { ok = st.is_ok(); }));
      ASSERT_TRUE(ok);
    }
    EXPECT_GT((*log)->stats().sync_ns_total, 0u);
  }
  // Every segment has its final name and its full size from the start.
  size_t segments = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    ++segments;
    EXPECT_EQ(entry.path().extension(), ".wal");
    EXPECT_EQ(std::filesystem::file_size(entry.path()), kSmallSegmentBytes);
  }
  EXPECT_GT(segments, 4u);
  auto r = recover_all(env, dir_);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->recs, appended);

  std::string out;
  EXPECT_EQ(verify_command(env, node_, out), kVerifyClean) << out;
  EXPECT_NE(out.find("shard-000: " + std::to_string(segments) + " segments, " + std::to_string(appended.size()) +
                     " records"), std::string::npos) << out;
  EXPECT_NE(out.find(", OK"), std::string::npos) << out;
}

}  // namespace
}  // namespace tally::wal::test
