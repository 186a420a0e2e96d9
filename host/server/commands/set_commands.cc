// Set commands. Multi-key ones (SINTER, SUNION, SDIFF and their STORE forms, SMOVE) see only
// this shard's keys: the server splits or refuses cross-shard calls before they get here.
#include <algorithm>
#include <string>
#include <unordered_set>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/store/glob.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::SetValue;
using store::ValueType;

enum class SetOp : uint8_t { kInter, kUnion, kDiff };

// Looks up every source set; replies WRONGTYPE and returns false when one holds another type.
// Missing keys are nullptr (an empty set).
bool gather_sets(ExecContext& ctx, Argv keys, std::vector<const SetValue*>& sets) {
  sets.clear();
  for (std::string_view k : keys) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, k, ValueType::kSet, Access::kRead, e)) return false;
    sets.push_back(e == nullptr ? nullptr : e->set_value());
  }
  return true;
}

// Computes the operation over the sets into out (views into the sets' members).
void compute(SetOp op, const std::vector<const SetValue*>& sets, std::vector<std::string_view>& out) {
  out.clear();
  TALLY_ASSERT(!sets.empty());
  if (op == SetOp::kInter) {
    if (std::find(sets.begin(), sets.end(), nullptr) != sets.end()) return;
    // Walk the smallest set and probe the others.
    const SetValue* smallest = *std::min_element(sets.begin(), sets.end(),
                                                 [](const SetValue* a, const SetValue* b) { return a->size() < b->size(); });
    for (const std::string& m : smallest->members()) {
      bool in_all = true;
      for (const SetValue* s : sets) {
        if (s != smallest && !s->contains(m)) {
          in_all = false;
          break;
        }
      }
      if (in_all) out.push_back(m);
    }
  } else if (op == SetOp::kUnion) {
    std::unordered_set<std::string_view> seen;
    for (const SetValue* s : sets) {
      if (s == nullptr) continue;
      for (const std::string& m : s->members()) {
        if (seen.insert(m).second) out.push_back(m);
      }
    }
  } else {
    if (sets[0] == nullptr) return;
    for (const std::string& m : sets[0]->members()) {
      bool elsewhere = false;
      for (size_t i = 1; i < sets.size() && !elsewhere; ++i) elsewhere = sets[i] != nullptr && sets[i]->contains(m);
      if (!elsewhere) out.push_back(m);
    }
  }
}

void set_op(ExecContext& ctx, Argv argv, SetOp op) {
  TALLY_ASSERT(argv.size() >= 2);
  std::vector<const SetValue*> sets;
  if (!gather_sets(ctx, argv.subspan(1), sets)) return;
  std::vector<std::string_view> result;
  compute(op, sets, result);
  ctx.out.set(result.size());
  for (std::string_view m : result) ctx.out.bulk(m);
}

void set_op_store(ExecContext& ctx, Argv argv, SetOp op) {
  TALLY_ASSERT(argv.size() >= 3);
  std::vector<const SetValue*> sets;
  if (!gather_sets(ctx, argv.subspan(2), sets)) return;
  std::vector<std::string_view> views;
  compute(op, sets, views);
  // Copy: the destination may be one of the sources and is replaced below.
  std::vector<std::string> result(views.begin(), views.end());
  ctx.store.erase(argv[1], ctx.now_ms);
  if (!result.empty()) {
    Entry* dst = ctx.store.create_set(argv[1]);
    for (const std::string& m : result) ctx.store.set_add(dst, m);
  }
  ctx.out.integer(static_cast<int64_t>(result.size()));
}

// Removes a member and deletes the key when the set becomes empty (Redis never keeps empty sets).
void remove_member(ExecContext& ctx, Entry* e, std::string_view m) {
  ctx.store.set_remove(e, m);
  if (e->set_value()->size() == 0) ctx.store.erase(e);
}

}  // namespace

void sadd(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kWrite, e)) return;
  if (e == nullptr) e = ctx.store.create_set(argv[1]);
  int64_t added = 0;
  for (size_t i = 2; i < argv.size(); ++i) added += ctx.store.set_add(e, argv[i]) ? 1 : 0;
  ctx.out.integer(added);
}

void srem(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kWrite, e)) return;
  int64_t removed = 0;
  for (size_t i = 2; i < argv.size() && e != nullptr; ++i) removed += ctx.store.set_remove(e, argv[i]) ? 1 : 0;
  if (e != nullptr && e->set_value()->size() == 0) ctx.store.erase(e);
  ctx.out.integer(removed);
}

void smembers(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  if (e == nullptr) return ctx.out.set(0);
  ctx.out.set(e->set_value()->size());
  for (const std::string& m : e->set_value()->members()) ctx.out.bulk(m);
}

void sismember(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  ctx.out.integer(e != nullptr && e->set_value()->contains(argv[2]) ? 1 : 0);
}

void smismember(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  ctx.out.array(argv.size() - 2);
  for (size_t i = 2; i < argv.size(); ++i) ctx.out.integer(e != nullptr && e->set_value()->contains(argv[i]) ? 1 : 0);
}

void scard(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 2);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->set_value()->size()));
}

