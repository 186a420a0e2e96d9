// The internal commands memcached requests become (kCmdInternal: hidden from RESP clients). They run
// through the same engine, routing and replication hooks as every Redis command; their replies are
// values that the memcached session renders (VALUE lines, STORED, meta return flags...).
//
// An item record (what get/gat/ms/ma return about the item) is an array of five values:
//   [client flags, cas, ttl seconds (-1: none), value bytes, value (bulk) or null]
// memcached sees only string entries: a key of another type reads as a miss.
#include <charconv>
#include <string>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ValueType;

// memcached reads an exptime up to 30 days as relative seconds, anything larger as a Unix time.
constexpr int64_t kRelativeExptimeMaxS = 60 * 60 * 24 * 30;

// 0: no expiry; otherwise the absolute wall time in ms (in the past when the item is already dead).
uint64_t expire_at_ms(int64_t exptime, uint64_t now_ms) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  if (exptime <= kRelativeExptimeMaxS) return now_ms + static_cast<uint64_t>(exptime) * 1000;
  return static_cast<uint64_t>(exptime) * 1000;
}

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_exptime(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// A live string entry, or nullptr.
Entry* find_string(ExecContext& ctx, std::string_view key, Access access) {
  Entry* e = ctx.store.lookup(key, ctx.now_ms, access);
  return e != nullptr && e->type() == ValueType::kString ? e : nullptr;
}

void record(ExecContext& ctx, const Entry* e, bool with_value) {
  if (e == nullptr) return ctx.out.null();
  ctx.out.array(5);
  ctx.out.integer(e->client_flags());
  ctx.out.integer(static_cast<int64_t>(e->cas()));
  if (!e->has_expire()) {
    ctx.out.integer(-1);
  } else {
    const uint64_t at = e->expire_at_ms();
    ctx.out.integer(at > ctx.now_ms ? static_cast<int64_t>((at - ctx.now_ms + 999) / 1000) : 0);
  }
  ctx.out.integer(e->value_bytes());
  if (with_value) {
    ctx.out.bulk(e->string_value());
  } else {
    ctx.out.null();
  }
}

Entry* touch(ExecContext& ctx, Entry* e, int64_t exptime) {
  const uint64_t exp = expire_at_ms(exptime, ctx.now_ms);
  return exp == 0 ? ctx.store.persist(e) : ctx.store.set_expire(e, exp);
}

void status(ExecContext& ctx, std::string_view code, const Entry* e) {
  ctx.out.array(2);
  ctx.out.simple(code);
  record(ctx, e, false);
}

}  // namespace

// mc.get key... -> one record (with its value) or null per key.
void mc_get(ExecContext& ctx, Argv argv) {
  ctx.out.array(argv.size() - 1);
  for (size_t i = 1; i < argv.size(); ++i) record(ctx, find_string(ctx, argv[i], Access::kRead), true);
}

// mc.gat exptime key... -> as mc.get, each hit's expiry set first.
void mc_gat(ExecContext& ctx, Argv argv) {
  int64_t exptime = 0;
  if (!parse_exptime(argv[1], exptime)) return ctx.out.error("CLIENT_ERROR invalid exptime argument");
  ctx.out.array(argv.size() - 2);
  for (size_t i = 2; i < argv.size(); ++i) {
    Entry* e = find_string(ctx, argv[i], Access::kRead);
    if (e != nullptr) e = touch(ctx, e, exptime);
    record(ctx, e, true);
  }
}

