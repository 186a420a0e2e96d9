#include "host/server/notify.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "host/server/command_table.h"
#include "host/server/commands/util.h"
#include "host/server/server.h"
#include "host/server/shard.h"

namespace tally::server {
namespace {

constexpr struct {
  char letter;
  uint32_t flag;
} kLetters[] = {
    {'g', kNotifyGeneric}, {'$', kNotifyString}, {'l', kNotifyList},    {'s', kNotifySet},
    {'h', kNotifyHash},    {'z', kNotifyZset},   {'x', kNotifyExpired}, {'e', kNotifyEvicted},
    {'t', kNotifyStream},  {'d', kNotifyModule}, {'n', kNotifyNew},
};

// The class of a command's events from its group in the table.
uint32_t class_of(const CommandEntry& e) {
  const std::string_view g = e.group;
  if (g == "string" || g == "bitmap" || g == "hyperloglog") return kNotifyString;
  if (g == "list") return kNotifyList;
  if (g == "set") return kNotifySet;
  if (g == "hash") return kNotifyHash;
  if (g == "sorted-set") return kNotifyZset;
  if (g == "stream") return kNotifyStream;
  return kNotifyGeneric;
}

struct Event {
  const char* name;
  uint32_t cls;
};

// Redis's event names where they are not the command's own name.
Event event_of(const CommandEntry& e) {
  const std::string_view n = e.name;
  if (n == "set" || n == "setnx" || n == "setex" || n == "psetex" || n == "getset" || n == "mset" || n == "msetnx") {
    return {"set", kNotifyString};
  }
  if (n == "incr" || n == "decr" || n == "incrby" || n == "decrby") return {"incrby", kNotifyString};
  if (n == "getdel" || n == "del" || n == "unlink") return {"del", kNotifyGeneric};
  if (n == "expire" || n == "pexpire" || n == "expireat" || n == "pexpireat" || n == "getex") {
    return {"expire", kNotifyGeneric};
  }
  if (n == "lpushx") return {"lpush", kNotifyList};
  if (n == "rpushx") return {"rpush", kNotifyList};
  if (n == "hmset" || n == "hsetnx") return {"hset", kNotifyHash};
  if (n == "zincrby") return {"zincr", kNotifyZset};
  if (n == "bitfield") return {"setbit", kNotifyString};
  if (n == "bitop") return {"set", kNotifyString};
  if (n == "pfmerge") return {"pfadd", kNotifyString};
  return {e.name.data(), class_of(e)};
}

// Writes that store into their first key only (the others are read).
bool stores_into_first(std::string_view n) {
  return n.ends_with("store") || n == "bitop" || n == "lmove" || n == "rpoplpush";
}

bool with_persist_option(std::span<const std::string_view> argv) {
  for (size_t i = 2; i < argv.size(); ++i) {
    if (cmd::iequals(argv[i], "persist")) return true;
  }
  return false;
}

bool with_ttl_option(std::span<const std::string_view> argv) {
  for (size_t i = 3; i < argv.size(); ++i) {
    const std::string_view a = argv[i];
    if (a.size() == 2 || a.size() == 4) {
      std::string up(a);
      for (char& c : up) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
      if (up == "EX" || up == "PX" || up == "EXAT" || up == "PXAT") return true;
    }
  }
  return false;
}

void publish_all(Shard& shard, std::string channel, std::string message) {
  Server& srv = *shard.server;
  if (srv.shard_count() == 1) {
    shard.pubsub.publish(shard, false, channel, message);
    return;
  }
  for (uint32_t i = 0; i < srv.shard_count(); ++i) {
    Shard* sh = &srv.shard(i);
    sh->reactor->post([sh, channel, message] { sh->pubsub.publish(*sh, false, channel, message); });
  }
}

}  // namespace

std::atomic<uint32_t>& notify_flags() {
  static std::atomic<uint32_t> flags{0};
  return flags;
}

bool parse_notify_flags(std::string_view s, uint32_t& flags) {
  flags = 0;
  for (char c : s) {
    if (c == 'A') {
      flags |= kNotifyAll;
    } else if (c == 'K') {
      flags |= kNotifyKeyspace;
    } else if (c == 'E') {
      flags |= kNotifyKeyevent;
    } else if (c == 'm') {
      flags |= kNotifyKeyMiss;
    } else {
      bool known = false;
      for (const auto& l : kLetters) {
        if (l.letter == c) {
          flags |= l.flag;
          known = true;
        }
      }
      if (!known) return false;
    }
  }
  return true;
}

std::string notify_flags_string(uint32_t flags) {
  std::string out;
  if ((flags & kNotifyAll) == kNotifyAll) {
    out += 'A';
    if (flags & kNotifyNew) out += 'n';
  } else {
    for (const auto& l : kLetters) {
      if (flags & l.flag) out += l.letter;
    }
  }
  if (flags & kNotifyKeyspace) out += 'K';
  if (flags & kNotifyKeyevent) out += 'E';
  if (flags & kNotifyKeyMiss) out += 'm';
  return out;
}

void notify_event(Shard& shard, uint32_t cls, std::string_view event, std::string_view key) {
  const uint32_t flags = notify_flags().load(std::memory_order_relaxed);
  if (!(flags & cls)) return;
  if (flags & kNotifyKeyspace) {
    publish_all(shard, "__keyspace@0__:" + std::string(key), std::string(event));
  }
  if (flags & kNotifyKeyevent) {
    publish_all(shard, "__keyevent@0__:" + std::string(event), std::string(key));
  }
}

uint64_t keys_present(store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                      uint64_t now_ms) {
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  uint64_t bits = 0;
  for (size_t i = 0; i < pos.size() && i < 64; ++i) {
    if (st.lookup(argv[pos[i]], now_ms, store::Access::kPeek) != nullptr) bits |= uint64_t{1} << i;
  }
  return bits;
}

void notify_write(Shard& shard, store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                  uint64_t now_ms, uint64_t present_before) {
  if (!(e.flags & kCmdWrite)) return;
  const std::string_view n = e.name;
  if (n == "flushall" || n == "flushdb") return;  // Redis raises none
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  if (pos.empty()) return;
  auto exists = [&](std::string_view key) { return st.lookup(key, now_ms, store::Access::kPeek) != nullptr; };
  auto was_present = [&](size_t i) { return i < 64 && ((present_before >> i) & 1) != 0; };
  if ((n == "lmove" || n == "rpoplpush") && pos.size() == 2) {
    // As Redis: the push on the destination (created first if new), then the pop on the source.
    const bool from_left = n == "lmove" && argv.size() > 3 && cmd::iequals(argv[3], "left");
    const bool to_left = n == "rpoplpush" || (argv.size() > 4 && cmd::iequals(argv[4], "left"));
    const std::string_view src = argv[pos[0]], dst = argv[pos[1]];
    if (src != dst && !was_present(1) && exists(dst)) notify_event(shard, kNotifyNew, "new", dst);
    notify_event(shard, kNotifyList, to_left ? "lpush" : "rpush", dst);
    notify_event(shard, kNotifyList, from_left ? "lpop" : "rpop", src);
    if (src != dst && was_present(0) && !exists(src)) notify_event(shard, kNotifyGeneric, "del", src);
    return;
  }
  if (n == "smove" && pos.size() == 2) {
    const std::string_view src = argv[pos[0]], dst = argv[pos[1]];
    notify_event(shard, kNotifySet, "srem", src);
    if (was_present(0) && !exists(src)) notify_event(shard, kNotifyGeneric, "del", src);
    if (!was_present(1) && exists(dst)) notify_event(shard, kNotifyNew, "new", dst);
    notify_event(shard, kNotifySet, "sadd", dst);
    return;
  }
  if (n == "lmpop" || n == "zmpop") {
    // The first key that held elements is the one popped, named by the side it was popped from.
    int64_t numkeys = 0;
    for (char c : argv[1]) numkeys = numkeys * 10 + (c - '0');
    const size_t where = 2 + static_cast<size_t>(numkeys);
    const bool first_side = where < argv.size() && (cmd::iequals(argv[where], "left") || cmd::iequals(argv[where], "min"));
    for (size_t i = 0; i < pos.size(); ++i) {
      if (!was_present(i)) continue;
      const std::string_view key = argv[pos[i]];
      if (n == "lmpop") {
        notify_event(shard, kNotifyList, first_side ? "lpop" : "rpop", key);
      } else {
        notify_event(shard, kNotifyZset, first_side ? "zpopmin" : "zpopmax", key);
      }
      if (!exists(key)) notify_event(shard, kNotifyGeneric, "del", key);
      break;
    }
    return;
  }
  if (n == "xgroup" && argv.size() > 2) {
    // Redis names each subcommand's event: xgroup-create, xgroup-setid, xgroup-destroy, ...
    if (!was_present(0) && exists(argv[pos[0]])) notify_event(shard, kNotifyNew, "new", argv[pos[0]]);  // MKSTREAM
    notify_event(shard, kNotifyStream, "xgroup-" + cmd::lower_ascii(argv[1]), argv[pos[0]]);
    return;
  }
  if (n == "rename" || n == "renamenx") {
    if (pos.size() == 2 && st.lookup(argv[pos[1]], now_ms, store::Access::kPeek) != nullptr) {
      // The destination is added anew (after deleting one that was there), as Redis does.
      notify_event(shard, kNotifyNew, "new", argv[pos[1]]);
      notify_event(shard, kNotifyGeneric, "rename_from", argv[pos[0]]);
      notify_event(shard, kNotifyGeneric, "rename_to", argv[pos[1]]);
    }
    return;
  }
  if (n == "sort") {  // only STORE's destination changes: the sorted list, or deleted when empty
    if (pos.size() == 2) {
      const bool had = (present_before >> 1) & 1;
      if (st.lookup(argv[pos[1]], now_ms, store::Access::kPeek) != nullptr) {
        if (!had) notify_event(shard, kNotifyNew, "new", argv[pos[1]]);
        notify_event(shard, kNotifyList, "sortstore", argv[pos[1]]);
      } else if (had) {
        notify_event(shard, kNotifyGeneric, "del", argv[pos[1]]);
      }
    }
    return;
  }
  if (n == "copy") {  // the destination is the key that changed
    if (pos.size() == 2) {
      notify_event(shard, kNotifyNew, "new", argv[pos[1]]);  // added anew, replacing or not
      notify_event(shard, kNotifyGeneric, "copy_to", argv[pos[1]]);
    }
    return;
  }
  const Event ev = event_of(e);
  const bool first_only = stores_into_first(n);
  const bool deletes = ev.cls == kNotifyGeneric && std::strcmp(ev.name, "del") == 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    const std::string_view key = argv[pos[i]];
    const bool had = i < 64 && (present_before >> i) & 1;
    const bool has = st.lookup(key, now_ms, store::Access::kPeek) != nullptr;
    if (deletes) {
      if (had && !has) notify_event(shard, kNotifyGeneric, "del", key);
      continue;
    }
    if (!had && has) notify_event(shard, kNotifyNew, "new", key);  // before the command's own event
    if (first_only && i > 0) {
      // A source that the command emptied (LMOVE's last element) is deleted.
      if (had && !has) notify_event(shard, kNotifyGeneric, "del", key);
      continue;
    }
    if (!had && !has) continue;  // nothing happened to it
    if (n == "getex" && has && with_persist_option(argv)) {
      notify_event(shard, kNotifyGeneric, "persist", key);
      continue;
    }
    if (std::strcmp(ev.name, "expire") == 0 && had && !has) {
      notify_event(shard, kNotifyGeneric, "del", key);  // a time in the past deletes
      continue;
    }
    notify_event(shard, ev.cls, ev.name, key);
    // SET with a TTL (SETEX, PSETEX, SET EX/PX/EXAT/PXAT) also sets an expiry, as Redis says.
    if (n == "setex" || n == "psetex" || (n == "set" && has && with_ttl_option(argv))) {
      notify_event(shard, kNotifyGeneric, "expire", key);
    }
    // A container the command emptied is deleted too.
    if (had && !has && ev.cls != kNotifyGeneric && ev.cls != kNotifyString) {
      notify_event(shard, kNotifyGeneric, "del", key);
    }
  }
}

