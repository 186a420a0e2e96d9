// What the GPU tests share: a device opened or the test skipped with the runtime's reason, and a
// skip turned into a failure when TALLY_REQUIRE_GPU=1 (on a GPU machine, no GPU is a broken one).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "drivers/device.h"

namespace tally::drivers::testing {

// Exit code of a GPU test binary whose every test skipped and none failed: CTest's SKIP_RETURN_CODE.
inline constexpr int kAllSkippedExitCode = 77;

}  // namespace tally::drivers::testing

// Skips the current test with `why`, or fails it when a GPU is required. A macro because both
// GTEST_SKIP and FAIL return from the test body.
#define TALLY_GPU_SKIP(why)                                                                           \
  do {                                                                                                \
    if (::tally::drivers::gpu_required()) FAIL() << "TALLY_REQUIRE_GPU=1, but: " << (why);             \
    GTEST_SKIP() << (why);                                                                            \
  } while (0)
