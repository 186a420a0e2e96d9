// The server's own commands (connection, introspection, administration), run on the connection's thread.
#pragma once

#include <span>

#include "host/server/command_table.h"

namespace tally::server {

std::span<const CommandEntry> session_commands();

}  // namespace tally::server
