// A data command as a log entry: what a partition's replica group replicates and persists, and what
// every replica (and a restart) executes again. The entry carries the proposer's clock reading, so
// TTLs and expiry checks give the same result wherever and whenever it is applied.
//
//   u64 request id (0: the server's own: expiry and eviction deletions)
//   u64 wall clock ms at proposal
//   u32 argc, then argc × u32 lengths, then the arguments back to back   (little-endian)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tally::server {

inline constexpr uint32_t kCommandArgsMax = 1u << 20;  // arguments of one logged command

std::string encode_command(uint64_t request_id, uint64_t now_ms, std::span<const std::string_view> argv);

struct DecodedCommand {
  uint64_t request_id = 0;
  uint64_t now_ms = 0;
  std::vector<std::string_view> argv;  // views into the encoded bytes
};
// False when the bytes are not a well-formed command (a log that passed its checksums never holds one).
bool decode_command(std::string_view bytes, DecodedCommand& out);

}  // namespace tally::server
