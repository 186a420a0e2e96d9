// String commands. The hot ones (GET, SET, INCR, MGET, MSET) allocate nothing on their own:
// values go straight from argv into the entry and numbers are formatted on the stack.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ValueType;

enum class ExpireUnit : uint8_t { kSeconds, kMillis };

// Redis's "ERR invalid expire time in '<cmd>' command" for the lower-cased command name.
void invalid_expire(ExecContext& ctx, std::string_view cmd) {
  std::string msg = "ERR invalid expire time in '";
  for (char c : cmd) msg.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  msg += "' command";
  ctx.out.error(msg);
}

// Turns an EX/PX/EXAT/PXAT argument into an absolute ms time, as Redis's getExpireMillisecondsOrReply.
bool expire_at_from_arg(ExecContext& ctx, std::string_view cmd, std::string_view arg, ExpireUnit unit,
                        bool absolute, uint64_t& at_ms) {
  int64_t v = 0;
  if (!parse_i64(arg, v)) {
    ctx.out.error(kErrNotInt);
    return false;
  }
  if (v <= 0 || (unit == ExpireUnit::kSeconds && v > INT64_MAX / 1000)) {
    invalid_expire(ctx, cmd);
    return false;
  }
  if (unit == ExpireUnit::kSeconds) v *= 1000;
  if (!absolute) {
    if (v > INT64_MAX - static_cast<int64_t>(ctx.now_ms)) {
      invalid_expire(ctx, cmd);
      return false;
    }
    v += static_cast<int64_t>(ctx.now_ms);
  }
  at_ms = static_cast<uint64_t>(v);
  return true;
}

// EX/PX/EXAT/PXAT keyword → unit and absoluteness; false when the word is not one of them.
bool expire_keyword(std::string_view w, ExpireUnit& unit, bool& absolute) {
  if (iequals(w, "ex")) { unit = ExpireUnit::kSeconds; absolute = false; return true; }
  if (iequals(w, "px")) { unit = ExpireUnit::kMillis; absolute = false; return true; }
  if (iequals(w, "exat")) { unit = ExpireUnit::kSeconds; absolute = true; return true; }
  if (iequals(w, "pxat")) { unit = ExpireUnit::kMillis; absolute = true; return true; }
  return false;
}

// The protocol limit is configurable; a string value above Redis's 512 MB cap is refused here.
bool value_fits(ExecContext& ctx, std::string_view v) {
  if (v.size() <= store::Store::kStringBytesMax) return true;
  ctx.out.error(kErrMaxBulk);
  return false;
}

bool values_fit(ExecContext& ctx, Argv argv, size_t first, size_t step) {
  for (size_t i = first; i < argv.size(); i += step) {
    if (!value_fits(ctx, argv[i])) return false;
  }
  return true;
}

void reply_string_or_null(ExecContext& ctx, const Entry* e) {
  if (e == nullptr) {
    ctx.out.null();
  } else {
    ctx.out.bulk(e->string_value());
  }
}

// INCR/DECR/INCRBY/DECRBY after the increment is known.
void incr_by(ExecContext& ctx, std::string_view key, int64_t by) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, key, ValueType::kString, Access::kWrite, e)) return;
  int64_t value = 0;
  if (e != nullptr && !parse_i64(e->string_value(), value)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  if ((by < 0 && value < 0 && by < INT64_MIN - value) || (by > 0 && value > 0 && by > INT64_MAX - value)) {
    ctx.out.error(kErrOverflow);
    return;
  }
  value += by;
  char buf[24];
  // In-place edits keep the memcached client flags: the same item may be read over both ports.
  ctx.store.set_string(key, format_i64(value, buf), 0, /*keep_ttl=*/true, e != nullptr ? e->client_flags() : 0);
  ctx.out.integer(value);
}

}  // namespace

void get(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  reply_string_or_null(ctx, e);
}

