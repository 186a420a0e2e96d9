// Keyspace commands: deletion, existence, renames, enumeration (KEYS, SCAN, RANDOMKEY) and TTLs.
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/store/glob.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;

constexpr uint64_t kScanCursorMask = (1ull << 48) - 1;  // the server keeps the shard in the bits above

enum ExpireFlag : uint32_t { kExpireNx = 1, kExpireXx = 2, kExpireGt = 4, kExpireLt = 8 };

void expire_generic(ExecContext& ctx, Argv argv, bool seconds, bool absolute) {
  TALLY_ASSERT(argv.size() >= 3);
  int64_t when = 0;
  if (!parse_i64(argv[2], when)) return ctx.out.error(kErrNotInt);
  uint32_t flags = 0;
  for (size_t i = 3; i < argv.size(); ++i) {
    if (iequals(argv[i], "nx")) {
      flags |= kExpireNx;
    } else if (iequals(argv[i], "xx")) {
      flags |= kExpireXx;
    } else if (iequals(argv[i], "gt")) {
      flags |= kExpireGt;
    } else if (iequals(argv[i], "lt")) {
      flags |= kExpireLt;
    } else {
      return ctx.out.error("ERR Unsupported option " + std::string(argv[i]));
    }
  }
  if ((flags & kExpireNx) && (flags & (kExpireXx | kExpireGt | kExpireLt))) {
    return ctx.out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if ((flags & kExpireGt) && (flags & kExpireLt)) {
    return ctx.out.error("ERR GT and LT options at the same time are not compatible");
  }
  std::string invalid = "ERR invalid expire time in '";
  for (char c : argv[0]) invalid.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  invalid += "' command";
  if (seconds) {
    if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) return ctx.out.error(invalid);
    when *= 1000;
  }
  if (!absolute) {
    const int64_t now = static_cast<int64_t>(ctx.now_ms);
    if (when > INT64_MAX - now) return ctx.out.error(invalid);
    when += now;
  }
  Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  if (e == nullptr) return ctx.out.integer(0);
  const int64_t current = e->has_expire() ? static_cast<int64_t>(e->expire_at_ms()) : -1;
  // No TTL counts as an infinite one for GT and LT, as in Redis.
  if (((flags & kExpireNx) && current != -1) || ((flags & kExpireXx) && current == -1) ||
      ((flags & kExpireGt) && (current == -1 || when <= current)) ||
      ((flags & kExpireLt) && current != -1 && when >= current)) {
    return ctx.out.integer(0);
  }
  if (when <= static_cast<int64_t>(ctx.now_ms)) {
    ctx.store.erase(e);
  } else {
    // A new CAS too: WATCH sees a TTL change, as Redis's does (memcached's touch keeps it).
    ctx.store.touch_cas(ctx.store.set_expire(e, static_cast<uint64_t>(when)));
  }
  ctx.out.integer(1);
}

enum class TtlForm : uint8_t { kSeconds, kMillis, kAbsSeconds, kAbsMillis };

void ttl_generic(ExecContext& ctx, Argv argv, TtlForm form) {
  TALLY_ASSERT(argv.size() == 2);
  const Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kPeek);
  if (e == nullptr) return ctx.out.integer(-2);
  if (!e->has_expire()) return ctx.out.integer(-1);
  const int64_t at = static_cast<int64_t>(e->expire_at_ms());
  int64_t v = 0;
  switch (form) {
    case TtlForm::kSeconds: v = (std::max<int64_t>(0, at - static_cast<int64_t>(ctx.now_ms)) + 500) / 1000; break;
    case TtlForm::kMillis: v = std::max<int64_t>(0, at - static_cast<int64_t>(ctx.now_ms)); break;
    case TtlForm::kAbsSeconds: v = (at + 500) / 1000; break;
    case TtlForm::kAbsMillis: v = at; break;
  }
  ctx.out.integer(v);
}

bool rename_prepare(ExecContext& ctx, Argv argv, Entry*& src) {
  TALLY_ASSERT(argv.size() == 3);
  src = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  if (src == nullptr) {
    ctx.out.error(kErrNoSuchKey);
    return false;
  }
  return true;
}

}  // namespace

void del(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  int64_t n = 0;
  for (size_t i = 1; i < argv.size(); ++i) n += ctx.store.erase(argv[i], ctx.now_ms) ? 1 : 0;
  ctx.out.integer(n);
}

void exists(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  int64_t n = 0;
  for (size_t i = 1; i < argv.size(); ++i) n += ctx.store.lookup(argv[i], ctx.now_ms, Access::kRead) ? 1 : 0;
  ctx.out.integer(n);
}

void touch(ExecContext& ctx, Argv argv) { exists(ctx, argv); }

void type(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  const Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kPeek);
  ctx.out.simple(e == nullptr ? "none" : store::type_name(e->type()));
}

void rename(ExecContext& ctx, Argv argv) {
  Entry* src = nullptr;
  if (!rename_prepare(ctx, argv, src)) return;
  ctx.store.rename(src, argv[2]);
  ctx.out.ok();
}

