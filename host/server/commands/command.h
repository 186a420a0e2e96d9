// The data commands of one shard: their table (name, arity, flags, key positions) and handlers.
// The server checks arity and routes by key slots; a handler runs on the owning shard and replies once.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "host/proto/reply.h"
#include "host/store/store.h"

namespace tally::server {

struct ExecContext {
  store::Store& store;
  proto::ReplyWriter& out;  // RESP2 or RESP3 per out.resp()
  uint64_t now_ms;          // wall clock, for TTLs
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
};

const CommandSpec* find_data_command(std::string_view name);  // case-insensitive, fast (no allocation)
std::span<const CommandSpec> data_commands();

}  // namespace tally::server
