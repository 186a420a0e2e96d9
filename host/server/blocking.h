// Blocking list and sorted-set commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX,
// BZMPOP). A blocking command is its non-blocking form (LMPOP, LMOVE, RPOPLPUSH, ZMPOP) run again until
// it finds something or its timeout passes. The session runs that probe through the command engine
// like any command (so routing, MOVED, CROSSSLOT, the log and replication apply unchanged); while the
// probe finds nothing, the session waits on a registration at the shard holding the keys, which a
// write to any of them wakes. Registering comes before each probe, so a write that lands between a
// probe and the wait is never missed (at worst the probe runs once more for nothing).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "host/store/containers.h"

namespace tally::server {

struct Shard;
struct CommandEntry;
class Session;

struct BlockWaiter {
  Shard* home = nullptr;  // the waiting session's shard
  uint64_t conn_id = 0;
  uint64_t token = 0;     // the session's registration (a later probe registers anew)
};

// On the shard holding the keys: who waits for which key. Touched by that shard's thread only.
class BlockingRegistry {
 public:
  bool empty() const { return by_key_.empty(); }
  size_t keys() const { return by_key_.size(); }
  void add(std::string_view key, const BlockWaiter& w);
  void remove(std::string_view key, uint64_t token);
  // A write touched `key`: its waiters are told (posted to their shards) and forgotten.
  void written(std::string_view key);
  // Every waiter is told (a partition leaves this shard: its waiters must register where it goes).
  void wake_all();

 private:
  static void wake(const std::vector<BlockWaiter>& waiters);
  std::unordered_map<std::string, std::vector<BlockWaiter>, store::StringHash, std::equal_to<>> by_key_;
};

// A blocking command in progress, held by its session.
struct BlockingCall {
  enum class Shape : uint8_t {
    kKeyValue,        // BLPOP/BRPOP: LMPOP's [key, [value]] becomes [key, value]
    kKeyMemberScore,  // BZPOPMIN/BZPOPMAX: ZMPOP's [key, [[member, score]]] becomes [key, member, score]
    kAsIs,            // BLMOVE, BRPOPLPUSH, BLMPOP, BZMPOP: the probe's reply
  };
  const CommandEntry* probe = nullptr;  // the non-blocking form
  std::vector<std::string> args;        // its arguments
  // XREAD BLOCK with "$": before the first probe, this command (x.lastids) finds the streams' last
  // ids, which replace args[resolve_into[i]] where that was "$". nullptr once done (or not needed).
  const CommandEntry* resolve = nullptr;
  std::vector<std::string> resolve_args;
  std::vector<size_t> resolve_into;
  std::vector<std::string> keys;        // the keys a write to which may end the wait
  Shape shape = Shape::kAsIs;
  bool timeout_is_null_array = true;    // what a timeout answers (BLMOVE, BRPOPLPUSH: a null string)
  uint64_t timeout_ms = 0;              // 0: forever
  uint32_t owner = 0;                   // the shard the keys' partition was on at the last probe
  uint64_t token = 0;                   // the registration in force (0: none)
  uint64_t slot_seq = 0;                // the blocking command's place in the reply order
  uint64_t probe_seq = 0;               // the running probe's own place (discarded)
  bool probing = false;                 // a probe's reply is awaited
  bool woken = false;                   // a write came while probing: probe again
  bool timed_out = false;
  uint64_t timer = 0;                   // the timeout's timer (0: none)
  uint64_t retry_timer = 0;             // a probe held back by a partition move runs again
};

// After a write command that wrote something (its store's CAS counter moved) ran on `shard`: wakes the
// waiters of its keys (one branch when none wait). A probe that found nothing writes nothing, so it
// does not wake its own session.
void notify_written(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv);

// The session handler of every blocking command.
void cmd_blocking(Session& s, std::span<const std::string_view> argv);

// XREAD / XREADGROUP: whether the request has a BLOCK option (before STREAMS), which makes the session
// run it as a blocking command (cmd_stream_blocking) outside MULTI.
bool stream_read_blocks(std::span<const std::string_view> argv);
void cmd_stream_blocking(Session& s, std::span<const std::string_view> argv);

}  // namespace tally::server
