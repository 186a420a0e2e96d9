// The engine tallyd runs: backend list parsing, absent backends left out, and partition batches that
// agree with the inline slot function for every key, across batch boundaries.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/offload/engine.h"
#include "kernels/cpu/slot.h"

namespace tally::offload {
namespace {

TEST(Engine, BackendListAlwaysStartsWithTheCpuAndRefusesUnknownNames) {
  auto one = parse_backend_list("cuda");
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(one.value(), (std::vector<std::string>{"cpu", "cuda"}));
  auto all = parse_backend_list(" auto ");
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all.value(), (std::vector<std::string>{"cpu", "cuda", "fpga_sim"}));
  auto dup = parse_backend_list("cpu, cpu,,fpga_sim");
  ASSERT_TRUE(dup.is_ok());
  EXPECT_EQ(dup.value(), (std::vector<std::string>{"cpu", "fpga_sim"}));
  auto bad = parse_backend_list("cpu,gpu");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'gpu'"), std::string::npos);
}

TEST(Engine, PartitionMatchesTheSlotFunctionAcrossBatches) {
  std::vector<uint32_t> map(kernels::kSlotCount);
  for (uint32_t s = 0; s < kernels::kSlotCount; ++s) map[s] = s % 3;
  EngineOptions o;
  o.slot_to_partition = map.data();
  auto engine = Engine::open(o, SystemClock::instance());
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  Engine& e = *engine.value();
  EXPECT_EQ(e.backends(), "cpu");
  // More keys than one batch holds, hash tags, empty keys, and long keys that fill the blob early.
  std::vector<std::string> owned;
  for (int i = 0; i < 10'000; ++i) {
    switch (i % 5) {
      case 0: owned.push_back("key:" + std::to_string(i)); break;
      case 1: owned.push_back("{user" + std::to_string(i % 17) + "}:cart:" + std::to_string(i)); break;
      case 2: owned.push_back(""); break;
      case 3: owned.push_back("{}" + std::to_string(i)); break;
      default: owned.push_back(std::string(900 + i % 100, static_cast<char>('a' + i % 26))); break;
    }
  }
  std::vector<std::string_view> keys(owned.begin(), owned.end());
  std::vector<uint16_t> slots;
  std::vector<uint32_t> parts;
  ASSERT_TRUE(e.partition(keys, slots, parts).is_ok());
  ASSERT_EQ(slots.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(slots[i], kernels::key_slot(keys[i])) << i;
    ASSERT_EQ(parts[i], kernels::key_slot(keys[i]) % 3) << i;
  }
  const OpBackendCounters& c = e.scheduler().counters(Op::kPartition, Backend::kCpu);
  EXPECT_EQ(c.items.load(), keys.size());
  EXPECT_GE(c.batches.load(), 3u);  // 10,000 keys and ~2 MB of key bytes: several bounded batches

  // A key over 64 KiB is refused, not truncated.
  const std::string huge(70'000, 'k');
  std::vector<std::string_view> with_huge = {"a", huge};
  EXPECT_EQ(e.partition(with_huge, slots, parts).code(), Code::kInvalidArgument);
  // No keys: nothing to do.
  EXPECT_TRUE(e.partition({}, slots, parts).is_ok());
  EXPECT_TRUE(slots.empty());
}

TEST(Engine, NamedBackendsThisBuildLacksAreLeftOutNotFatal) {
  EngineOptions o;
  o.backends = {"cpu", "cuda", "fpga_sim"};
  auto engine = Engine::open(o, SystemClock::instance());
  ASSERT_TRUE(engine.is_ok()) << engine.status().to_string();
  const Engine& e = *engine.value();
  // Whatever this machine has, the cpu is first; every named backend is either used or explained.
  EXPECT_EQ(e.backends().rfind("cpu", 0), 0u);
  for (const char* name : {"cuda", "fpga_sim"}) {
    const bool used = e.backends().find(name) != std::string::npos;
    const bool explained = e.absent().find(name) != std::string::npos;
    EXPECT_NE(used, explained) << name << ": backends=" << e.backends() << " absent=" << e.absent();
  }
}

TEST(Engine, MalformedCalibrationFileIsAnError) {
  const std::string path = ::testing::TempDir() + "engine_bad_calibration.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("[checksum.cpu]\nlaunch_ns = 'soon'\n", f);
  std::fclose(f);
  EngineOptions o;
  o.calibration_path = path;
  EXPECT_FALSE(Engine::open(o, SystemClock::instance()).is_ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace tally::offload
