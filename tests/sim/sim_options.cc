#include "tests/sim/sim_options.h"

#include "host/common/assert.h"

namespace tally::sim {

const char* planted_bug_name(PlantedBug b) {
  switch (b) {
    case PlantedBug::kNone: return "none";
    case PlantedBug::kCountPriorTermReplicas: return "count_prior_term_replicas";
    case PlantedBug::kVoteWithoutPersist: return "vote_without_persist";
    case PlantedBug::kApplyBeforeCommit: return "apply_before_commit";
    case PlantedBug::kAcceptMismatchedPrevTerm: return "accept_mismatched_prev_term";
    case PlantedBug::kLwwIgnoreNodeId: return "lww_ignore_node_id";
    case PlantedBug::kServeCorruptLog: return "serve_corrupt_log";
    case PlantedBug::kSkipFsync: return "skip_fsync";
    case PlantedBug::kBadHeaderSparesItsGroup: return "bad_header_spares_its_group";
  }
  TALLY_UNREACHABLE();
}

std::optional<PlantedBug> parse_planted_bug(const std::string& name) {
  for (PlantedBug b : {PlantedBug::kNone, PlantedBug::kCountPriorTermReplicas, PlantedBug::kVoteWithoutPersist,
                       PlantedBug::kApplyBeforeCommit, PlantedBug::kAcceptMismatchedPrevTerm,
                       PlantedBug::kLwwIgnoreNodeId, PlantedBug::kServeCorruptLog, PlantedBug::kSkipFsync,
                       PlantedBug::kBadHeaderSparesItsGroup}) {
    if (name == planted_bug_name(b)) return b;
  }
  return std::nullopt;
}

std::string replay_command(const SimOptions& options, uint32_t nodes) {
  std::string cmd = "tally-sim --seed " + std::to_string(options.seed);
  if (options.nodes != 0) cmd += " --nodes " + std::to_string(nodes);
  if (options.bug != PlantedBug::kNone) cmd += std::string(" --bug ") + planted_bug_name(options.bug);
  return cmd;
}

}  // namespace tally::sim
