// Hash commands. Field counters (HINCRBY, HINCRBYFLOAT) follow Redis's parse and overflow rules.
#include <cmath>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/store/glob.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::HashValue;
using store::ValueType;

// Write lookup that creates an empty hash when the key is absent; nullptr after WRONGTYPE.
Entry* hash_for_write(ExecContext& ctx, std::string_view key) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, key, ValueType::kHash, Access::kWrite, e)) return nullptr;
  return e != nullptr ? e : ctx.store.create_hash(key);
}

void reply_pair(ExecContext& ctx, const std::pair<const std::string, std::string>& kv, bool nested) {
  // HRANDFIELD WITHVALUES nests each pair (RESP3 shows them so, RESP2 flattens them).
  if (nested) ctx.out.array(2);
  ctx.out.bulk(kv.first);
  ctx.out.bulk(kv.second);
}

// HRANDFIELD's outer array: of pairs when nested (flat in RESP2), of fields otherwise.
void open_array(ExecContext& ctx, size_t n, bool nested) {
  if (nested) {
    ctx.out.array_flat_in_resp2(n);
  } else {
    ctx.out.array(n);
  }
}

}  // namespace

void hset(ExecContext& ctx, Argv argv) {
  if (argv.size() < 4 || argv.size() % 2 == 1) return wrong_arity(ctx, argv[0]);
  Entry* e = hash_for_write(ctx, argv[1]);
  if (e == nullptr) return;
  int64_t created = 0;
  for (size_t i = 2; i + 1 < argv.size(); i += 2) created += ctx.store.hash_set(e, argv[i], argv[i + 1]) ? 1 : 0;
  if (iequals(argv[0], "hmset")) return ctx.out.ok();
  ctx.out.integer(created);
}

void hmset(ExecContext& ctx, Argv argv) { hset(ctx, argv); }

void hsetnx(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  Entry* e = hash_for_write(ctx, argv[1]);
  if (e == nullptr) return;
  if (e->hash_value()->find(argv[2]) != nullptr) return ctx.out.integer(0);
  ctx.store.hash_set(e, argv[2], argv[3]);
  ctx.out.integer(1);
}

void hget(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  const std::string* v = e == nullptr ? nullptr : e->hash_value()->find(argv[2]);
  if (v == nullptr) return ctx.out.null();
  ctx.out.bulk(*v);
}

void hmget(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  ctx.out.array(argv.size() - 2);
  for (size_t i = 2; i < argv.size(); ++i) {
    const std::string* v = e == nullptr ? nullptr : e->hash_value()->find(argv[i]);
    if (v == nullptr) {
      ctx.out.null();
    } else {
      ctx.out.bulk(*v);
    }
  }
}

void hdel(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kWrite, e)) return;
  int64_t removed = 0;
  for (size_t i = 2; i < argv.size() && e != nullptr; ++i) removed += ctx.store.hash_del(e, argv[i]) ? 1 : 0;
  if (e != nullptr && e->hash_value()->size() == 0) ctx.store.erase(e);
  ctx.out.integer(removed);
}

void hlen(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->hash_value()->size()));
}

void hexists(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  ctx.out.integer(e != nullptr && e->hash_value()->find(argv[2]) != nullptr ? 1 : 0);
}

void hgetall(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  if (e == nullptr) return ctx.out.map(0);
  ctx.out.map(e->hash_value()->size());
  for (const auto& kv : e->hash_value()->fields()) reply_pair(ctx, kv, false);
}

void hkeys(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  if (e == nullptr) return ctx.out.array(0);
  ctx.out.array(e->hash_value()->size());
  for (const auto& kv : e->hash_value()->fields()) ctx.out.bulk(kv.first);
}

void hvals(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  if (e == nullptr) return ctx.out.array(0);
  ctx.out.array(e->hash_value()->size());
  for (const auto& kv : e->hash_value()->fields()) ctx.out.bulk(kv.second);
}