void renamenx(ExecContext& ctx, Argv argv) {
  Entry* src = nullptr;
  if (!rename_prepare(ctx, argv, src)) return;
  if (argv[1] == argv[2] || ctx.store.lookup(argv[2], ctx.now_ms, Access::kWrite) != nullptr) {
    return ctx.out.integer(0);
  }
  ctx.store.rename(src, argv[2]);
  ctx.out.integer(1);
}

// COPY source destination [DB 0] [REPLACE]: a deep copy with the source's TTL. One database (0).
void copy(ExecContext& ctx, Argv argv) {
  using store::ValueType;
  bool replace = false;
  for (size_t i = 3; i < argv.size(); ++i) {
    if (iequals(argv[i], "replace")) {
      replace = true;
    } else if (iequals(argv[i], "db") && i + 1 < argv.size()) {
      int64_t db = 0;
      if (!parse_i64(argv[++i], db)) return ctx.out.error(kErrNotInt);
      if (db != 0) return ctx.out.error("ERR DB index is out of range");
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  if (argv[1] == argv[2]) return ctx.out.error("ERR source and destination objects are the same");
  const Entry* src = ctx.store.lookup(argv[1], ctx.now_ms, Access::kRead);
  if (src == nullptr) return ctx.out.integer(0);
  if (ctx.store.lookup(argv[2], ctx.now_ms, Access::kWrite) != nullptr) {
    if (!replace) return ctx.out.integer(0);
    ctx.store.erase(argv[2], ctx.now_ms);
    src = ctx.store.lookup(argv[1], ctx.now_ms, Access::kPeek);
  }
  const std::string_view dst = argv[2];
  Entry* d = nullptr;
  switch (src->type()) {
    case ValueType::kString:
      d = ctx.store.set_string(dst, src->string_value(), 0, false);
      break;
    case ValueType::kSet:
      d = ctx.store.create_set(dst);
      for (const std::string& m : src->set_value()->members()) ctx.store.set_add(d, m);
      break;
    case ValueType::kHash:
      d = ctx.store.create_hash(dst);
      for (const auto& [f, v] : src->hash_value()->fields()) ctx.store.hash_set(d, f, v);
      break;
    case ValueType::kList:
      d = ctx.store.create_list(dst);
      ctx.store.edit_list(d, [&](store::ListValue& l) {
        for (const std::string& item : src->list_value()->items()) l.push_back(item);
      });
      break;
    case ValueType::kZSet:
      d = ctx.store.create_zset(dst);
      ctx.store.edit_zset(d, [&](store::ZSetValue& z) {
        for (const auto* n = src->zset_value()->first(); n != nullptr; n = n->next()) z.put(n->member, n->score);
      });
      break;
    case ValueType::kStream:
      d = ctx.store.create_stream(dst);
      ctx.store.edit_stream(d, [&](store::StreamValue& v) { v = *src->stream_value(); });
      break;
  }
  if (src->has_expire()) ctx.store.set_expire(d, src->expire_at_ms());
  ctx.out.integer(1);
}

namespace {

// What redis-server 7.0 would hold a value as (it converts one way only, so after a value shrinks it
// may still say the larger form where this says the compact one).
const char* redis_encoding(const Entry& e) {
  auto limit = [](size_t i) { return encoding_threshold(i).load(std::memory_order_relaxed); };
  auto small = [](size_t n, int64_t max) { return static_cast<int64_t>(n) <= max; };
  switch (e.type()) {
    case store::ValueType::kString: {
      const std::string_view v = e.string_value();
      int64_t x = 0;
      if (v.size() <= 20 && parse_i64(v, x)) return "int";
      return v.size() <= 44 ? "embstr" : "raw";
    }
    case store::ValueType::kSet: {
      const auto& m = e.set_value()->members();
      if (!small(m.size(), limit(2))) return "hashtable";
      int64_t x = 0;
      for (const std::string& s : m) {
        if (!parse_i64(s, x)) return "hashtable";
      }
      return "intset";
    }
    case store::ValueType::kHash: {
      const auto& f = e.hash_value()->fields();
      if (!small(f.size(), limit(0))) return "hashtable";
      for (const auto& [k, v] : f) {
        if (!small(k.size(), limit(1)) || !small(v.size(), limit(1))) return "hashtable";
      }
      return "listpack";
    }
    case store::ValueType::kList: return "quicklist";
    case store::ValueType::kZSet: {
      const store::ZSetValue& z = *e.zset_value();
      if (!small(z.size(), limit(5))) return "skiplist";
      for (const auto* n = z.first(); n != nullptr; n = n->next()) {
        if (!small(n->member.size(), limit(6))) return "skiplist";
      }
      return "listpack";
    }
    case store::ValueType::kStream: return "stream";
  }
  TALLY_UNREACHABLE();
}

}  // namespace

// OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT key, OBJECT HELP.
void object(ExecContext& ctx, Argv argv) {
  const std::string_view sub = argv[1];
  if (iequals(sub, "help")) {
    if (argv.size() != 2) return wrong_arity(ctx, "object|help");
    static const char* const kHelp[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation redis-server would use for the value at <key>.",
        "FREQ <key>",
        "    Return the access frequency index of <key> (under an LFU maxmemory-policy).",
        "IDLETIME <key>",
        "    Not tracked: tallyd's LRU clock counts accesses, not seconds.",
        "REFCOUNT <key>",
        "    Return the number of references of the value at <key> (always 1).",
        "HELP",
        "    Print this help.",
    };
    ctx.out.array(std::size(kHelp));
    for (const char* l : kHelp) ctx.out.simple(l);
    return;
  }
  const bool enc = iequals(sub, "encoding"), freq = iequals(sub, "freq"), idle = iequals(sub, "idletime"),
             refs = iequals(sub, "refcount");
  if (!enc && !freq && !idle && !refs) {
    return ctx.out.error("ERR unknown subcommand '" + std::string(sub) + "'. Try OBJECT HELP.");
  }
  if (argv.size() != 3) {
    std::string name = "object|";
    for (char c : sub) name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return wrong_arity(ctx, name);
  }
  const Entry* e = ctx.store.lookup(argv[2], ctx.now_ms, Access::kPeek);
  if (e == nullptr) return ctx.out.null();
  if (enc) return ctx.out.bulk(redis_encoding(*e));
  if (refs) return ctx.out.integer(1);
  if (freq) {
    if (!ctx.store.lfu_policy()) {
      return ctx.out.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
                           "that when switching between policies at runtime LRU and LFU data will take some time "
                           "to adjust.");
    }
    return ctx.out.integer(ctx.store.access_frequency(*e, ctx.now_ms));
  }
  if (ctx.store.lfu_policy()) {
    return ctx.out.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when "
                         "switching between policies at runtime LRU and LFU data will take some time to adjust.");
  }
  ctx.out.error("ERR idle time is not tracked: tallyd's LRU clock counts accesses, not seconds");
}

