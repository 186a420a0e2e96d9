// INFO's text: sections server, clients, memory, stats, keyspace, commandstats, built from the shards'
// counters and the store figures gathered for this call.
#pragma once

#include <string>
#include <vector>

#include "host/server/shard.h"

namespace tally::server {

class Server;

// The Redis protocol level tallyd answers to (clients read it from HELLO and INFO).
inline constexpr const char* kRedisCompatVersion = "7.0.0";
inline constexpr const char* kTallyVersion = "0.1.0";

// `sections` empty or "default": everything but commandstats; "all"/"everything": everything.
std::string render_info(Server& server, const std::vector<StoreFigures>& per_shard,
                        const std::vector<std::string>& sections);

}  // namespace tally::server
