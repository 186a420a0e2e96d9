// tallyctl's offline WAL commands over a node directory (DIR/wal/shard-*): `wal verify` and
// `wal truncate`, as text for the operator and an exit status.
#pragma once

#include <cstdint>
#include <string>

#include "host/common/env.h"
#include "host/common/status.h"

namespace tally::wal {

// Exit statuses of `tallyctl wal verify`.
inline constexpr int kVerifyClean = 0;
inline constexpr int kVerifyTornTail = 1;     // a torn tail and nothing else
inline constexpr int kVerifyCorruption = 2;   // corruption, or the log could not be read

// DIR/wal/shard-NNN.
std::string shard_dir(const std::string& node_dir, uint32_t shard);

// Reads every DIR/wal/shard-* log without changing anything and reports, per shard: segments,
// records, bytes, then OK, the torn tail, or each corruption with file:offset and group.
int verify_command(Env& env, const std::string& node_dir, std::string& out);

// Cuts shard N's log at SEQ:OFFSET (truncate_at) and reports how many records that dropped.
// Returns 0, or 2 with the reason in `out`.
int truncate_command(Env& env, const std::string& node_dir, uint32_t shard, const std::string& at, std::string& out);

// "SEQ:OFFSET", both decimal.
bool parse_position(const std::string& s, uint64_t& seq, uint64_t& offset);

}  // namespace tally::wal
