#include "host/server/command_table.h"

#include <cctype>
#include <charconv>

#include "host/common/assert.h"
#include "host/server/commands/handlers.h"
#include "host/server/session_commands.h"

namespace tally::server {

namespace {

// ASCII only: command names are ASCII, and std::tolower would consult the locale per character.
inline char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

uint64_t name_hash(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (char c : s) {
    h ^= static_cast<uint8_t>(lower_ascii(c));
    h *= 1099511628211ULL;
  }
  return h;
}

bool equals_lower(std::string_view lower_name, std::string_view s) {
  if (lower_name.size() != s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (lower_name[i] != lower_ascii(s[i])) return false;
  }
  return true;
}

}  // namespace

const CommandTable& CommandTable::instance() {
  static const CommandTable table;
  return table;
}

CommandTable::CommandTable() {
  for (const CommandSpec& s : data_commands()) {
    CommandEntry e;
    e.name = s.name;
    e.arity = s.arity;
    e.flags = s.flags;
    e.first_key = s.first_key;
    e.last_key = s.last_key;
    e.key_step = s.key_step;
    e.group = s.group;
    e.summary = s.summary;
    e.split = s.split;
    e.numkeys_at = s.numkeys_at;
    e.streams_from = s.streams_from;
    e.sort_store = s.sort_store;
    e.data = &s;
    entries_.push_back(e);
  }
  for (const CommandEntry& s : session_commands()) {
    TALLY_ASSERT(s.session != nullptr);
    entries_.push_back(s);
  }
  for (uint32_t i = 0; i < entries_.size(); ++i) entries_[i].index = i;
  // Power-of-two open addressing, at most half full.
  size_t cap = 16;
  while (cap < entries_.size() * 2) cap <<= 1;
  buckets_.assign(cap, UINT32_MAX);
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    TALLY_ASSERT_MSG(find(entries_[i].name) == nullptr, "duplicate command name");
    size_t b = name_hash(entries_[i].name) & (cap - 1);
    while (buckets_[b] != UINT32_MAX) b = (b + 1) & (cap - 1);
    buckets_[b] = i;
  }
}

const CommandEntry* CommandTable::find(std::string_view name) const {
  if (buckets_.empty() || name.size() > 64) return nullptr;
  const size_t mask = buckets_.size() - 1;
  for (size_t b = name_hash(name) & mask;; b = (b + 1) & mask) {
    uint32_t i = buckets_[b];
    if (i == UINT32_MAX) return nullptr;
    if (equals_lower(entries_[i].name, name)) return &entries_[i];
  }
}

void CommandTable::key_positions(const CommandEntry& e, std::span<const std::string_view> argv,
                                 std::vector<size_t>& out) {
  out.clear();
  const size_t argc = argv.size();
  if (e.data != nullptr && (e.flags & kCmdTransaction)) {
    // EXEC's internal command: the keys of every command it carries and of the watched keys, as
    // positions in its own arguments (the commands are slices of them).
    std::vector<std::pair<std::string_view, uint64_t>> watched;
    std::vector<std::span<const std::string_view>> commands;
    if (!cmd::tx_parse(argv, &watched, &commands)) {
      out.push_back(1);
      return;
    }
    for (size_t j = 0; j < watched.size(); ++j) out.push_back(3 + 2 * j);  // NWATCH is argv[2], then KEY CAS pairs
    std::vector<size_t> inner;
    for (auto c : commands) {
      const CommandEntry* ce = instance().find(c[0]);
      if (ce == nullptr) continue;
      key_positions(*ce, c, inner);
      const size_t base = static_cast<size_t>(c.data() - argv.data());
      for (size_t i : inner) out.push_back(base + i);
    }
    if (out.empty()) out.push_back(1);
    return;
  }
  if (e.sort_store) {
    // SORT key [BY p] [LIMIT o c] [GET p]... [STORE dst]: the last STORE names the destination.
    out.push_back(1);
    size_t dst = 0;
    for (size_t i = 2; i < argc; ++i) {
      if (equals_lower("limit", argv[i])) {
        i += 2;
      } else if (equals_lower("get", argv[i]) || equals_lower("by", argv[i])) {
        i += 1;
      } else if (equals_lower("store", argv[i]) && i + 1 < argc) {
        dst = ++i;
      }
    }
    if (dst != 0) out.push_back(dst);
    return;
  }
  if (e.streams_from > 0) {
    for (size_t i = static_cast<size_t>(e.streams_from); i < argc; ++i) {
      if (!equals_lower("streams", argv[i])) continue;
      const size_t n = (argc - i - 1) / 2;
      for (size_t j = 0; j < n; ++j) out.push_back(i + 1 + j);
      break;
    }
    return;
  }
  if (e.numkeys_at > 0) {
    const size_t at = static_cast<size_t>(e.numkeys_at);
    if (argc < at + 2) return;
    uint64_t numkeys = 0;
    auto [p, ec] = std::from_chars(argv[at].data(), argv[at].data() + argv[at].size(), numkeys);
    // A bad count routes like its first key; the handler replies with the error.
    if (ec != std::errc() || numkeys == 0 || numkeys > argc - at - 1) numkeys = 1;
    // A fixed key before the count (ZUNIONSTORE destination numkeys key...).
    if (e.first_key > 0 && e.first_key < e.numkeys_at) out.push_back(static_cast<size_t>(e.first_key));
    for (size_t i = 0; i < numkeys; ++i) out.push_back(at + 1 + i);
    return;
  }
  if (e.first_key <= 0) return;
  int last = e.last_key < 0 ? static_cast<int>(argc) + e.last_key : e.last_key;
  const int step = e.key_step > 0 ? e.key_step : 1;
  for (int i = e.first_key; i <= last && i < static_cast<int>(argc); i += step) {
    out.push_back(static_cast<size_t>(i));
  }
}

}  // namespace tally::server