void set(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  if (!value_fits(ctx, argv[2])) return;
  bool nx = false, xx = false, get_old = false, keep_ttl = false, has_expire = false;
  ExpireUnit unit = ExpireUnit::kSeconds;
  bool absolute = false;
  std::string_view expire_arg;
  for (size_t i = 3; i < argv.size(); ++i) {
    const std::string_view a = argv[i];
    const bool has_next = i + 1 < argv.size();
    ExpireUnit u;
    bool abs;
    if (iequals(a, "nx") && !xx) {
      nx = true;
    } else if (iequals(a, "xx") && !nx) {
      xx = true;
    } else if (iequals(a, "get")) {
      get_old = true;
    } else if (iequals(a, "keepttl") && !has_expire) {
      keep_ttl = true;
    } else if (expire_keyword(a, u, abs) && !keep_ttl && !has_expire && has_next) {
      has_expire = true;
      unit = u;
      absolute = abs;
      expire_arg = argv[++i];
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  uint64_t at_ms = 0;
  if (has_expire && !expire_at_from_arg(ctx, argv[0], expire_arg, unit, absolute, at_ms)) return;
  // Only GET cares about the old type: a plain SET replaces a value of any type.
  Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  if (get_old) {
    if (e != nullptr && e->type() != ValueType::kString) return ctx.out.error(kErrWrongType);
    reply_string_or_null(ctx, e);
  }
  if ((nx && e != nullptr) || (xx && e == nullptr)) {
    if (!get_old) ctx.out.null();
    return;
  }
  ctx.store.set_string(argv[1], argv[2], at_ms, keep_ttl);
  if (!get_old) ctx.out.ok();
}

void setnx(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  if (!value_fits(ctx, argv[2])) return;
  if (ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite) != nullptr) {
    ctx.out.integer(0);
    return;
  }
  ctx.store.set_string(argv[1], argv[2], 0, false);
  ctx.out.integer(1);
}

static void setex_generic(ExecContext& ctx, Argv argv, ExpireUnit unit) {
  TALLY_ASSERT(argv.size() == 4);
  if (!value_fits(ctx, argv[3])) return;
  uint64_t at_ms = 0;
  if (!expire_at_from_arg(ctx, argv[0], argv[2], unit, false, at_ms)) return;
  ctx.store.set_string(argv[1], argv[3], at_ms, false);
  ctx.out.ok();
}

void setex(ExecContext& ctx, Argv argv) { setex_generic(ctx, argv, ExpireUnit::kSeconds); }
void psetex(ExecContext& ctx, Argv argv) { setex_generic(ctx, argv, ExpireUnit::kMillis); }

void getset(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  if (!value_fits(ctx, argv[2])) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kWrite, e)) return;
  reply_string_or_null(ctx, e);
  ctx.store.set_string(argv[1], argv[2], 0, false);
}

void getdel(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  reply_string_or_null(ctx, e);
  if (e != nullptr) ctx.store.erase(e);
}

