// Interpreter for Raft scenario scripts (tests/sim/scenarios/*.txt): each command runs against a
// test Cluster and its output is compared with the expected text checked in below it.
#pragma once

#include <string>
#include <vector>

#include "host/common/status.h"
#include "tests/unit/raft/harness.h"

namespace tally::raft::testing {

// Bound on commands in one script, and on ticks in one tick command.
inline constexpr size_t kScenarioCommandsMax = 10000;
inline constexpr uint64_t kScenarioTicksMax = 10000;

// One block of a script: comment lines before it, the command, and its expected output.
struct ScenarioBlock {
  std::vector<std::string> comments;
  std::string command;
  std::string expected;
  size_t line = 0;
};

Result<std::vector<ScenarioBlock>> parse_scenario(const std::string& text);
std::string render_scenario(const std::vector<ScenarioBlock>& blocks);

// Runs one command and returns its output (errors in the script become "error: ..." lines).
class ScenarioRunner {
 public:
  std::string run(const std::string& command);

 private:
  Cluster cluster_;
};

}  // namespace tally::raft::testing