void hincrby(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  int64_t by = 0;
  if (!parse_i64(argv[3], by)) return ctx.out.error(kErrNotInt);
  Entry* e = hash_for_write(ctx, argv[1]);
  if (e == nullptr) return;
  int64_t value = 0;
  if (const std::string* cur = e->hash_value()->find(argv[2]); cur != nullptr && !parse_i64(*cur, value)) {
    return ctx.out.error("ERR hash value is not an integer");
  }
  if ((by < 0 && value < 0 && by < INT64_MIN - value) || (by > 0 && value > 0 && by > INT64_MAX - value)) {
    return ctx.out.error(kErrOverflow);
  }
  value += by;
  char buf[24];
  ctx.store.hash_set(e, argv[2], format_i64(value, buf));
  ctx.out.integer(value);
}

void hincrbyfloat(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  long double by = 0;
  if (!parse_ld(argv[3], by)) return ctx.out.error(kErrNotFloat);
  if (std::isinf(by)) return ctx.out.error("ERR value is NaN or Infinity");
  Entry* e = hash_for_write(ctx, argv[1]);
  if (e == nullptr) return;
  long double value = 0;
  if (const std::string* cur = e->hash_value()->find(argv[2]); cur != nullptr && !parse_ld(*cur, value)) {
    return ctx.out.error("ERR hash value is not a float");
  }
  value += by;
  if (std::isnan(value) || std::isinf(value)) return ctx.out.error(kErrNanInf);
  char buf[kLongDoubleCharsMax];
  const std::string_view s(buf, format_ld_human(value, buf, sizeof buf));
  ctx.store.hash_set(e, argv[2], s);
  ctx.out.bulk(s);
}

void hstrlen(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  const std::string* v = e == nullptr ? nullptr : e->hash_value()->find(argv[2]);
  ctx.out.integer(v == nullptr ? 0 : static_cast<int64_t>(v->size()));
}

void hscan(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  ScanArgs args;
  if (!parse_scan_args(ctx, argv, 2, /*allow_type=*/false, args)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  std::vector<const std::pair<const std::string, std::string>*> found;
  uint64_t next = 0;
  if (e != nullptr) {
    next = scan_container(e->hash_value()->fields(), args.cursor, static_cast<size_t>(args.count),
                          [&](const std::pair<const std::string, std::string>& kv) {
                            if (!args.has_pattern || store::glob_match(args.pattern, kv.first)) found.push_back(&kv);
                          });
  }
  char buf[24];
  ctx.out.array(2);
  ctx.out.bulk(format_i64(static_cast<int64_t>(next), buf));
  ctx.out.array(found.size() * 2);
  for (const auto* kv : found) reply_pair(ctx, *kv, false);
}

void hrandfield(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  if (argv.size() == 2) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
    if (e == nullptr) return ctx.out.null();
    return ctx.out.bulk(random_element(e->hash_value()->fields(), ctx.store.rng()).first);
  }
  if (argv.size() > 4 || (argv.size() == 4 && !iequals(argv[3], "withvalues"))) return ctx.out.error(kErrSyntax);
  const bool with_values = argv.size() == 4;
  int64_t count = 0;
  if (!parse_i64(argv[2], count)) return ctx.out.error(kErrNotInt);
  if (count == INT64_MIN) return ctx.out.error(kErrLongRange);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kHash, Access::kRead, e)) return;
  if (e == nullptr || count == 0) return ctx.out.array(0);
  const auto& fields = e->hash_value()->fields();
  auto emit = [&](const std::pair<const std::string, std::string>& kv) {
    if (with_values) {
      reply_pair(ctx, kv, true);
    } else {
      ctx.out.bulk(kv.first);
    }
  };
  if (count < 0) {  // repetitions allowed
    open_array(ctx, static_cast<size_t>(-count), with_values);
    for (int64_t i = 0; i < -count; ++i) emit(random_element(fields, ctx.store.rng()));
    return;
  }
  if (static_cast<size_t>(count) >= fields.size()) {
    open_array(ctx, fields.size(), with_values);
    for (const auto& kv : fields) emit(kv);
    return;
  }
  std::vector<const std::pair<const std::string, std::string>*> all;
  all.reserve(fields.size());
  for (const auto& kv : fields) all.push_back(&kv);
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) {
    std::swap(all[i], all[i + ctx.store.rng().uniform(all.size() - i)]);
  }
  open_array(ctx, static_cast<size_t>(count), with_values);
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) emit(*all[i]);
}

}  // namespace tally::server::cmd
