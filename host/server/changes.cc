#include "host/server/changes.h"

#include <algorithm>
#include <charconv>

#include "host/server/command_table.h"
#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/server/partition.h"

namespace tally::server {

using store::Entry;
using store::StreamId;
using store::StreamValue;

namespace {

bool group_command(const CommandEntry& e) {
  const std::string_view n = e.name;
  return n == "xreadgroup" || n == "xack" || n == "xclaim" || n == "xautoclaim" || n == "xgroup";
}

// The fields of one change: time, op, partition, log index, key, the key's state after the write
// (type, TTL, a string's value), and the command's arguments.
void change_fields(store::Store& st, uint32_t partition, uint64_t index, uint64_t now_ms, const CommandEntry& e,
                   std::span<const std::string_view> argv, std::vector<std::string>& f) {
  f.clear();
  auto put = [&f](std::string_view name, std::string value) {
    f.emplace_back(name);
    f.push_back(std::move(value));
  };
  put("time", std::to_string(now_ms));  // first: retention by age reads it
  put("op", cmd::lower_ascii(argv[0]));
  put("partition", std::to_string(partition));
  if (index != 0) put("index", std::to_string(index));
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  if (!pos.empty()) {
    put("key", std::string(argv[pos[0]]));
    if (pos.size() == 1) {
      const Entry* k = st.lookup(argv[pos[0]], now_ms, store::Access::kPeek);
      put("type", k == nullptr ? "none" : store::type_name(k->type()));
      if (k != nullptr) {
        put("ttl_ms", !k->has_expire() ? "-1" : std::to_string(k->expire_at_ms() > now_ms ? k->expire_at_ms() - now_ms : 0));
        if (k->type() == store::ValueType::kString) put("value", std::string(k->string_value()));
      }
    }
  }
  put("argc", std::to_string(argv.size() - 1));
  for (size_t i = 1; i < argv.size(); ++i) put("arg" + std::to_string(i), std::string(argv[i]));
}

void append_change(store::Store& st, const ChangeStreamOptions& o, std::string_view stream_key, StreamId want,
                   const std::vector<std::string>& fields, uint64_t now_ms) {
  Entry* s = st.lookup(stream_key, now_ms, store::Access::kWrite);
  if (s != nullptr && s->type() != store::ValueType::kStream) {
    st.erase(s);  // made while change streams were off: the server's key now
    s = nullptr;
  }
  const bool fresh = s == nullptr;
  if (fresh) s = st.create_stream(stream_key);
  std::vector<std::string_view> views(fields.begin(), fields.end());
  st.edit_stream(s, [&](StreamValue& v) {
    StreamId id = want;
    if (id <= v.last_id()) v.last_id().incr(id);
    v.append(id, views);
    if (fresh) {
      // Whatever came before this stream's first entry is gone (it never existed, or FLUSHALL took it):
      // a reader resuming from an earlier id must learn that.
      StreamId before;
      if (id.decr(before)) v.set_ids(id, v.entries_added(), before);
    }
    while (v.size() > std::max<uint64_t>(o.max_entries, 1)) v.pop_front_recorded();
    while (o.max_bytes != 0 && v.size() > 1 && v.bytes() > o.max_bytes) v.pop_front_recorded();
    if (o.max_age_ms != 0 && now_ms > o.max_age_ms) {
      const uint64_t cutoff = now_ms - o.max_age_ms;
      while (v.size() > 1) {
        const auto& first = v.items().begin()->second;
        uint64_t t = 0;
        std::from_chars(first[1].data(), first[1].data() + first[1].size(), t);
        if (t >= cutoff) break;
        v.pop_front_recorded();
      }
    }
  });
}

}  // namespace

std::vector<std::string> change_stream_keys(const PartitionLayout& layout) {
  std::vector<std::string> keys(layout.count());
  uint32_t missing = layout.count();
  for (uint64_t n = 0; missing > 0; ++n) {
    const std::string tag = std::to_string(n);
    const uint32_t p = layout.of_slot(kernels::key_slot(tag));
    if (!keys[p].empty()) continue;
    keys[p] = std::string(cmd::kChangeStreamPrefix) + "{" + tag + "}";
    --missing;
  }
  return keys;
}

bool refused_on_change_stream(const CommandEntry& e, std::span<const std::string_view> argv) {
  if (!(e.flags & kCmdWrite) || group_command(e)) return false;
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  for (size_t i : pos) {
    if (cmd::is_change_stream_key(argv[i])) {
      // A transaction names its commands' keys: its group commands may touch a change stream.
      if (e.flags & kCmdTransaction) {
        std::vector<std::span<const std::string_view>> commands;
        if (!cmd::tx_parse(argv, nullptr, &commands)) return true;
        for (auto c : commands) {
          const CommandEntry* ce = CommandTable::instance().find(c[0]);
          if (ce != nullptr && refused_on_change_stream(*ce, c)) return true;
        }
        return false;
      }
      return true;
    }
  }
  return false;
}

bool record_changes(store::Store& st, const ChangeStreamOptions& o, std::string_view stream_key, uint32_t partition,
                    uint64_t index, uint32_t position, uint64_t now_ms, const CommandEntry& e,
                    std::span<const std::string_view> argv) {
  if (!o.enabled || !(e.flags & kCmdWrite)) return false;
  thread_local std::vector<std::string> fields;
  const StreamId want = index != 0 ? StreamId{index, position} : StreamId{now_ms, 0};
  if (e.flags & kCmdTransaction) {
    std::vector<std::span<const std::string_view>> commands;
    if (!cmd::tx_parse(argv, nullptr, &commands)) return false;
    bool any = false;
    for (auto c : commands) {
      const CommandEntry* ce = CommandTable::instance().find(c[0]);
      if (ce == nullptr || !(ce->flags & kCmdWrite) || group_command(*ce)) continue;
      change_fields(st, partition, index, now_ms, *ce, c, fields);
      append_change(st, o, stream_key, want, fields, now_ms);
      any = true;
    }
    return any;
  }
  if (group_command(e)) return false;
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  for (size_t i : pos) {
    if (cmd::is_change_stream_key(argv[i])) return false;
  }
  change_fields(st, partition, index, now_ms, e, argv, fields);
  append_change(st, o, stream_key, want, fields, now_ms);
  return true;
}

}  // namespace tally::server