void keys(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  const std::string_view pattern = argv[1];
  const bool all = pattern == "*";
  std::vector<std::string_view> found;
  ctx.store.for_each([&](const Entry& e) {
    if (ctx.store.is_expired(e, ctx.now_ms)) return;
    if (all || store::glob_match(pattern, e.key())) found.push_back(e.key());
  });
  ctx.out.array(found.size());
  for (std::string_view k : found) ctx.out.bulk(k);
}

void scan(ExecContext& ctx, Argv argv) {
  ScanArgs args;
  if (!parse_scan_args(ctx, argv, 1, /*allow_type=*/true, args)) return;
  std::vector<std::string_view> found;
  const uint64_t next = ctx.store.scan(args.cursor & kScanCursorMask, static_cast<size_t>(args.count),
                                       [&](const Entry& e) {
    if (ctx.store.is_expired(e, ctx.now_ms)) return;
    if (args.has_type && !iequals(args.type, store::type_name(e.type()))) return;
    if (args.has_pattern && !store::glob_match(args.pattern, e.key())) return;
    found.push_back(e.key());
  });
  TALLY_ASSERT(next <= kScanCursorMask);
  char buf[24];
  ctx.out.array(2);
  ctx.out.bulk(format_i64(static_cast<int64_t>(next), buf));
  ctx.out.array(found.size());
  for (std::string_view k : found) ctx.out.bulk(k);
}

void randomkey(ExecContext& ctx, Argv argv) {
  const Entry* e = ctx.store.random_entry(ctx.now_ms);
  if (e == nullptr) return ctx.out.null();
  ctx.out.bulk(e->key());
}

void dbsize(ExecContext& ctx, Argv argv) { ctx.out.integer(static_cast<int64_t>(ctx.store.size())); }

void flushdb(ExecContext& ctx, Argv argv) {
  if (argv.size() > 2 || (argv.size() == 2 && !iequals(argv[1], "async") && !iequals(argv[1], "sync"))) {
    return ctx.out.error(kErrSyntax);
  }
  ctx.store.flush();
  ctx.out.ok();
}

void expire(ExecContext& ctx, Argv argv) { expire_generic(ctx, argv, true, false); }
void pexpire(ExecContext& ctx, Argv argv) { expire_generic(ctx, argv, false, false); }
void expireat(ExecContext& ctx, Argv argv) { expire_generic(ctx, argv, true, true); }
void pexpireat(ExecContext& ctx, Argv argv) { expire_generic(ctx, argv, false, true); }
void ttl(ExecContext& ctx, Argv argv) { ttl_generic(ctx, argv, TtlForm::kSeconds); }
void pttl(ExecContext& ctx, Argv argv) { ttl_generic(ctx, argv, TtlForm::kMillis); }
void expiretime(ExecContext& ctx, Argv argv) { ttl_generic(ctx, argv, TtlForm::kAbsSeconds); }
void pexpiretime(ExecContext& ctx, Argv argv) { ttl_generic(ctx, argv, TtlForm::kAbsMillis); }

void persist(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  if (e == nullptr || !e->has_expire()) return ctx.out.integer(0);
  ctx.store.touch_cas(ctx.store.persist(e));
  ctx.out.integer(1);
}

}  // namespace tally::server::cmd
