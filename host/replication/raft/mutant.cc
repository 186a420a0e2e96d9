// Names of the protocol mutants, and the runtime selection used by the mutation-test binary.
#include "host/replication/raft/mutant.h"

namespace tally::raft {

#if defined(TALLY_MUTANT_RUNTIME)
namespace mutant_detail {
Mutant g_selected = Mutant::none;
}
#endif

const char* mutant_name(Mutant m) {
  switch (m) {
    case Mutant::none: return "none";
#define TALLY_RAFT_MUTANT_NAME(name) \
  case Mutant::name: return #name;
    TALLY_RAFT_MUTANTS(TALLY_RAFT_MUTANT_NAME)
#undef TALLY_RAFT_MUTANT_NAME
  }
  return "?";
}

std::optional<Mutant> parse_mutant(std::string_view name) {
  if (name == "none") return Mutant::none;
#define TALLY_RAFT_MUTANT_PARSE(n) \
  if (name == #n) return Mutant::n;
  TALLY_RAFT_MUTANTS(TALLY_RAFT_MUTANT_PARSE)
#undef TALLY_RAFT_MUTANT_PARSE
  return std::nullopt;
}

Mutant active_mutant() {
#if defined(TALLY_MUTANT_RUNTIME)
  return mutant_detail::g_selected;
#elif defined(TALLY_MUTANT_NAME)
  return Mutant::TALLY_MUTANT_NAME;
#else
  return Mutant::none;
#endif
}

bool select_mutant(Mutant m) {
#if defined(TALLY_MUTANT_RUNTIME)
  mutant_detail::g_selected = m;
  return true;
#else
  return m == active_mutant();
#endif
}

}  // namespace tally::raft
