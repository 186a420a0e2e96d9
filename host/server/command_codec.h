// Data commands as a log entry: what a partition's replica group replicates and persists, and what
// every replica (and a restart) executes again. The commands a partition takes during one loop
// iteration share one entry (proposal batching: one Raft entry, one log record, whatever the
// pipeline depth). Each command carries the proposer's clock reading, so TTLs and expiry checks give
// the same result wherever and whenever it is applied.
//
// Entry:   command records back to back, each: u32 length, then the command     (little-endian)
// Command: u64 request id (0: the server's own: expiry and eviction deletions)
//          u64 wall clock ms at proposal
//          u32 argc, then argc × u32 lengths, then the arguments back to back
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tally::server {

inline constexpr uint32_t kCommandArgsMax = 1u << 20;  // arguments of one logged command

// Appends one command record (its length, then the command) to an entry being built.
void append_command(std::string& entry, uint64_t request_id, uint64_t now_ms, std::span<const std::string_view> argv);

struct DecodedCommand {
  uint64_t request_id = 0;
  uint64_t now_ms = 0;
  std::vector<std::string_view> argv;  // views into the entry's bytes
};

// Walks an entry's command records: next() decodes the following one into `out`; false at the end.
// A log that passed its checksums never holds a malformed entry: malformed() tells if it ended early.
class CommandReader {
 public:
  explicit CommandReader(std::string_view entry) : rest_(entry) {}
  bool next(DecodedCommand& out);
  bool malformed() const { return malformed_; }

 private:
  std::string_view rest_;
  bool malformed_ = false;
};

}  // namespace tally::server
