// TALLY_ASSERT: invariant checks that stay on in release builds.
// A failed assertion is a programmer error: it prints where and aborts.
#pragma once

namespace tally {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);
}  // namespace tally

#define TALLY_ASSERT(cond)                                               \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                  \
      ::tally::assert_fail(#cond, __FILE__, __LINE__, nullptr);          \
    }                                                                    \
  } while (0)

#define TALLY_ASSERT_MSG(cond, msg)                                      \
  do {                                                                   \
    if (__builtin_expect(!(cond), 0)) {                                  \
      ::tally::assert_fail(#cond, __FILE__, __LINE__, (msg));            \
    }                                                                    \
  } while (0)

#define TALLY_UNREACHABLE() ::tally::assert_fail("unreachable", __FILE__, __LINE__, nullptr)
