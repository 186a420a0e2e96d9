// The durable-state check at every crash: what a replica's log reads back after the power loss must be
// what the replica had acknowledged as durable (its group's storage: what the log reported written and
// synced) followed by a prefix of the records it was still writing (its Ready in flight). Nothing
// acknowledged may be lost — a lost vote or entry breaks Raft's promises to its peers — and nothing
// never written may appear.
#pragma once

#include <string>
#include <vector>

#include "host/replication/group/start.h"
#include "host/replication/raft/raft.h"
#include "host/replication/raft/storage.h"

namespace tally::sim {

// A group's log as far as the check compares it: where its snapshot ends, its entries' terms after
// that, its hard state.
struct LogImage {
  raft::Index base = 0;
  raft::Term base_term = 0;
  std::vector<raft::Term> terms;  // of entries base+1, base+2, ...
  raft::HardState hard_state;

  raft::Index last() const { return base + terms.size(); }
};

// One record of a Ready, in the order the group log writes them: a snapshot install's marker, the
// entries, the hard state.
struct PendingRecord {
  enum class Kind : uint8_t { kSnapshot, kEntry, kHardState };
  Kind kind = Kind::kEntry;
  raft::Index index = 0;
  raft::Term term = 0;
  raft::HardState hard_state;
};

struct AckedLog {
  LogImage image;
  std::vector<PendingRecord> in_flight;
};

AckedLog capture_acked(const raft::MemoryStorage& storage, const raft::Ready* in_flight);
LogImage image_of(const group::GroupStart& recovered);
// Empty when `recovered` is the acknowledged log plus a prefix of the records in flight; otherwise
// what differs.
std::string check_recovered(const AckedLog& acked, const LogImage& recovered);

}  // namespace tally::sim
