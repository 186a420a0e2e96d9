// The forward frame's payload (peer frame type 20, docs/peer-protocol.md): a client's command that a
// member sends to the leader of the partition its keys lie in.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"

namespace tally::server {

struct ForwardRequest {
  uint64_t id = 0;
  uint32_t partition = 0;
  std::vector<std::string> argv;
};

// u64 request id, u32 partition, u32 argc, then each argument's u32 length and bytes (little-endian).
std::string encode_forward(uint64_t id, uint32_t partition, std::span<const std::string_view> argv);
// Checks every length against the bytes present, the partition against `partitions`, and at least
// one and at most kForwardArgsMax arguments. `id_read` says whether the request id could be read
// (so a refusal can still be answered).
Status decode_forward(std::string_view payload, uint32_t partitions, ForwardRequest& out, bool& id_read);

inline constexpr uint32_t kForwardArgsMax = 1u << 20;

}  // namespace tally::server
