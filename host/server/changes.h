// The change stream: every partition's committed writes, in commit order, kept as a read-only Redis
// stream in the partition's own store (docs/change-stream.md). Any Redis client tails it with XREAD
// BLOCK, shares it with XREADGROUP/XACK and resumes from an id; because the stream is part of the
// partition's data, it is logged, snapshotted and replicated with it, and every replica writes the
// same entries with the same ids (from the entry's log position, or its time without a log).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/store/store.h"

namespace tally::server {

struct CommandEntry;
class PartitionLayout;

struct ChangeStreamOptions {
  bool enabled = false;
  uint64_t max_entries = 10000;  // per partition, the oldest go first
  uint64_t max_age_ms = 0;       // 0: no age limit
  uint64_t max_bytes = 0;        // memory the stream may take, as the store accounts it (0: no limit)
};

// The change stream's key of each partition: "__tally:changes:{N}" with the smallest decimal N whose
// hash slot lies in that partition, so cluster clients route it like any key.
std::vector<std::string> change_stream_keys(const PartitionLayout& layout);

// A write the client may not make: one on a change stream key other than the consumer-group commands.
bool refused_on_change_stream(const CommandEntry& e, std::span<const std::string_view> argv);

// Appends the changes of a write command that just changed `store` (a transaction: one per write
// command in it) to the partition's change stream at `stream_key`, then applies retention. `index` is
// the command's log index (0 without a log: ids then follow the write's time), `position` its place in
// the entry. Writes to change streams themselves (group commands) are not changes. Returns whether it
// appended anything.
bool record_changes(store::Store& store, const ChangeStreamOptions& o, std::string_view stream_key,
                    uint32_t partition, uint64_t index, uint32_t position, uint64_t now_ms, const CommandEntry& e,
                    std::span<const std::string_view> argv);

}  // namespace tally::server
