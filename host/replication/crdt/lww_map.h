// Last-writer-wins map: one LwwRegister per field, deletes kept as tombstone registers.
// Used for hashes in eventual keyspaces; merge is the per-field register merge.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "host/common/status.h"
#include "host/replication/crdt/lww_register.h"

namespace tally::crdt {

struct LwwMap {
  static constexpr size_t kLwwMapFieldsMax = 1 << 20;

  std::map<std::string, LwwRegister> fields;

  bool operator==(const LwwMap&) const = default;

  std::optional<std::string> get(const std::string& field) const;
  size_t live_size() const;

  // Local set (value) or delete (nullopt); version must exceed the field's current version.
  // Returns the one-field delta.
  Result<LwwMap> assign(const std::string& field, std::optional<std::string> value, Version version);
};

LwwMap merge(const LwwMap& local, const LwwMap& incoming, const CrdtBugs& bugs = {});

}  // namespace tally::crdt
