// Keyspace notifications (Redis's notify-keyspace-events): after a write, pub/sub messages on
// __keyspace@0__:<key> (the event's name) and __keyevent@0__:<event> (the key), for the classes the
// configured flags select (docs/server.md lists the events). Off unless CONFIG SET or the config file
// turns them on; one relaxed atomic load per write when off.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "host/store/store.h"

namespace tally::server {

struct CommandEntry;
struct Shard;

enum NotifyFlag : uint32_t {
  kNotifyKeyspace = 1 << 0,  // K
  kNotifyKeyevent = 1 << 1,  // E
  kNotifyGeneric = 1 << 2,   // g
  kNotifyString = 1 << 3,    // $
  kNotifyList = 1 << 4,      // l
  kNotifySet = 1 << 5,       // s
  kNotifyHash = 1 << 6,      // h
  kNotifyZset = 1 << 7,      // z
  kNotifyExpired = 1 << 8,   // x
  kNotifyEvicted = 1 << 9,   // e
  kNotifyStream = 1 << 10,   // t
  kNotifyKeyMiss = 1 << 11,  // m: "keymiss" when a read finds no key
  kNotifyModule = 1 << 12,   // d (accepted; there are no modules)
  kNotifyNew = 1 << 13,      // n: "new" when a write creates a key
  kNotifyAll = kNotifyGeneric | kNotifyString | kNotifyList | kNotifySet | kNotifyHash | kNotifyZset |
               kNotifyExpired | kNotifyEvicted | kNotifyStream | kNotifyModule,  // A
};

// Redis's letters (K E g $ l s h z x e t m d n A) to flags and back; false on an unknown letter.
bool parse_notify_flags(std::string_view s, uint32_t& flags);
std::string notify_flags_string(uint32_t flags);

// The flags in force (process-wide, as Redis's server setting).
std::atomic<uint32_t>& notify_flags();
inline bool notifications_on() { return notify_flags().load(std::memory_order_relaxed) != 0; }

// Before a write command runs (only when notifications are on): bit i is set when its i-th key (of at
// most 64) exists, so DEL's events name only keys it deleted.
uint64_t keys_present(store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                      uint64_t now_ms);
// After a write command changed `st`: its events.
void notify_write(Shard& shard, store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                  uint64_t now_ms, uint64_t present_before);
// After a read command ran (only when notifications are on): "keymiss" for each of its keys that is
// absent, as Redis raises on a read lookup that finds nothing (class m).
void notify_misses(Shard& shard, store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                   uint64_t now_ms);
// Before a write command's own events: "keymiss" for each source it reads that was absent (SORT's and
// COPY's first key, the sources of *STORE and BITOP), as Redis's read lookups of them raise.
void notify_source_misses(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv,
                          uint64_t present_before);
// An event the server raises on its own (expired, evicted).
void notify_event(Shard& shard, uint32_t cls, std::string_view event, std::string_view key);

}  // namespace tally::server
