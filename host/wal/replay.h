// The replay rule of docs/wal-format.md ("Records") over the records recovery hands out in log order:
// per group, its entries by index and its latest hard state. Tests and tools use it; tallyd's shell
// feeds its Raft storage by the same rule.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "host/common/status.h"
#include "host/wal/record.h"

namespace tally::wal {

struct ReplayEntry {
  uint64_t term = 0;
  uint8_t entry_type = 0;
  std::string data;
  bool operator==(const ReplayEntry&) const = default;
};

struct ReplayHardState {
  uint64_t term = 0;
  uint64_t commit = 0;
  uint64_t vote = 0;
  bool operator==(const ReplayHardState&) const = default;
};

struct ReplayGroup {
  std::map<uint64_t, ReplayEntry> entries;
  std::optional<ReplayHardState> hard_state;
  bool operator==(const ReplayGroup&) const = default;
};

class Replay {
 public:
  // An entry at index i drops the group's entries from i on (they came earlier in the log) and takes
  // i; a hard state replaces the group's. A record appearing twice (the copy a retry rewrote) thus
  // counts once. Fails only on a hard state whose payload is not a vote.
  Status add(const RecordHeader& h, std::string_view payload);
  const std::map<uint32_t, ReplayGroup>& groups() const { return groups_; }
  bool operator==(const Replay&) const = default;

 private:
  std::map<uint32_t, ReplayGroup> groups_;
};

}  // namespace tally::wal