void getex(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  bool persist = false, has_expire = false;
  ExpireUnit unit = ExpireUnit::kSeconds;
  bool absolute = false;
  std::string_view expire_arg;
  for (size_t i = 2; i < argv.size(); ++i) {
    ExpireUnit u;
    bool abs;
    if (iequals(argv[i], "persist") && !has_expire) {
      persist = true;
    } else if (expire_keyword(argv[i], u, abs) && !persist && !has_expire && i + 1 < argv.size()) {
      has_expire = true;
      unit = u;
      absolute = abs;
      expire_arg = argv[++i];
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  uint64_t at_ms = 0;
  if (has_expire && !expire_at_from_arg(ctx, argv[0], expire_arg, unit, absolute, at_ms)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  reply_string_or_null(ctx, e);
  if (e == nullptr) return;
  if (has_expire && at_ms <= ctx.now_ms) {
    ctx.store.erase(e);
  } else if (has_expire) {
    ctx.store.touch_cas(ctx.store.set_expire(e, at_ms));  // WATCH sees it
  } else if (persist && e->has_expire()) {
    ctx.store.touch_cas(ctx.store.persist(e));
  }
}

void mget(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  ctx.out.array(argv.size() - 1);
  for (size_t i = 1; i < argv.size(); ++i) {
    const Entry* e = ctx.store.lookup(argv[i], ctx.now_ms, Access::kRead);
    reply_string_or_null(ctx, e != nullptr && e->type() == ValueType::kString ? e : nullptr);
  }
}

void mset(ExecContext& ctx, Argv argv) {
  if (argv.size() % 2 == 0) return wrong_arity(ctx, argv[0]);
  if (!values_fit(ctx, argv, 2, 2)) return;
  for (size_t i = 1; i + 1 < argv.size(); i += 2) ctx.store.set_string(argv[i], argv[i + 1], 0, false);
  ctx.out.ok();
}

void msetnx(ExecContext& ctx, Argv argv) {
  if (argv.size() % 2 == 0) return wrong_arity(ctx, argv[0]);
  if (!values_fit(ctx, argv, 2, 2)) return;
  for (size_t i = 1; i + 1 < argv.size(); i += 2) {
    if (ctx.store.lookup(argv[i], ctx.now_ms, Access::kWrite) != nullptr) {
      ctx.out.integer(0);
      return;
    }
  }
  for (size_t i = 1; i + 1 < argv.size(); i += 2) ctx.store.set_string(argv[i], argv[i + 1], 0, false);
  ctx.out.integer(1);
}

void append(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kWrite, e)) return;
  if (e == nullptr) {
    ctx.store.set_string(argv[1], argv[2], 0, false);
    ctx.out.integer(static_cast<int64_t>(argv[2].size()));
    return;
  }
  const size_t total = e->value_bytes() + argv[2].size();
  if (total > store::Store::kStringBytesMax) {
    ctx.out.error(kErrMaxBulk);
    return;
  }
  std::string joined;
  joined.reserve(total);
  joined.append(e->string_value()).append(argv[2]);
  ctx.store.set_string(argv[1], joined, 0, /*keep_ttl=*/true, e->client_flags());
  ctx.out.integer(static_cast<int64_t>(total));
}

// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence of two
// strings by the dynamic-programming table (memory (|a|+1)(|b|+1) words, bounded by the bulk limit),
// walked back from the end as Redis walks it, so the string and the ranges are the ones Redis gives.
void lcs(ExecContext& ctx, Argv argv) {
  const Entry* ea = ctx.store.lookup(argv[1], ctx.now_ms, Access::kRead);
  const Entry* eb = ctx.store.lookup(argv[2], ctx.now_ms, Access::kRead);
  if ((ea != nullptr && ea->type() != ValueType::kString) || (eb != nullptr && eb->type() != ValueType::kString)) {
    return ctx.out.error("ERR The specified keys must contain string values");
  }
  bool want_len = false, want_idx = false, with_len = false;
  int64_t min_len = 0;
  for (size_t j = 3; j < argv.size(); ++j) {
    if (iequals(argv[j], "idx")) {
      want_idx = true;
    } else if (iequals(argv[j], "len")) {
      want_len = true;
    } else if (iequals(argv[j], "withmatchlen")) {
      with_len = true;
    } else if (iequals(argv[j], "minmatchlen") && j + 1 < argv.size()) {
      if (!parse_i64(argv[++j], min_len)) return ctx.out.error(kErrNotInt);
      if (min_len < 0) min_len = 0;
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  if (want_idx && want_len) return ctx.out.error("ERR If you want both the length and indexes, please just use IDX.");
  const std::string a(ea != nullptr ? ea->string_value() : std::string_view{});
  const std::string b(eb != nullptr ? eb->string_value() : std::string_view{});
  const uint64_t cells = (uint64_t{a.size()} + 1) * (b.size() + 1);
  if (cells * sizeof(uint32_t) > store::Store::kStringBytesMax) {
    return ctx.out.error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
  }
  const size_t w = b.size() + 1;
  std::vector<uint32_t> t(static_cast<size_t>(cells), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return t[i * w + j]; };
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      at(i, j) = a[i - 1] == b[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  const uint32_t total = at(a.size(), b.size());
  if (want_len) return ctx.out.integer(total);
  std::string result(total, '\0');
  size_t list_at = 0, ranges = 0;
  if (want_idx) {
    ctx.out.map(2);
    ctx.out.bulk("matches");
    list_at = ctx.out.size();
    ctx.out.array(0);
  }
  // Walk back from the end; a run of matches on both strings is one range, emitted when it ends.
  const size_t none = a.size();
  size_t a_start = none, a_end = 0, b_start = 0, b_end = 0;
  size_t i = a.size(), j = b.size(), k = total;
  while (i > 0 && j > 0) {
    bool emit = false;
    if (a[i - 1] == b[j - 1]) {
      result[k - 1] = a[i - 1];
      if (a_start == none) {
        a_start = a_end = i - 1;
        b_start = b_end = j - 1;
      } else if (a_start == i && b_start == j) {
        --a_start;
        --b_start;
      } else {
        emit = true;
      }
      if (a_start == 0 || b_start == 0) emit = true;
      --k;
      --i;
      --j;
    } else {
      if (at(i - 1, j) > at(i, j - 1)) {
        --i;
      } else {
        --j;
      }
      if (a_start != none) emit = true;
    }
    if (emit) {
      const uint64_t match_len = a_end - a_start + 1;
      if (want_idx && (min_len == 0 || match_len >= static_cast<uint64_t>(min_len))) {
        ctx.out.array(with_len ? 3 : 2);
        ctx.out.array(2);
        ctx.out.integer(static_cast<int64_t>(a_start));
        ctx.out.integer(static_cast<int64_t>(a_end));
        ctx.out.array(2);
        ctx.out.integer(static_cast<int64_t>(b_start));
        ctx.out.integer(static_cast<int64_t>(b_end));
        if (with_len) ctx.out.integer(static_cast<int64_t>(match_len));
        ++ranges;
      }
      a_start = none;
    }
  }
  if (want_idx) {
    ctx.out.set_count(list_at, ranges);
    ctx.out.bulk("len");
    ctx.out.integer(total);
    return;
  }
  ctx.out.bulk(result);
}

void strlen(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->value_bytes()));
}

void getrange(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  int64_t start = 0, end = 0;
  if (!parse_i64(argv[2], start) || !parse_i64(argv[3], end)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kRead, e)) return;
  const std::string_view v = e == nullptr ? std::string_view() : e->string_value();
  const int64_t len = static_cast<int64_t>(v.size());
  // Redis's clamping rules, including the empty result for two negative indexes out of order.
  if (start < 0 && end < 0 && start > end) return ctx.out.bulk("");
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return ctx.out.bulk("");
  ctx.out.bulk(v.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

void setrange(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  int64_t offset = 0;
  if (!parse_i64(argv[2], offset)) return ctx.out.error(kErrNotInt);
  if (offset < 0) return ctx.out.error(kErrOffset);
  const std::string_view piece = argv[3];
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kWrite, e)) return;
  const int64_t cur_len = e == nullptr ? 0 : static_cast<int64_t>(e->value_bytes());
  if (piece.empty()) return ctx.out.integer(cur_len);
  if (static_cast<uint64_t>(offset) + piece.size() > store::Store::kStringBytesMax) {
    return ctx.out.error(kErrMaxBulk);
  }
  std::string value(e == nullptr ? std::string_view() : e->string_value());
  const size_t need = static_cast<size_t>(offset) + piece.size();
  if (value.size() < need) value.resize(need, '\0');
  std::memcpy(value.data() + offset, piece.data(), piece.size());
  ctx.store.set_string(argv[1], value, 0, /*keep_ttl=*/true, e != nullptr ? e->client_flags() : 0);
  ctx.out.integer(static_cast<int64_t>(value.size()));
}

void incr(ExecContext& ctx, Argv argv) { incr_by(ctx, argv[1], 1); }
void decr(ExecContext& ctx, Argv argv) { incr_by(ctx, argv[1], -1); }

void incrby(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  int64_t by = 0;
  if (!parse_i64(argv[2], by)) return ctx.out.error(kErrNotInt);
  incr_by(ctx, argv[1], by);
}

void decrby(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  int64_t by = 0;
  if (!parse_i64(argv[2], by)) return ctx.out.error(kErrNotInt);
  if (by == INT64_MIN) return ctx.out.error("ERR decrement would overflow");
  incr_by(ctx, argv[1], -by);
}

void incrbyfloat(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kString, Access::kWrite, e)) return;
  long double value = 0, by = 0;
  if ((e != nullptr && !parse_ld(e->string_value(), value)) || !parse_ld(argv[2], by)) {
    return ctx.out.error(kErrNotFloat);
  }
  value += by;
  if (std::isnan(value) || std::isinf(value)) return ctx.out.error(kErrNanInf);
  char buf[kLongDoubleCharsMax];
  const size_t n = format_ld_human(value, buf, sizeof buf);
  ctx.store.set_string(argv[1], std::string_view(buf, n), 0, /*keep_ttl=*/true, e != nullptr ? e->client_flags() : 0);
  ctx.out.bulk(std::string_view(buf, n));
}

}  // namespace tally::server::cmd