// mc.store key value mode flags exptime cas -> [STORED|NOT_STORED|EXISTS|NOT_FOUND, record or null].
// mode: S set, E add, R replace, A append, P prepend. cas: empty, or the CAS the item must have.
void mc_store(ExecContext& ctx, Argv argv) {
  const std::string_view key = argv[1];
  const std::string_view value = argv[2];
  const std::string_view mode = argv[3];
  uint64_t flags = 0, cas = 0;
  int64_t exptime = 0;
  if (mode.size() != 1 || !parse_u64(argv[4], flags) || flags > UINT32_MAX || !parse_exptime(argv[5], exptime) ||
      (!argv[6].empty() && !parse_u64(argv[6], cas))) {
    return ctx.out.error("CLIENT_ERROR bad command line format");
  }
  if (value.size() > store::Store::kStringBytesMax) return ctx.out.error("SERVER_ERROR object too large for cache");
  const bool cas_check = !argv[6].empty();
  Entry* e = find_string(ctx, key, Access::kWrite);
  const uint64_t exp = expire_at_ms(exptime, ctx.now_ms);
  if (cas_check && e == nullptr) return status(ctx, "NOT_FOUND", nullptr);
  if (cas_check && e->cas() != cas) return status(ctx, "EXISTS", nullptr);
  switch (mode[0]) {
    case 'S':
      e = ctx.store.set_string(key, value, exp, false, static_cast<uint32_t>(flags));
      break;
    case 'E':
      if (e != nullptr) return status(ctx, "NOT_STORED", nullptr);
      e = ctx.store.set_string(key, value, exp, false, static_cast<uint32_t>(flags));
      break;
    case 'R':
      if (e == nullptr) return status(ctx, "NOT_STORED", nullptr);
      e = ctx.store.set_string(key, value, exp, false, static_cast<uint32_t>(flags));
      break;
    case 'A':
    case 'P': {
      if (e == nullptr) return status(ctx, "NOT_STORED", nullptr);
      if (e->value_bytes() + value.size() > store::Store::kStringBytesMax) {
        return ctx.out.error("SERVER_ERROR object too large for cache");
      }
      // The item keeps its flags and expiry, as memcached's append and prepend do.
      std::string v = mode[0] == 'A' ? std::string(e->string_value()) + std::string(value)
                                     : std::string(value) + std::string(e->string_value());
      e = ctx.store.set_string(key, v, 0, true, e->client_flags());
      break;
    }
    default:
      return ctx.out.error("CLIENT_ERROR invalid mode for ms");
  }
  status(ctx, "STORED", e);
}

// mc.delete key [cas] -> DELETED | NOT_FOUND | EXISTS.
void mc_delete(ExecContext& ctx, Argv argv) {
  Entry* e = find_string(ctx, argv[1], Access::kWrite);
  if (e == nullptr) return ctx.out.simple("NOT_FOUND");
  if (argv.size() == 3) {
    uint64_t cas = 0;
    if (!parse_u64(argv[2], cas) || cas != e->cas()) return ctx.out.simple("EXISTS");
  }
  ctx.store.erase(e);
  ctx.out.simple("DELETED");
}

// mc.arith key incr|decr delta [autoviv_exptime initial] -> [OK|NOT_FOUND, record with the value].
// memcached's unsigned 64-bit arithmetic: incr wraps, decr stops at 0. With autoviv_exptime a
// missing item is created with `initial`.
void mc_arith(ExecContext& ctx, Argv argv) {
  uint64_t delta = 0;
  if (!parse_u64(argv[3], delta)) return ctx.out.error("CLIENT_ERROR invalid numeric delta argument");
  const bool incr = argv[2] == "incr";
  Entry* e = find_string(ctx, argv[1], Access::kWrite);
  if (e == nullptr) {
    if (argv.size() < 6) {
      ctx.out.array(2);
      ctx.out.simple("NOT_FOUND");
      ctx.out.null();
      return;
    }
    int64_t exptime = 0;
    uint64_t initial = 0;
    if (!parse_exptime(argv[4], exptime) || !parse_u64(argv[5], initial)) {
      return ctx.out.error("CLIENT_ERROR bad token in command line format");
    }
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, initial);
    e = ctx.store.set_string(argv[1], std::string_view(buf, static_cast<size_t>(p - buf)),
                             expire_at_ms(exptime, ctx.now_ms), false, 0);
  } else {
    uint64_t cur = 0;
    if (!parse_u64(e->string_value(), cur)) {
      return ctx.out.error("CLIENT_ERROR cannot increment or decrement non-numeric value");
    }
    const uint64_t result = incr ? cur + delta : (delta > cur ? 0 : cur - delta);
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, result);
    e = ctx.store.set_string(argv[1], std::string_view(buf, static_cast<size_t>(p - buf)), 0, true,
                             e->client_flags());
  }
  ctx.out.array(2);
  ctx.out.simple("OK");
  record(ctx, e, true);
}

// mc.touch key exptime -> TOUCHED | NOT_FOUND.
void mc_touch(ExecContext& ctx, Argv argv) {
  int64_t exptime = 0;
  if (!parse_exptime(argv[2], exptime)) return ctx.out.error("CLIENT_ERROR invalid exptime argument");
  Entry* e = find_string(ctx, argv[1], Access::kWrite);
  if (e == nullptr) return ctx.out.simple("NOT_FOUND");
  touch(ctx, e, exptime);
  ctx.out.simple("TOUCHED");
}

}  // namespace tally::server::cmd
