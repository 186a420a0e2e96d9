// The data commands: their table (name, arity, flags, key positions, how they split) and handlers.
// The server checks arity and routes by key slots; a handler runs on the partition owning its keys and
// builds one reply value (never wire bytes: sessions encode it as RESP2, RESP3 or memcached).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "host/proto/reply_value.h"
#include "host/store/store.h"

namespace tally::server {

struct ExecContext {
  store::Store& store;  // the partition's store
  proto::Reply& out;    // the reply value; the session picks the encoding
  uint64_t now_ms;      // wall clock, for TTLs (a logged write's own time when it is applied)
};

enum CommandFlag : uint32_t {
  kCmdWrite = 1,
  kCmdReadOnly = 2,
  kCmdFast = 4,
  kCmdDenyOom = 8,
  kCmdAdmin = 16,
  kCmdNoAuth = 32,
  kCmdLoading = 64,
  kCmdStale = 128,
  // Not a Redis command: a form the memcached session translates its requests into. Hidden from RESP
  // clients (unknown command) and from COMMAND.
  kCmdInternal = 256,
  // MULTI, EXEC, DISCARD, WATCH, UNWATCH: the session's transaction state handles them.
  kCmdTransaction = 512,
  // Allowed on a RESP2 connection in subscribed mode.
  kCmdPubSubContext = 1024,
  // XREAD, XREADGROUP: with a BLOCK option (outside MULTI) the session waits for an answer.
  kCmdBlockOption = 2048,
};

// How a command whose keys lie in several partitions splits into one part per partition, or how a
// keyless command covers the keyspace, and how the parts' replies merge. Anything else whose keys
// span partitions answers CROSSSLOT, as Redis Cluster does.
enum class Split : uint8_t {
  kNone,
  kKeysArray,   // MGET: each part answers an array, one element per key; merged in request order
  kKeysSum,     // DEL, UNLINK, EXISTS, TOUCH: integers summed
  kKeysOk,      // MSET: OK unless a part failed
  kAllSum,      // DBSIZE: integers summed over every partition
  kAllConcat,   // KEYS: arrays concatenated
  kAllOk,       // FLUSHDB, FLUSHALL: OK unless a part failed
  kAllScan,     // SCAN: the cursor names the partition; a step walks on from it
  kAllRandom,   // RANDOMKEY: the first key found from a random partition on
};

using CommandHandler = void (*)(ExecContext&, std::span<const std::string_view> argv);  // argv[0] is the name

struct CommandSpec {
  const char* name;  // lower case
  int arity;         // Redis convention: N exact, -N at least N
  uint32_t flags;
  int first_key, last_key, key_step;  // Redis convention (last_key -1 = last argument); 0,0,0 = no keys
  CommandHandler handler;
  const char* group;    // "string", "keyspace", "set", "hash"
  const char* summary;  // one line, for COMMAND DOCS
  Split split = Split::kNone;
  // Commands whose keys follow a count (SINTERCARD numkeys key...): the count's position, else 0.
  int numkeys_at = 0;
  // XREAD, XREADGROUP: the keys are the first half of what follows the word STREAMS, looked for from
  // this position on (else 0).
  int streams_from = 0;
  // SORT: besides its first key, a destination after STORE (options' arguments skipped).
  bool sort_store = false;
};

const CommandSpec* find_data_command(std::string_view name);  // case-insensitive, fast (no allocation)
std::span<const CommandSpec> data_commands();

}  // namespace tally::server
