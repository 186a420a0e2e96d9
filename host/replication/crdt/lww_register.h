// Last-writer-wins register: holds the value of the greatest Version (HLC, then node id).
// Used for strings in eventual keyspaces and as the field type of LwwMap.
#pragma once

#include <optional>
#include <string>

#include "host/replication/crdt/version.h"

namespace tally::crdt {

struct LwwRegister {
  // nullopt with a non-zero version is a delete (a tombstone that still orders later writes).
  std::optional<std::string> value;
  Version version;

  bool operator==(const LwwRegister&) const = default;

  // Local write: version must be greater than the current one (the caller's HLC ensures it).
  // Updates this register and returns the delta to ship to peers.
  LwwRegister assign(std::optional<std::string> new_value, Version new_version);
};

// Join of two register states (or a state and a delta). Pure; `incoming` is the one that
// arrived last, which only matters under the lww_ignore_node_id bug.
LwwRegister merge(const LwwRegister& local, const LwwRegister& incoming, const CrdtBugs& bugs = {});

}  // namespace tally::crdt
