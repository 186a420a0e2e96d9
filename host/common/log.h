// Logging through spdlog: one process-wide logger, levels set at start-up.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace tally::log {

// Sets the level from a name (trace, debug, info, warn, error, off); false if unknown.
bool set_level(std::string_view name);

}  // namespace tally::log

#define TALLY_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define TALLY_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define TALLY_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define TALLY_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define TALLY_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
