#include "tests/sim/durable_check.h"

#include <algorithm>

namespace tally::sim {

namespace {

// The replay rule (group::add_record) on the image.
void apply(LogImage& log, const PendingRecord& r) {
  switch (r.kind) {
    case PendingRecord::Kind::kSnapshot:
      log.base = r.index;
      log.base_term = r.term;
      log.terms.clear();
      break;
    case PendingRecord::Kind::kEntry:
      if (r.index <= log.base) {
        log.terms.clear();
        break;
      }
      log.terms.resize(r.index - log.base - 1, 0);
      log.terms.push_back(r.term);
      break;
    case PendingRecord::Kind::kHardState: log.hard_state = r.hard_state; break;
  }
}

std::string text(const raft::HardState& hs) {
  return "term " + std::to_string(hs.term) + " vote " + std::to_string(hs.vote) + " commit " +
         std::to_string(hs.commit);
}

std::string text(const LogImage& log) {
  std::string out = "snapshot " + std::to_string(log.base) + ", entries to " + std::to_string(log.last()) + ", " +
                    text(log.hard_state);
  return out;
}

// Where `expected` and `recovered` differ, or empty. Entries are compared above the recovered
// snapshot (below it the state machine's image stands for them); the hard state as recovery
// completes it (commit and term at least the snapshot's).
std::string differ(const LogImage& expected, const LogImage& recovered) {
  raft::HardState hs = expected.hard_state;
  hs.commit = std::max(hs.commit, recovered.base);
  hs.term = std::max(hs.term, recovered.base_term);
  if (!(hs == recovered.hard_state)) {
    return "hard state " + text(recovered.hard_state) + " instead of " + text(hs);
  }
  if (recovered.last() != std::max(expected.last(), recovered.base)) {
    return "log ends at " + std::to_string(recovered.last()) + " instead of " + std::to_string(expected.last());
  }
  for (raft::Index i = std::max(recovered.base, expected.base) + 1; i <= recovered.last(); ++i) {
    const raft::Term want = expected.terms[i - expected.base - 1];
    const raft::Term got = recovered.terms[i - recovered.base - 1];
    if (want != got) {
      return "entry " + std::to_string(i) + " has term " + std::to_string(got) + " instead of " + std::to_string(want);
    }
  }
  return {};
}

}  // namespace

AckedLog capture_acked(const raft::MemoryStorage& storage, const raft::Ready* in_flight) {
  AckedLog a;
  a.image.base = storage.first_index() - 1;
  Result<raft::Term> base_term = storage.term(a.image.base);
  a.image.base_term = base_term.is_ok() ? *base_term : 0;
  for (raft::Index i = storage.first_index(); i <= storage.last_index(); ++i) {
    Result<raft::Term> t = storage.term(i);
    TALLY_ASSERT(t.is_ok());
    a.image.terms.push_back(*t);
  }
  a.image.hard_state = storage.initial_state().hard_state;
  if (in_flight == nullptr) return a;
  if (in_flight->snapshot) {
    a.in_flight.push_back(PendingRecord{PendingRecord::Kind::kSnapshot, in_flight->snapshot->metadata.index,
                                        in_flight->snapshot->metadata.term, {}});
  }
  for (const raft::Entry& e : in_flight->entries) {
    a.in_flight.push_back(PendingRecord{PendingRecord::Kind::kEntry, e.index, e.term, {}});
  }
  if (in_flight->hard_state) {
    a.in_flight.push_back(PendingRecord{PendingRecord::Kind::kHardState, 0, 0, *in_flight->hard_state});
  }
  return a;
}

LogImage image_of(const group::GroupStart& recovered) {
  LogImage log;
  log.base = recovered.snapshot_index;
  log.base_term = recovered.snapshot_term;
  for (const raft::Entry& e : recovered.entries) log.terms.push_back(e.term);
  log.hard_state = recovered.hard_state;
  return log;
}

std::string check_recovered(const AckedLog& acked, const LogImage& recovered) {
  LogImage expected = acked.image;
  std::string first = differ(expected, recovered);
  if (first.empty()) return {};
  for (const PendingRecord& r : acked.in_flight) {
    apply(expected, r);
    if (differ(expected, recovered).empty()) return {};
  }
  return "recovered " + text(recovered) + " but it had acknowledged " + text(acked.image) + " with " +
         std::to_string(acked.in_flight.size()) + " records in flight: " + first;
}

}  // namespace tally::sim
