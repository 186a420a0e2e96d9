#include "host/store/glob.h"

#include <cctype>
#include <cstddef>

#include "host/common/assert.h"

namespace tally::store {
namespace {

char fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Matches one subject char against the token at pattern[p]; sets `next` past the token.
// Returns false for a mismatch. Tokens: '?', '[...]', '\x' or a literal char.
bool match_one(std::string_view pat, size_t p, char c, bool nocase, size_t& next) {
  TALLY_ASSERT(p < pat.size() && pat[p] != '*');
  const char pc = pat[p];
  if (pc == '?') {
    next = p + 1;
    return true;
  }
  if (pc == '\\' && p + 1 < pat.size()) {
    next = p + 2;
    return fold(pat[p + 1], nocase) == fold(c, nocase);
  }
  if (pc != '[') {
    next = p + 1;
    return fold(pc, nocase) == fold(c, nocase);
  }
  // Character class. As Redis: '^' negates, '\' escapes, 'a-z' is a range (either order),
  // and an unterminated class runs to the end of the pattern.
  size_t i = p + 1;
  const bool negate = i < pat.size() && pat[i] == '^';
  if (negate) ++i;
  bool hit = false;
  const char fc = fold(c, nocase);
  while (i < pat.size() && pat[i] != ']') {
    if (pat[i] == '\\' && i + 1 < pat.size()) {
      if (fold(pat[i + 1], nocase) == fc) hit = true;
      i += 2;
    } else if (i + 2 < pat.size() && pat[i + 1] == '-') {
      char lo = fold(pat[i], nocase);
      char hi = fold(pat[i + 2], nocase);
      if (lo > hi) std::swap(lo, hi);
      if (fc >= lo && fc <= hi) hit = true;
      i += 3;
    } else {
      if (fold(pat[i], nocase) == fc) hit = true;
      ++i;
    }
  }
  next = i < pat.size() ? i + 1 : i;  // past ']'
  return hit != negate;
}

}  // namespace

bool glob_match(std::string_view pat, std::string_view s, bool nocase) {
  size_t p = 0, i = 0;
  size_t star_p = std::string_view::npos, star_i = 0;
  // Each iteration advances i, or advances p over a '*', or backtracks with star_i strictly
  // growing: bounded by (|s| + 1) * (|pat| + 1) steps.
  const size_t steps_max = (s.size() + 1) * (pat.size() + 2) + pat.size();
  for (size_t step = 0; step <= steps_max; ++step) {
    if (p < pat.size() && pat[p] == '*') {
      while (p < pat.size() && pat[p] == '*') ++p;  // runs of '*' act as one
      if (p == pat.size()) return true;
      star_p = p;
      star_i = i;
      continue;
    }
    if (i == s.size()) return p == pat.size();
    size_t next = 0;
    if (p < pat.size() && match_one(pat, p, s[i], nocase, next)) {
      p = next;
      ++i;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    i = ++star_i;
  }
  TALLY_UNREACHABLE();
}

}  // namespace tally::store
