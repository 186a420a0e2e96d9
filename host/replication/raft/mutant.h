// Mutation testing: TALLY_MUTANT(name) marks a spot where `make mutants` (tests/mutants/) breaks
// the protocol on purpose, to prove the simulator's checkers notice. Production builds define no
// mutant: every TALLY_MUTANT(name) is the constant false and the broken branch is dead code.
//   -DTALLY_MUTANT_NAME=name  one mutant compiled in as a constant (tests/mutants/run.sh)
//   -DTALLY_MUTANT_RUNTIME    any mutant, chosen once at start-up with select_mutant() (the
//                             tally-sim-mutants binary the CTest `mutants` label runs)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tally::raft {

// The catalogue; tests/mutants/catalogue.txt describes each and bounds its seeds-to-catch.
#define TALLY_RAFT_MUTANTS(X)  \
  X(commit_past_vouched)       \
  X(heartbeat_commit_uncapped) \
  X(read_without_round)        \
  X(read_before_term_commit)   \
  X(reads_never_released)      \
  X(learners_in_quorum)        \
  X(snapshot_ack_beyond)       \
  X(concurrent_conf_changes)   \
  X(lease_stickiness_in_ticks) \
  X(restart_votes_at_once)     \
  X(transfer_keeps_lease)      \
  X(stale_tally_result)        \
  X(vote_without_log_check)    \
  X(no_truncate_on_conflict)   \
  X(stale_append_truncates)    \
  X(count_unpersisted_self)

enum class Mutant : uint8_t {
  none,
#define TALLY_RAFT_MUTANT_ENUM(name) name,
  TALLY_RAFT_MUTANTS(TALLY_RAFT_MUTANT_ENUM)
#undef TALLY_RAFT_MUTANT_ENUM
};

const char* mutant_name(Mutant m);
std::optional<Mutant> parse_mutant(std::string_view name);
// The mutant this build runs: the compiled-in one, the one selected at start-up, or none.
Mutant active_mutant();
// Runtime builds only: chooses the mutant before any RawNode exists. False elsewhere (or for an
// unknown name), so a production binary can never be switched into a mutant.
bool select_mutant(Mutant m);

#if defined(TALLY_MUTANT_RUNTIME)
namespace mutant_detail {
extern Mutant g_selected;
}
#define TALLY_MUTANT(name) (::tally::raft::mutant_detail::g_selected == ::tally::raft::Mutant::name)
#elif defined(TALLY_MUTANT_NAME)
#define TALLY_MUTANT(name) (::tally::raft::Mutant::name == ::tally::raft::Mutant::TALLY_MUTANT_NAME)
#else
// The name is still checked against the catalogue, so a typo fails to compile everywhere.
#define TALLY_MUTANT(name) (static_cast<void>(::tally::raft::Mutant::name), false)
#endif

}  // namespace tally::raft
