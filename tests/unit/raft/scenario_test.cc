// Runs every Raft scenario script in TALLY_RAFT_SCENARIO_DIR and compares each command's output
// with the expected text in the file. `raft_scenarios --rewrite` regenerates the expected text.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/raft/scenario.h"

namespace tally::raft::testing {
namespace {

bool g_rewrite = false;

std::vector<std::string> scenario_files() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(TALLY_RAFT_SCENARIO_DIR)) {
    if (e.path().extension() == ".txt") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Scenario : public ::testing::TestWithParam<std::string> {};

TEST_P(Scenario, MatchesExpectedOutput) {
  const std::string path = std::string(TALLY_RAFT_SCENARIO_DIR) + "/" + GetParam();
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  auto blocks = parse_scenario(text.str());
  ASSERT_TRUE(blocks.is_ok()) << path << ": " << blocks.status().to_string();
  ASSERT_FALSE(blocks->empty()) << path << " has no commands";
  ScenarioRunner runner;
  for (ScenarioBlock& b : blocks.value()) {
    const std::string got = runner.run(b.command);
    if (g_rewrite) {
      b.expected = got;
    } else {
      EXPECT_EQ(b.expected, got) << path << ":" << b.line << ": " << b.command;
    }
  }
  if (g_rewrite) {
    std::ofstream o(path);
    o << render_scenario(blocks.value());
  }
}

INSTANTIATE_TEST_SUITE_P(Files, Scenario, ::testing::ValuesIn(scenario_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(0, info.param.size() - 4);
                           std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
                           return name;
                         });

TEST(ScenarioParser, RejectsACommandWithoutSeparator) {
  EXPECT_FALSE(parse_scenario("campaign 1\nstatus 1\n----\n").is_ok());
  auto ok = parse_scenario("# c\ncampaign 1\n----\n\nstatus 1\n----\nx\ny\n");
  ASSERT_TRUE(ok.is_ok());
  ASSERT_EQ(ok->size(), 2u);
  EXPECT_EQ((*ok)[1].expected, "x\ny\n");
  EXPECT_EQ((*ok)[0].comments.size(), 1u);
}

}  // namespace
}  // namespace tally::raft::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rewrite") == 0) tally::raft::testing::g_rewrite = true;
  }
  return RUN_ALL_TESTS();
}
