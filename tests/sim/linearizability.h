// Linearizability checker for per-key register histories: Wing–Gong–Lowe search with
// memoisation of (linearized set, state), one key at a time, bounded by a step budget.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "tests/sim/history.h"

namespace tally::sim {

enum class Verdict : uint8_t {
  kLinearizable,
  kNotLinearizable,
  kTooBig,  // the step or memo budget ran out: neither proven nor refuted
};

const char* verdict_name(Verdict v);

struct CheckOptions {
  uint64_t steps_max = 2'000'000;      // search steps per key
  uint64_t memo_entries_max = 1 << 20;  // remembered (set, state) pairs per key
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  std::string key;     // the first key that is not linearizable (or too big)
  std::string detail;  // human-readable reason
  uint64_t steps = 0;  // total search steps over all keys
  uint64_t keys = 0;
  uint64_t ops = 0;    // operations checked (fail outcomes and unknown reads dropped)
};

// Checks one key's operations (all must share the key).
CheckResult check_key(std::span<const Operation> ops, const CheckOptions& options = {});
// Splits by key (registers compose: a history is linearizable iff every key's is) and checks
// each; stops at the first key that is not linearizable.
CheckResult check_history(std::span<const Operation> ops, const CheckOptions& options = {});

}  // namespace tally::sim
