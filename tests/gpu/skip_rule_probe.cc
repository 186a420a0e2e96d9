// Two tests whose outcome TALLY_PROBE chooses (skip, pass or fail each), run under the GPU tests'
// main: skip_rule_test.sh checks that the binary's exit code tells "all skipped" from "one failed
// beside one skipped", and that TALLY_REQUIRE_GPU=1 turns a skip into a failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/gpu/gpu_test.h"

namespace {

// TALLY_PROBE is "<first>,<second>", each skip, pass or fail.
std::string outcome(int which) {
  const char* v = std::getenv("TALLY_PROBE");
  const std::string probe = v == nullptr ? "skip,skip" : v;
  const size_t comma = probe.find(',');
  return which == 0 ? probe.substr(0, comma) : probe.substr(comma + 1);
}

void act(const std::string& what) {
  if (what == "skip") TALLY_GPU_SKIP("probe: no device");
  if (what == "fail") FAIL() << "probe: failed";
}

TEST(SkipRuleProbe, First) { act(outcome(0)); }
TEST(SkipRuleProbe, Second) { act(outcome(1)); }

}  // namespace
