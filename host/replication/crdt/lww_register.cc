#include "host/replication/crdt/lww_register.h"

#include "host/common/assert.h"

namespace tally::crdt {

LwwRegister LwwRegister::assign(std::optional<std::string> new_value, Version new_version) {
  TALLY_ASSERT(new_version.node_id != 0);
  TALLY_ASSERT(new_version > version);
  value = std::move(new_value);
  version = new_version;
  return *this;
}

LwwRegister merge(const LwwRegister& local, const LwwRegister& incoming, const CrdtBugs& bugs) {
  if (bugs.lww_ignore_node_id) {
    return incoming.version.hlc >= local.version.hlc ? incoming : local;
  }
  // One node never issues the same stamp twice, so equal versions carry equal values.
  TALLY_ASSERT(local.version != incoming.version || local.value == incoming.value);
  const LwwRegister& winner = incoming.version > local.version ? incoming : local;
  TALLY_ASSERT(winner.version >= local.version && winner.version >= incoming.version);
  return winner;
}

}  // namespace tally::crdt