void notify_misses(Shard& shard, store::Store& st, const CommandEntry& e, std::span<const std::string_view> argv,
                   uint64_t now_ms) {
  if ((e.flags & kCmdWrite) || !(notify_flags().load(std::memory_order_relaxed) & kNotifyKeyMiss)) return;
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  for (size_t p : pos) {
    if (st.lookup(argv[p], now_ms, store::Access::kPeek) == nullptr) notify_event(shard, kNotifyKeyMiss, "keymiss", argv[p]);
  }
}

void notify_source_misses(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv,
                          uint64_t present_before) {
  if (!(notify_flags().load(std::memory_order_relaxed) & kNotifyKeyMiss)) return;
  const std::string_view n = e.name;
  size_t first = 0, last = 0;  // the sources among the key positions: [first, last)
  thread_local std::vector<size_t> pos;
  CommandTable::key_positions(e, argv, pos);
  if (n == "sort" || n == "copy") {
    last = std::min<size_t>(1, pos.size());
  } else if ((n.ends_with("store") && n != "lmove") || n == "bitop") {
    first = 1;
    last = pos.size();
  }
  for (size_t i = first; i < last && i < 64; ++i) {
    if (!((present_before >> i) & 1)) notify_event(shard, kNotifyKeyMiss, "keymiss", argv[pos[i]]);
  }
}

}  // namespace tally::server
