// main() of the GPU test binaries. CTest's SKIP_REGULAR_EXPRESSION on "[  SKIPPED ]" would report a
// binary skipped when one test skipped beside one that failed; this main instead exits 77 (the
// tests' SKIP_RETURN_CODE) only when every test that ran skipped, and otherwise gtest's own code.
#include <gtest/gtest.h>

#include "tests/gpu/gpu_test.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  const ::testing::UnitTest& u = *::testing::UnitTest::GetInstance();
  if (rc == 0 && u.test_to_run_count() > 0 && u.failed_test_count() == 0 &&
      u.skipped_test_count() == u.test_to_run_count()) {
    return tally::drivers::testing::kAllSkippedExitCode;
  }
  return rc;
}
