// The full command table of tallyd: the data commands of host/server/commands plus the server's own
// (connection, introspection, administration). One index per command feeds the per-command metrics.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "host/server/commands/command.h"

namespace tally::server {

class Session;

using SessionHandler = void (*)(Session&, std::span<const std::string_view> argv);

struct CommandEntry {
  std::string_view name;  // lower case
  int arity = 0;
  uint32_t flags = 0;
  int first_key = 0, last_key = 0, key_step = 0;
  const char* group = "";
  const char* summary = "";
  const CommandSpec* data = nullptr;    // set for data commands: run on the shard owning the keys
  SessionHandler session = nullptr;     // set for server commands: run on the connection's thread
  uint32_t index = 0;
  Split split = Split::kNone;  // data commands: how keys on several partitions split
  int numkeys_at = 0;          // data commands: position of a key count (keys follow it)
  int streams_from = 0;        // data commands: keys follow STREAMS, searched from here (XREAD)
  bool sort_store = false;     // data commands: SORT's STORE destination is a key too
  // Keys found by parsing the arguments, not at fixed places (COMMAND's movablekeys).
  bool movable_keys() const { return numkeys_at > 0 || streams_from > 0 || sort_store; }
  bool has_keys() const { return first_key > 0 || movable_keys(); }
};

class CommandTable {
 public:
  static const CommandTable& instance();

  // Case-insensitive, no allocation; nullptr when unknown. Internal entries (kCmdInternal, the forms
  // memcached requests become) are found too: sessions serving clients refuse them.
  const CommandEntry* find(std::string_view name) const;
  std::span<const CommandEntry> all() const { return entries_; }
  size_t size() const { return entries_.size(); }

  // The key positions of argv under the entry's key spec (empty when it has none). Commands whose
  // keys follow a count (numkeys_at: SINTERCARD numkeys key...) take them from that count.
  static void key_positions(const CommandEntry& e, std::span<const std::string_view> argv,
                            std::vector<size_t>& out);
  // Arity as Redis defines it: exact N, or at least -N.
  static bool arity_ok(const CommandEntry& e, size_t argc) {
    return e.arity >= 0 ? argc == static_cast<size_t>(e.arity) : argc >= static_cast<size_t>(-e.arity);
  }

 private:
  CommandTable();
  std::vector<CommandEntry> entries_;
  std::vector<uint32_t> buckets_;  // open addressing over entries_, by hashed lower-case name
};

}  // namespace tally::server