void spop(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  if (argv.size() > 3) return ctx.out.error(kErrSyntax);
  int64_t count = -1;  // -1: the single-member form
  if (argv.size() == 3) {
    if (!parse_i64(argv[2], count)) return ctx.out.error(kErrNotInt);
    if (count < 0) return ctx.out.error(kErrMustBePositive);
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kWrite, e)) return;
  if (count < 0) {
    if (e == nullptr) return ctx.out.null();
    const std::string m = random_element(e->set_value()->members(), ctx.store.rng());
    ctx.out.bulk(m);
    remove_member(ctx, e, m);
    return;
  }
  if (e == nullptr || count == 0) return ctx.out.set(0);
  const size_t n = std::min<size_t>(static_cast<size_t>(count), e->set_value()->size());
  ctx.out.set(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string m = random_element(e->set_value()->members(), ctx.store.rng());
    ctx.out.bulk(m);
    const bool last = e->set_value()->size() == 1;
    remove_member(ctx, e, m);
    if (last) break;
  }
}

void srandmember(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 2);
  if (argv.size() > 3) return ctx.out.error(kErrSyntax);
  if (argv.size() == 2) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
    if (e == nullptr) return ctx.out.null();
    return ctx.out.bulk(random_element(e->set_value()->members(), ctx.store.rng()));
  }
  int64_t count = 0;
  if (!parse_i64(argv[2], count)) return ctx.out.error(kErrNotInt);
  if (count == INT64_MIN) return ctx.out.error(kErrLongRange);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  if (e == nullptr || count == 0) return ctx.out.array(0);
  const auto& members = e->set_value()->members();
  if (count < 0) {  // repetitions allowed
    ctx.out.array(static_cast<size_t>(-count));
    for (int64_t i = 0; i < -count; ++i) ctx.out.bulk(random_element(members, ctx.store.rng()));
    return;
  }
  if (static_cast<size_t>(count) >= members.size()) {
    ctx.out.array(members.size());
    for (const std::string& m : members) ctx.out.bulk(m);
    return;
  }
  // Distinct members: a partial Fisher-Yates shuffle over views of all members.
  std::vector<std::string_view> all(members.begin(), members.end());
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) {
    std::swap(all[i], all[i + ctx.store.rng().uniform(all.size() - i)]);
  }
  ctx.out.array(static_cast<size_t>(count));
  for (size_t i = 0; i < static_cast<size_t>(count); ++i) ctx.out.bulk(all[i]);
}

void sinter(ExecContext& ctx, Argv argv) { set_op(ctx, argv, SetOp::kInter); }
void sunion(ExecContext& ctx, Argv argv) { set_op(ctx, argv, SetOp::kUnion); }
void sdiff(ExecContext& ctx, Argv argv) { set_op(ctx, argv, SetOp::kDiff); }
void sinterstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kInter); }
void sunionstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kUnion); }
void sdiffstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kDiff); }

void sintercard(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  int64_t numkeys = 0;
  if (!parse_i64(argv[1], numkeys) || numkeys < 1) return ctx.out.error("ERR numkeys should be greater than 0");
  if (numkeys > static_cast<int64_t>(argv.size()) - 2) {
    return ctx.out.error("ERR Number of keys can't be greater than number of args");
  }
  int64_t limit = 0;  // 0 = no limit
  for (size_t i = 2 + static_cast<size_t>(numkeys); i < argv.size(); i += 2) {
    if (iequals(argv[i], "limit") && i + 1 < argv.size()) {
      if (!parse_i64(argv[i + 1], limit) || limit < 0) return ctx.out.error("ERR LIMIT can't be negative");
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  std::vector<const SetValue*> sets;
  if (!gather_sets(ctx, argv.subspan(2, static_cast<size_t>(numkeys)), sets)) return;
  std::vector<std::string_view> result;
  compute(SetOp::kInter, sets, result);
  const size_t n = limit > 0 ? std::min<size_t>(result.size(), static_cast<size_t>(limit)) : result.size();
  ctx.out.integer(static_cast<int64_t>(n));
}

void smove(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() == 4);
  Entry* src = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  Entry* dst = ctx.store.lookup(argv[2], ctx.now_ms, Access::kWrite);
  if (src == nullptr) return ctx.out.integer(0);
  if (src->type() != ValueType::kSet || (dst != nullptr && dst->type() != ValueType::kSet)) {
    return ctx.out.error(kErrWrongType);
  }
  if (src == dst) return ctx.out.integer(src->set_value()->contains(argv[3]) ? 1 : 0);
  if (!src->set_value()->contains(argv[3])) return ctx.out.integer(0);
  remove_member(ctx, src, argv[3]);
  // Removing from src may have moved nothing else, but look dst up again to be safe.
  dst = ctx.store.lookup(argv[2], ctx.now_ms, Access::kPeek);
  if (dst == nullptr) dst = ctx.store.create_set(argv[2]);
  ctx.store.set_add(dst, argv[3]);
  ctx.out.integer(1);
}

void sscan(ExecContext& ctx, Argv argv) {
  TALLY_ASSERT(argv.size() >= 3);
  ScanArgs args;
  if (!parse_scan_args(ctx, argv, 2, /*allow_type=*/false, args)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kSet, Access::kRead, e)) return;
  std::vector<std::string_view> found;
  uint64_t next = 0;
  if (e != nullptr) {
    next = scan_container(e->set_value()->members(), args.cursor, static_cast<size_t>(args.count),
                          [&](const std::string& m) {
                            if (!args.has_pattern || store::glob_match(args.pattern, m)) found.push_back(m);
                          });
  }
  char buf[24];
  ctx.out.array(2);
  ctx.out.bulk(format_i64(static_cast<int64_t>(next), buf));
  ctx.out.array(found.size());
  for (std::string_view m : found) ctx.out.bulk(m);
}

}  // namespace tally::server::cmd
