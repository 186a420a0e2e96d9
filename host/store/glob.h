// Glob matching with Redis's pattern syntax (KEYS, SCAN MATCH): * ? [abc] [^a] [a-z] and \x escapes.
// Iterative with one backtrack point, so time is O(pattern * subject) and no recursion.
#pragma once

#include <string_view>

namespace tally::store {

bool glob_match(std::string_view pattern, std::string_view subject, bool nocase = false);

}  // namespace tally::store
