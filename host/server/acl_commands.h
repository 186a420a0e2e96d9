// The ACL command (acl.h's users as Redis 7 clients manage them), run on the connection's thread.
#pragma once

#include <span>
#include <string_view>

namespace tally::server {

class Session;
using Argv = std::span<const std::string_view>;

void cmd_acl(Session& s, Argv argv);

}  // namespace tally::server
