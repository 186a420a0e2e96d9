// The wire form of Raft messages between nodes (docs/peer-protocol.md, "Raft messages"): a batch of
// one group's messages as bytes, and back. Decoding trusts nothing: every length is checked against
// what is left, every enum against its range, and a batch that does not parse exactly is refused
// whole — a peer that lies never reaches the core.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"
#include "host/replication/raft/types.h"

namespace tally::raft {

inline constexpr uint8_t kWireVersion = 1;
// Members of a ConfState on the wire, at most (a group has a handful of replicas).
inline constexpr size_t kWireMembersMax = 1024;

// Appends the batch to `out`: version byte, message count (u32), then each message.
void encode_messages(std::span<const Message> messages, std::string& out);
// Parses a whole batch. Errors are kCorruption and name what was wrong.
Result<std::vector<Message>> decode_messages(std::string_view bytes);

}  // namespace tally::raft
