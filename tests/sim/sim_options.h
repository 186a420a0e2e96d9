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
  kServeCorruptLog,  // a replica whose log recovery found corrupt starts from what it could read
  kSkipFsync,        // the disk acknowledges writes without their fdatasync
  // A corrupt record of unknown group (a bad header) keeps down only the groups with records after
  // it, as host/wal's recovery does: the damaged record's own group is served without it.
  kBadHeaderSparesItsGroup,
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
  // The shape the seed chose.
  bool leases = false;
  bool check_quorum = true;
  bool pre_vote = true;
  bool async_tally = false;
  bool early_send = false;  // leaders send appends before their own copy is durable
  uint64_t simulated_ms = 0;
  uint64_t client_ops = 0;      // strong-keyspace operations completed or timed out
  uint64_t eventual_ops = 0;    // eventual-keyspace writes
  uint64_t messages = 0;        // messages delivered
  uint64_t committed = 0;       // highest commit index summed over groups
  uint64_t crashes = 0;
  uint64_t hlc_rejected = 0;    // remote stamps refused for excessive skew
  uint64_t lin_steps = 0;       // linearizability search steps
  uint64_t prior_term_commits = 0;  // commits landing on an earlier term's entry (bug only)
  uint64_t pauses = 0;              // process pauses
  uint64_t transfers = 0;           // leadership transfers started
  uint64_t joins = 0;               // fresh replicas added as learners
  uint64_t leaves = 0;              // replicas removed for good
  uint32_t learners_max = 0;        // most learners any group had at once
  uint64_t snapshots_installed = 0; // snapshots a replica installed from its leader
  uint64_t lease_reads = 0;         // reads a leader answered from its lease, without a round
  // Client requests that reached a deposed leader: a node that believes it leads in term T while
  // the group has elected a leader in a later term (the stale-leader window).
  uint64_t stale_leader_requests = 0;
  uint64_t stale_leader_reads_ok = 0;  // of those, reads it answered ok
  uint64_t failed_reads = 0;           // accepted reads that ended failed (leadership lost...)
  uint64_t writes_unknown = 0;         // writes a replica gave up on, or that a snapshot covered
  uint64_t unknowns_resolved = 0;      // client-unknown writes found applied by a state machine
  // The disk: the real write-ahead log over a simulated file system.
  uint64_t disk_faults = 0;          // fsync EIO, short writes and full disks injected
  uint64_t disk_failures = 0;        // log writes, syncs or segment preparations that failed
  uint64_t log_retries = 0;          // failed logs that rewrote what was not known durable and went on
  uint64_t torn_tails = 0;           // recoveries that truncated a torn tail
  uint64_t logs_damaged = 0;         // logs damaged while their node was down (bit flip, lost sector)
  uint64_t replicas_kept_down = 0;   // replicas whose recovery found their log corrupt
  uint64_t conf_change_crashes = 0;  // crashes before the sync of a Ready appending a membership change
  uint64_t segments_deleted = 0;     // log segments released by snapshots and deleted
};

// The one command that replays a run exactly.
std::string replay_command(const SimOptions& options, uint32_t nodes);

}  // namespace tally::sim
