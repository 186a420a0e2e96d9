// The Redis Cluster commands (CLUSTER …, ASKING, READONLY, READWRITE), run on the connection's thread.
#pragma once

#include <span>
#include <string_view>

namespace tally::server {

class Session;
using Argv = std::span<const std::string_view>;

void cmd_cluster(Session& s, Argv argv);
void cmd_asking(Session& s, Argv argv);
void cmd_readonly(Session& s, Argv argv);
void cmd_readwrite(Session& s, Argv argv);

}  // namespace tally::server
