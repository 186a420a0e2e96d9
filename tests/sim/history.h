// Client histories of a key-value workload (read, write, compare-and-set, increment) with call
// and return times, as recorded by the simulator and read by the linearizability checker.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"

namespace tally::sim {

enum class OpKind : uint8_t { kRead, kWrite, kCas, kIncr };
// kFail: definitely had no effect. kUnknown: timed out, may take effect any time after its call.
enum class Outcome : uint8_t { kOk, kFail, kUnknown };

const char* op_kind_name(OpKind k);
const char* outcome_name(Outcome o);

// Register semantics (docs/history-format.md): every key starts absent (nullopt); incr treats
// absent as 0 and returns the new value; cas(expect, arg) swaps when the value equals expect
// (nullopt expects absence) and returns 1 if it swapped, 0 if not; write returns nothing.
struct Operation {
  uint32_t client = 0;
  std::string key;
  OpKind op = OpKind::kRead;
  std::optional<int64_t> arg;
  std::optional<int64_t> expect;
  std::optional<int64_t> result;
  uint64_t call_ns = 0;
  uint64_t return_ns = 0;  // ignored for kUnknown
  Outcome outcome = Outcome::kOk;

  bool operator==(const Operation&) const = default;
};

// One operation per line, fields in a fixed order; see docs/history-format.md.
std::string to_json_line(const Operation& op);
Result<Operation> parse_json_line(std::string_view line);

// Bounded so a corrupt or hostile file cannot exhaust memory.
inline constexpr size_t kHistoryOpsMax = 10'000'000;
inline constexpr size_t kHistoryLineBytesMax = 4096;

Status write_history(const std::string& path, const std::vector<Operation>& ops);
Result<std::vector<Operation>> read_history(const std::string& path);

}  // namespace tally::sim
