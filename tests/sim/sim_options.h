// Options of one simulation run (all derived from the seed except what the command line pins),
// and the report a run returns to tally-sim's main.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tally::sim {

// Planted bugs the simulator can switch on to prove its checkers fail.
enum class PlantedBug : uint8_t {
  kNone,
  kCountPriorTermReplicas,
  kVoteWithoutPersist,
  kApplyBeforeCommit,
  kAcceptMismatchedPrevTerm,
  kLwwIgnoreNodeId,
};

const char* planted_bug_name(PlantedBug b);
std::optional<PlantedBug> parse_planted_bug(const std::string& name);

struct SimOptions {
  uint64_t seed = 1;
  uint32_t nodes = 0;  // 0: chosen from the seed among 3, 5, 7
  PlantedBug bug = PlantedBug::kNone;
  bool record_history = false;  // keep the client history for --history
};

struct SimReport {
  bool violation = false;
  std::string kind;    // checker that failed
  std::string detail;  // what it saw
  uint32_t nodes = 0;
  uint32_t groups = 0;
  uint64_t simulated_ms = 0;
  uint64_t client_ops = 0;      // strong-keyspace operations completed or timed out
  uint64_t eventual_ops = 0;    // eventual-keyspace writes
  uint64_t messages = 0;        // messages delivered
  uint64_t committed = 0;       // highest commit index summed over groups
  uint64_t crashes = 0;
  uint64_t hlc_rejected = 0;    // remote stamps refused for excessive skew
  uint64_t lin_steps = 0;       // linearizability search steps
  uint64_t prior_term_commits = 0;  // commits landing on an earlier term's entry (bug only)
};

// The one command that replays a run exactly.
std::string replay_command(const SimOptions& options, uint32_t nodes);

}  // namespace tally::sim
