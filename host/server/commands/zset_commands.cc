// Sorted set commands, with redis-server 7's replies and errors. Scores are doubles (never NaN);
// members order by score, then by their bytes. A sorted set left empty is deleted. RESP3 clients get
// scores as doubles and WITHSCORES results as [member, score] pairs; RESP2 clients get them flat, as
// bulk strings, as Redis gives them.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "host/proto/reply.h"
#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/store/glob.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::LexBound;
using store::ScoreBound;
using store::ValueType;
using store::ZSetValue;
using Node = ZSetValue::Node;

constexpr std::string_view kErrMinMaxFloat = "ERR min or max is not a float";
constexpr std::string_view kErrMinMaxLex = "ERR min or max not valid string range item";
constexpr std::string_view kErrScoreNaN = "ERR resulting score is not a number (NaN)";

// A score as ZADD takes it (Redis's getDoubleFromObject): strtod's forms ("inf", "-inf", "1e3"), all of
// the argument, no leading space, not NaN, no overflow or underflow.
bool parse_score(std::string_view s, double& out) {
  if (s.empty() || s.size() >= 256) return false;
  char buf[256];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  if (std::isspace(static_cast<unsigned char>(buf[0]))) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(buf, &end);
  if (end != buf + s.size() || std::isnan(v)) return false;
  if (errno == ERANGE && (std::isinf(v) || v == 0)) return false;
  out = v;
  return true;
}

// A range bound as Redis's zslParseRange reads it: plain strtod over the rest of the argument (so "("
// alone is an exclusive 0), not NaN.
bool parse_score_bound(std::string_view s, ScoreBound& b) {
  b.exclusive = !s.empty() && s[0] == '(';
  if (b.exclusive) s.remove_prefix(1);
  if (s.size() >= 256) return false;
  char buf[256];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  char* end = nullptr;
  b.value = std::strtod(buf, &end);
  return end == buf + s.size() && !std::isnan(b.value);
}

// The command's name as Redis words it in errors (lower case).
std::string lower_name(std::string_view s) {
  std::string n(s);
  for (char& c : n) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return n;
}

bool parse_lex_bound(std::string_view s, LexBound& b) {
  if (s == "-") {
    b.kind = LexBound::kMin;
  } else if (s == "+") {
    b.kind = LexBound::kMax;
  } else if (!s.empty() && (s[0] == '[' || s[0] == '(')) {
    b.kind = s[0] == '[' ? LexBound::kInclusive : LexBound::kExclusive;
    b.value = s.substr(1);
  } else {
    return false;
  }
  return true;
}

// A score as a RESP2 bulk string or a RESP3 double (the session picks).
void reply_score(ExecContext& ctx, double score) { ctx.out.dbl(score); }

// One result element.
struct Item {
  std::string_view member;
  double score;
};

// An array of members, or of [member, score] pairs (flat in RESP2) when with_scores.
void reply_items(ExecContext& ctx, const std::vector<Item>& items, bool with_scores) {
  if (!with_scores) {
    ctx.out.array(items.size());
    for (const Item& it : items) ctx.out.bulk(it.member);
    return;
  }
  ctx.out.array_flat_in_resp2(items.size());
  for (const Item& it : items) {
    ctx.out.array(2);
    ctx.out.bulk(it.member);
    reply_score(ctx, it.score);
  }
}

void drop_if_empty(ExecContext& ctx, Entry* e) {
  if (e->zset_value()->empty()) ctx.store.erase(e);
}

// Replaces `key` with a sorted set of `items` (deleted when there are none). Copies the members
// first: they may be views into the key being replaced.
void store_items(ExecContext& ctx, std::string_view key, const std::vector<Item>& items) {
  std::vector<std::pair<std::string, double>> copy;
  copy.reserve(items.size());
  for (const Item& it : items) copy.emplace_back(std::string(it.member), it.score);
  ctx.store.erase(key, ctx.now_ms);
  if (copy.empty()) return;
  Entry* e = ctx.store.create_zset(key);
  ctx.store.edit_zset(e, [&](ZSetValue& z) {
    for (const auto& [m, s] : copy) z.put(m, s);
    return 0;
  });
}

// ---- ranges ----

enum class RangeBy : uint8_t { kRank, kScore, kLex };

struct RangeSpec {
  RangeBy by = RangeBy::kRank;
  bool rev = false;
  bool with_scores = false;
  bool has_limit = false;
  int64_t offset = 0;
  int64_t count = -1;
  std::string_view min_arg, max_arg;  // as given (for REV ranges by score or lex: max first)
};

// Whether a range can hold anything at all (Redis's emptiness rules for min > max, or equal bounds
// with one exclusive).
bool empty_range(const ScoreBound& min, const ScoreBound& max) {
  return min.value > max.value || (min.value == max.value && (min.exclusive || max.exclusive));
}

bool empty_range(const LexBound& min, const LexBound& max) {
  if (min.kind == LexBound::kMax || max.kind == LexBound::kMin) return true;
  if (min.kind == LexBound::kMin || max.kind == LexBound::kMax) return false;
  const int c = min.value.compare(max.value);
  return c > 0 || (c == 0 && (min.kind == LexBound::kExclusive || max.kind == LexBound::kExclusive));
}

// What a bound compares in an element: its score, or its member for lex ranges.
double key_of(const Node* n, const ScoreBound&) { return n->score; }
std::string_view key_of(const Node* n, const LexBound&) { return n->member; }

// The first / last element in a range as Redis finds it (zslFirstInRange, zslFirstInLexRange and their
// Last forms): the set's ends must overlap the range, then the first element past the near bound must
// be within the far one. For lex ranges over members of unequal scores this is Redis's exact walk.
template <typename Bound>
bool overlaps(const ZSetValue& z, const Bound& min, const Bound& max) {
  return !z.empty() && !empty_range(min, max) && ZSetValue::within_min(min, key_of(z.last(), min)) &&
         ZSetValue::within_max(max, key_of(z.first(), max));
}

template <typename Bound>
const Node* first_in_range(const ZSetValue& z, const Bound& min, const Bound& max) {
  if (!overlaps(z, min, max)) return nullptr;
  const Node* x = z.first_from(min);
  return x != nullptr && ZSetValue::within_max(max, key_of(x, max)) ? x : nullptr;
}

template <typename Bound>
const Node* last_in_range(const ZSetValue& z, const Bound& min, const Bound& max) {
  if (!overlaps(z, min, max)) return nullptr;
  const Node* x = z.last_to(max);
  return x != nullptr && ZSetValue::within_min(min, key_of(x, min)) ? x : nullptr;
}

// ZCOUNT / ZLEXCOUNT: rank arithmetic between the first and last element in range, O(log n).
template <typename Bound>
int64_t count_in_range(const ZSetValue& z, const Bound& min, const Bound& max) {
  const Node* a = first_in_range(z, min, max);
  if (a == nullptr) return 0;
  const Node* b = last_in_range(z, min, max);
  const auto ra = static_cast<int64_t>(z.rank_of(a));
  if (b == nullptr) return static_cast<int64_t>(z.size()) - ra;
  return static_cast<int64_t>(z.rank_of(b)) - ra + 1;
}

// Collects a range of `z` by the spec (its bounds already validated by parse_bounds).
void collect_range(const ZSetValue& z, const RangeSpec& spec, const ScoreBound& smin, const ScoreBound& smax,
                   const LexBound& lmin, const LexBound& lmax, int64_t start, int64_t stop, std::vector<Item>& out) {
  out.clear();
  if (z.empty()) return;
  if (spec.by == RangeBy::kRank) {
    const auto n = static_cast<int64_t>(z.size());
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (start < 0) start = 0;
    if (start > stop || start >= n) return;
    if (stop >= n) stop = n - 1;
    const uint64_t len = static_cast<uint64_t>(stop - start + 1);
    out.reserve(len);
    if (!spec.rev) {
      const Node* x = z.at_rank(static_cast<uint64_t>(start));
      for (uint64_t i = 0; i < len && x != nullptr; ++i, x = x->next()) out.push_back({x->member, x->score});
    } else {
      const Node* x = z.at_rank(static_cast<uint64_t>(n - 1 - start));
      for (uint64_t i = 0; i < len && x != nullptr; ++i, x = x->prev) out.push_back({x->member, x->score});
    }
    return;
  }
  if (spec.has_limit && spec.offset < 0) return;
  // As Redis walks: the first element in range from the starting end, LIMIT's offset skipped without
  // checks, then elements until one passes the far bound.
  const bool by_score = spec.by == RangeBy::kScore;
  const Node* x = by_score ? (spec.rev ? last_in_range(z, smin, smax) : first_in_range(z, smin, smax))
                           : (spec.rev ? last_in_range(z, lmin, lmax) : first_in_range(z, lmin, lmax));
  for (int64_t skip = spec.has_limit ? spec.offset : 0; x != nullptr && skip > 0; --skip) {
    x = spec.rev ? x->prev : x->next();
  }
  const uint64_t want = spec.has_limit && spec.count >= 0 ? static_cast<uint64_t>(spec.count) : UINT64_MAX;
  for (; x != nullptr && out.size() < want; x = spec.rev ? x->prev : x->next()) {
    const bool ok = by_score ? (spec.rev ? ZSetValue::within_min(smin, x->score) : ZSetValue::within_max(smax, x->score))
                             : (spec.rev ? ZSetValue::within_min(lmin, x->member) : ZSetValue::within_max(lmax, x->member));
    if (!ok) break;
    out.push_back({x->member, x->score});
  }
}

// Parses the options of ZRANGE/ZRANGESTORE from argv[at] on into spec; replies the error on failure.
bool parse_range_options(ExecContext& ctx, Argv argv, size_t at, bool allow_scores, RangeSpec& spec) {
  for (size_t i = at; i < argv.size(); ++i) {
    if (iequals(argv[i], "byscore")) {
      spec.by = RangeBy::kScore;
    } else if (iequals(argv[i], "bylex")) {
      spec.by = RangeBy::kLex;
    } else if (iequals(argv[i], "rev")) {
      spec.rev = true;
    } else if (allow_scores && iequals(argv[i], "withscores")) {
      spec.with_scores = true;
    } else if (iequals(argv[i], "limit") && i + 2 < argv.size()) {
      if (!parse_i64(argv[i + 1], spec.offset) || !parse_i64(argv[i + 2], spec.count)) {
        ctx.out.error(kErrNotInt);
        return false;
      }
      spec.has_limit = true;
      i += 2;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  if (spec.has_limit && spec.by == RangeBy::kRank) {
    ctx.out.error("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    return false;
  }
  if (spec.with_scores && spec.by == RangeBy::kLex) {
    ctx.out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    return false;
  }
  return true;
}

// The bounds of a range: ranks, scores or lex items. REV ranges by score or lex name max first.
bool parse_bounds(ExecContext& ctx, const RangeSpec& spec, std::string_view a, std::string_view b,
                  ScoreBound& smin, ScoreBound& smax, LexBound& lmin, LexBound& lmax, int64_t& start,
                  int64_t& stop) {
  const bool swap = spec.rev && spec.by != RangeBy::kRank;
  const std::string_view lo = swap ? b : a, hi = swap ? a : b;
  switch (spec.by) {
    case RangeBy::kRank:
      if (!parse_i64(a, start) || !parse_i64(b, stop)) {
        ctx.out.error(kErrNotInt);
        return false;
      }
      return true;
    case RangeBy::kScore:
      if (!parse_score_bound(lo, smin) || !parse_score_bound(hi, smax)) {
        ctx.out.error(kErrMinMaxFloat);
        return false;
      }
      return true;
    case RangeBy::kLex:
      if (!parse_lex_bound(lo, lmin) || !parse_lex_bound(hi, lmax)) {
        ctx.out.error(kErrMinMaxLex);
        return false;
      }
      return true;
  }
  TALLY_UNREACHABLE();
}

// Runs a range over argv[src] with bounds argv[a], argv[b]; `dst` empty: reply with the items, else
// store them there and reply with their count.
void range_command(ExecContext& ctx, Argv argv, size_t src, size_t a, size_t b, const RangeSpec& spec,
                   std::string_view dst) {
  ScoreBound smin, smax;
  LexBound lmin, lmax;
  int64_t start = 0, stop = 0;
  if (!parse_bounds(ctx, spec, argv[a], argv[b], smin, smax, lmin, lmax, start, stop)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[src], ValueType::kZSet, Access::kRead, e)) return;
  std::vector<Item> items;
  if (e != nullptr) collect_range(*e->zset_value(), spec, smin, smax, lmin, lmax, start, stop, items);
  if (dst.empty()) return reply_items(ctx, items, spec.with_scores);
  store_items(ctx, dst, items);
  ctx.out.integer(static_cast<int64_t>(items.size()));
}

// ZRANGEBYSCORE / ZREVRANGEBYSCORE / ZRANGEBYLEX / ZREVRANGEBYLEX: [WITHSCORES] [LIMIT o c].
void range_by(ExecContext& ctx, Argv argv, RangeBy by, bool rev) {
  RangeSpec spec;
  spec.by = by;
  spec.rev = rev;
  for (size_t i = 4; i < argv.size(); ++i) {
    if (iequals(argv[i], "withscores")) {
      if (by == RangeBy::kLex) return ctx.out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
      spec.with_scores = true;
    } else if (iequals(argv[i], "limit") && i + 2 < argv.size()) {
      if (!parse_i64(argv[i + 1], spec.offset) || !parse_i64(argv[i + 2], spec.count)) {
        return ctx.out.error(kErrNotInt);
      }
      spec.has_limit = true;
      i += 2;
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  range_command(ctx, argv, 1, 2, 3, spec, {});
}

// ---- ZADD ----

struct ZaddFlags {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = false;
};

// Applies one score to a member under the flags. Returns false when the flags skip it; `added` and
// `changed` count what happened; `result` is the member's score afterwards. NaN from INCR: nan_out.
bool zadd_one(ZSetValue& z, std::string_view member, double score, const ZaddFlags& f, int64_t& added,
              int64_t& changed, double& result, bool& nan_out) {
  const double* cur = z.score(member);
  if (cur != nullptr) {
    if (f.nx) return false;
    double next = f.incr ? *cur + score : score;
    if (std::isnan(next)) {
      nan_out = true;
      return false;
    }
    if ((f.gt && !(next > *cur)) || (f.lt && !(next < *cur))) return false;
    result = next;
    if (next != *cur) {
      z.put(member, next);
      ++changed;
    }
    return true;
  }
  if (f.xx) return false;
  z.put(member, score);
  result = score;
  ++added;
  return true;
}

void zadd_generic(ExecContext& ctx, std::string_view key, const ZaddFlags& f,
                  const std::vector<std::pair<double, std::string_view>>& pairs) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, key, ValueType::kZSet, Access::kWrite, e)) return;
  if (e == nullptr) {
    if (f.xx) {  // nothing would be added: no key is created
      f.incr ? ctx.out.null() : ctx.out.integer(0);
      return;
    }
    e = ctx.store.create_zset(key);
  }
  int64_t added = 0, changed = 0;
  double result = 0;
  bool applied = false, nan_out = false;
  ctx.store.edit_zset(e, [&](ZSetValue& z) {
    for (const auto& [score, member] : pairs) {
      applied = zadd_one(z, member, score, f, added, changed, result, nan_out);
      if (nan_out) break;
    }
    return 0;
  });
  drop_if_empty(ctx, e);
  if (nan_out) return ctx.out.error(kErrScoreNaN);
  if (f.incr) return applied ? reply_score(ctx, result) : ctx.out.null();
  ctx.out.integer(f.ch ? added + changed : added);
}

// ---- ZUNION / ZINTER / ZDIFF ----

enum class SetOp : uint8_t { kUnion, kInter, kDiff };
enum class Aggregate : uint8_t { kSum, kMin, kMax };

// A source: a sorted set, or a plain set whose members score 1.
struct Source {
  const ZSetValue* z = nullptr;
  const store::SetValue* s = nullptr;
  size_t size() const { return z != nullptr ? z->size() : s != nullptr ? s->size() : 0; }
  bool find(std::string_view m, double& score) const {
    if (z != nullptr) {
      const double* p = z->score(m);
      if (p == nullptr) return false;
      score = *p;
      return true;
    }
    if (s != nullptr && s->contains(m)) {
      score = 1.0;
      return true;
    }
    return false;
  }
  template <typename Fn>
  void for_each(Fn&& fn) const {
    if (z != nullptr) {
      for (const Node* x = z->first(); x != nullptr; x = x->next()) fn(std::string_view(x->member), x->score);
    } else if (s != nullptr) {
      for (const std::string& m : s->members()) fn(std::string_view(m), 1.0);
    }
  }
};

double aggregate(Aggregate a, double acc, double v) {
  switch (a) {
    case Aggregate::kSum: {
      const double r = acc + v;
      return std::isnan(r) ? 0.0 : r;  // inf + -inf: Redis makes it 0
    }
    case Aggregate::kMin: return std::min(acc, v);
    case Aggregate::kMax: return std::max(acc, v);
  }
  TALLY_UNREACHABLE();
}

double weighted(double score, double w) {
  const double r = score * w;
  return std::isnan(r) ? 0.0 : r;
}

// Parses "numkeys key... [WEIGHTS w...] [AGGREGATE a] [WITHSCORES]" at argv[at], computes the
// operation and returns its result sorted; false after replying an error.
bool set_operation(ExecContext& ctx, Argv argv, size_t at, SetOp op, bool allow_scores, bool& with_scores,
                   std::vector<std::pair<std::string_view, double>>& result) {
  int64_t numkeys = 0;
  if (!parse_i64(argv[at], numkeys)) {
    ctx.out.error(kErrNotInt);
    return false;
  }
  if (numkeys < 1) {
    ctx.out.error("ERR at least 1 input key is needed for '" + lower_name(argv[0]) + "' command");
    return false;
  }
  if (static_cast<uint64_t>(numkeys) > argv.size() - at - 1) {
    ctx.out.error(kErrSyntax);
    return false;
  }
  const size_t n = static_cast<size_t>(numkeys);
  // The sources first (a wrong type is reported before the options are read, as Redis does).
  std::vector<Source> src(n);
  for (size_t k = 0; k < n; ++k) {
    Entry* e = ctx.store.lookup(argv[at + 1 + k], ctx.now_ms, Access::kRead);
    if (e == nullptr) continue;
    if (e->type() == ValueType::kZSet) {
      src[k].z = e->zset_value();
    } else if (e->type() == ValueType::kSet) {
      src[k].s = e->set_value();
    } else {
      ctx.out.error(kErrWrongType);
      return false;
    }
  }
  std::vector<double> weights(n, 1.0);
  Aggregate agg = Aggregate::kSum;
  for (size_t i = at + 1 + n; i < argv.size(); ++i) {
    if (op != SetOp::kDiff && iequals(argv[i], "weights") && i + n < argv.size()) {
      for (size_t k = 0; k < n; ++k) {
        if (!parse_score(argv[i + 1 + k], weights[k])) {
          ctx.out.error("ERR weight value is not a float");
          return false;
        }
      }
      i += n;
    } else if (op != SetOp::kDiff && iequals(argv[i], "aggregate") && i + 1 < argv.size()) {
      if (iequals(argv[i + 1], "sum")) {
        agg = Aggregate::kSum;
      } else if (iequals(argv[i + 1], "min")) {
        agg = Aggregate::kMin;
      } else if (iequals(argv[i + 1], "max")) {
        agg = Aggregate::kMax;
      } else {
        ctx.out.error(kErrSyntax);
        return false;
      }
      ++i;
    } else if (allow_scores && iequals(argv[i], "withscores")) {
      with_scores = true;
    } else {
      ctx.out.error(kErrSyntax);
      return false;
    }
  }
  result.clear();
  if (op == SetOp::kUnion) {
    std::unordered_map<std::string_view, double> acc;
    for (size_t k = 0; k < n; ++k) {
      src[k].for_each([&](std::string_view m, double s) {
        const double v = weighted(s, weights[k]);
        auto [it, fresh] = acc.emplace(m, v);
        if (!fresh) it->second = aggregate(agg, it->second, v);
      });
    }
    result.assign(acc.begin(), acc.end());
  } else if (op == SetOp::kInter) {
    size_t smallest = 0;
    for (size_t k = 1; k < n; ++k) {
      if (src[k].size() < src[smallest].size()) smallest = k;
    }
    src[smallest].for_each([&](std::string_view m, double s0) {
      double acc = weighted(s0, weights[smallest]);
      for (size_t k = 0; k < n; ++k) {
        if (k == smallest) continue;
        double s = 0;
        if (!src[k].find(m, s)) return;
        acc = aggregate(agg, acc, weighted(s, weights[k]));
      }
      result.emplace_back(m, acc);
    });
    // The smallest source was walked first, so the others' order of aggregation differs from Redis's
    // only for MIN/MAX ties and SUM rounding; both commute here.
  } else {
    src[0].for_each([&](std::string_view m, double s) {
      double ignored = 0;
      for (size_t k = 1; k < n; ++k) {
        if (src[k].find(m, ignored)) return;
      }
      result.emplace_back(m, s);
    });
  }
  std::sort(result.begin(), result.end(), [](const auto& a, const auto& b) {
    return a.second < b.second || (a.second == b.second && a.first < b.first);
  });
  return true;
}

void set_op_reply(ExecContext& ctx, Argv argv, SetOp op) {
  bool with_scores = false;
  std::vector<std::pair<std::string_view, double>> result;
  if (!set_operation(ctx, argv, 1, op, true, with_scores, result)) return;
  std::vector<Item> items;
  items.reserve(result.size());
  for (const auto& [m, s] : result) items.push_back({m, s});
  reply_items(ctx, items, with_scores);
}

void set_op_store(ExecContext& ctx, Argv argv, SetOp op) {
  bool with_scores = false;
  std::vector<std::pair<std::string_view, double>> result;
  if (!set_operation(ctx, argv, 2, op, false, with_scores, result)) return;
  std::vector<Item> items;
  items.reserve(result.size());
  for (const auto& [m, s] : result) items.push_back({m, s});
  store_items(ctx, argv[1], items);
  ctx.out.integer(static_cast<int64_t>(items.size()));
}

// ---- pops ----

// Pops up to `count` from one end into `out` (member copies, as the nodes go away).
void pop_into(ExecContext& ctx, Entry* e, bool max, uint64_t count, std::vector<std::pair<std::string, double>>& out) {
  ctx.store.edit_zset(e, [&](ZSetValue& z) {
    for (uint64_t i = 0; i < count && !z.empty(); ++i) {
      const Node* x = max ? z.last() : z.first();
      out.emplace_back(x->member, x->score);
      z.remove(out.back().first);
    }
    return 0;
  });
  drop_if_empty(ctx, e);
}

void zpop(ExecContext& ctx, Argv argv, bool max) {
  if (argv.size() > 3) return ctx.out.error(kErrSyntax);
  int64_t count = -1;
  if (argv.size() == 3) {
    if (!parse_i64(argv[2], count)) return ctx.out.error(kErrNotInt);
    if (count < 0) return ctx.out.error(kErrMustBePositive);
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kWrite, e)) return;
  std::vector<std::pair<std::string, double>> popped;
  if (e != nullptr && count != 0) pop_into(ctx, e, max, count < 0 ? 1 : static_cast<uint64_t>(count), popped);
  if (count < 0) {  // one element, flat: [member, score]
    ctx.out.array(popped.empty() ? 0 : 2);
    if (!popped.empty()) {
      ctx.out.bulk(popped[0].first);
      reply_score(ctx, popped[0].second);
    }
    return;
  }
  ctx.out.array_flat_in_resp2(popped.size());
  for (const auto& [m, s] : popped) {
    ctx.out.array(2);
    ctx.out.bulk(m);
    reply_score(ctx, s);
  }
}

}  // namespace

// ZMPOP numkeys key... MIN|MAX [COUNT c] (BZMPOP: the timeout first, from = 2).
void zmpop_from(ExecContext& ctx, Argv argv, size_t from) {
  int64_t numkeys = 0;
  if (!parse_i64(argv[from], numkeys) || numkeys <= 0 ||
      static_cast<uint64_t>(numkeys) > argv.size() - from - 1) {
    return ctx.out.error(numkeys <= 0 ? "ERR numkeys should be greater than 0" : kErrSyntax);
  }
  const size_t keys_end = from + 1 + static_cast<size_t>(numkeys);
  if (keys_end >= argv.size()) return ctx.out.error(kErrSyntax);
  bool max = false;
  if (iequals(argv[keys_end], "max")) {
    max = true;
  } else if (!iequals(argv[keys_end], "min")) {
    return ctx.out.error(kErrSyntax);
  }
  int64_t count = 1;
  if (keys_end + 1 < argv.size()) {
    if (!iequals(argv[keys_end + 1], "count") || keys_end + 3 != argv.size()) return ctx.out.error(kErrSyntax);
    if (!parse_i64(argv[keys_end + 2], count) || count <= 0) {
      return ctx.out.error("ERR count should be greater than 0");
    }
  }
  for (size_t k = from + 1; k < keys_end; ++k) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, argv[k], ValueType::kZSet, Access::kWrite, e)) return;
    if (e == nullptr) continue;
    std::vector<std::pair<std::string, double>> popped;
    pop_into(ctx, e, max, static_cast<uint64_t>(count), popped);
    ctx.out.array(2);
    ctx.out.bulk(argv[k]);
    ctx.out.array(popped.size());
    for (const auto& [m, s] : popped) {
      ctx.out.array(2);
      ctx.out.bulk(m);
      reply_score(ctx, s);
    }
    return;
  }
  ctx.out.null_array();
}

void zadd(ExecContext& ctx, Argv argv) {
  ZaddFlags f;
  size_t i = 2;
  for (; i < argv.size(); ++i) {
    std::string_view a = argv[i];
    if (iequals(a, "nx")) {
      f.nx = true;
    } else if (iequals(a, "xx")) {
      f.xx = true;
    } else if (iequals(a, "gt")) {
      f.gt = true;
    } else if (iequals(a, "lt")) {
      f.lt = true;
    } else if (iequals(a, "ch")) {
      f.ch = true;
    } else if (iequals(a, "incr")) {
      f.incr = true;
    } else {
      break;
    }
  }
  const size_t rest = argv.size() - i;
  if (rest == 0 || rest % 2 != 0) return ctx.out.error(kErrSyntax);
  if (f.nx && f.xx) return ctx.out.error("ERR XX and NX options at the same time are not compatible");
  if ((f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt)) {
    return ctx.out.error("ERR GT, LT, and/or NX options at the same time are not compatible");
  }
  if (f.incr && rest > 2) return ctx.out.error("ERR INCR option supports a single increment-element pair");
  std::vector<std::pair<double, std::string_view>> pairs;
  pairs.reserve(rest / 2);
  for (; i < argv.size(); i += 2) {
    double score = 0;
    if (!parse_score(argv[i], score)) return ctx.out.error(kErrNotFloat);
    pairs.emplace_back(score, argv[i + 1]);
  }
  zadd_generic(ctx, argv[1], f, pairs);
}

void zincrby(ExecContext& ctx, Argv argv) {
  double by = 0;
  if (!parse_score(argv[2], by)) return ctx.out.error(kErrNotFloat);
  ZaddFlags f;
  f.incr = true;
  zadd_generic(ctx, argv[1], f, {{by, argv[3]}});
}

void zscore(ExecContext& ctx, Argv argv) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  const double* s = e == nullptr ? nullptr : e->zset_value()->score(argv[2]);
  s == nullptr ? ctx.out.null() : reply_score(ctx, *s);
}

void zmscore(ExecContext& ctx, Argv argv) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  ctx.out.array(argv.size() - 2);
  for (size_t i = 2; i < argv.size(); ++i) {
    const double* s = e == nullptr ? nullptr : e->zset_value()->score(argv[i]);
    s == nullptr ? ctx.out.null() : reply_score(ctx, *s);
  }
}

void zcard(ExecContext& ctx, Argv argv) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->zset_value()->size()));
}

static void rank_generic(ExecContext& ctx, Argv argv, bool rev) {
  if (argv.size() > 4 || (argv.size() == 4 && !iequals(argv[3], "withscore"))) return ctx.out.error(kErrSyntax);
  const bool with_score = argv.size() == 4;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  const double* s = e == nullptr ? nullptr : e->zset_value()->score(argv[2]);
  if (s == nullptr) return with_score ? ctx.out.null_array() : ctx.out.null();
  const ZSetValue& z = *e->zset_value();
  const uint64_t r = z.rank(argv[2]);
  const auto rank = static_cast<int64_t>(rev ? z.size() - 1 - r : r);
  if (!with_score) return ctx.out.integer(rank);
  ctx.out.array(2);
  ctx.out.integer(rank);
  reply_score(ctx, *s);
}

void zrank(ExecContext& ctx, Argv argv) { rank_generic(ctx, argv, false); }
void zrevrank(ExecContext& ctx, Argv argv) { rank_generic(ctx, argv, true); }

void zrem(ExecContext& ctx, Argv argv) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kWrite, e)) return;
  if (e == nullptr) return ctx.out.integer(0);
  int64_t removed = 0;
  ctx.store.edit_zset(e, [&](ZSetValue& z) {
    for (size_t i = 2; i < argv.size(); ++i) removed += z.remove(argv[i]) ? 1 : 0;
    return 0;
  });
  drop_if_empty(ctx, e);
  ctx.out.integer(removed);
}

void zrange(ExecContext& ctx, Argv argv) {
  RangeSpec spec;
  if (!parse_range_options(ctx, argv, 4, true, spec)) return;
  range_command(ctx, argv, 1, 2, 3, spec, {});
}

void zrangestore(ExecContext& ctx, Argv argv) {
  RangeSpec spec;
  if (!parse_range_options(ctx, argv, 5, false, spec)) return;
  range_command(ctx, argv, 2, 3, 4, spec, argv[1]);
}

void zrevrange(ExecContext& ctx, Argv argv) {
  RangeSpec spec;
  spec.rev = true;
  if (argv.size() > 5 || (argv.size() == 5 && !iequals(argv[4], "withscores"))) return ctx.out.error(kErrSyntax);
  spec.with_scores = argv.size() == 5;
  range_command(ctx, argv, 1, 2, 3, spec, {});
}

void zrangebyscore(ExecContext& ctx, Argv argv) { range_by(ctx, argv, RangeBy::kScore, false); }
void zrevrangebyscore(ExecContext& ctx, Argv argv) { range_by(ctx, argv, RangeBy::kScore, true); }
void zrangebylex(ExecContext& ctx, Argv argv) { range_by(ctx, argv, RangeBy::kLex, false); }
void zrevrangebylex(ExecContext& ctx, Argv argv) { range_by(ctx, argv, RangeBy::kLex, true); }

void zcount(ExecContext& ctx, Argv argv) {
  ScoreBound min, max;
  if (!parse_score_bound(argv[2], min) || !parse_score_bound(argv[3], max)) return ctx.out.error(kErrMinMaxFloat);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : count_in_range(*e->zset_value(), min, max));
}

void zlexcount(ExecContext& ctx, Argv argv) {
  LexBound min, max;
  if (!parse_lex_bound(argv[2], min) || !parse_lex_bound(argv[3], max)) return ctx.out.error(kErrMinMaxLex);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : count_in_range(*e->zset_value(), min, max));
}

// ZREMRANGEBYRANK / BYSCORE / BYLEX: the range's members, then their removal.
static void remrange(ExecContext& ctx, Argv argv, RangeBy by) {
  RangeSpec spec;
  spec.by = by;
  ScoreBound smin, smax;
  LexBound lmin, lmax;
  int64_t start = 0, stop = 0;
  if (!parse_bounds(ctx, spec, argv[2], argv[3], smin, smax, lmin, lmax, start, stop)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kWrite, e)) return;
  if (e == nullptr) return ctx.out.integer(0);
  std::vector<Item> items;
  collect_range(*e->zset_value(), spec, smin, smax, lmin, lmax, start, stop, items);
  if (!items.empty()) {
    std::vector<std::string> members;
    members.reserve(items.size());
    for (const Item& it : items) members.emplace_back(it.member);
    ctx.store.edit_zset(e, [&](ZSetValue& z) {
      for (const std::string& m : members) z.remove(m);
      return 0;
    });
    drop_if_empty(ctx, e);
  }
  ctx.out.integer(static_cast<int64_t>(items.size()));
}

void zremrangebyrank(ExecContext& ctx, Argv argv) { remrange(ctx, argv, RangeBy::kRank); }
void zremrangebyscore(ExecContext& ctx, Argv argv) { remrange(ctx, argv, RangeBy::kScore); }
void zremrangebylex(ExecContext& ctx, Argv argv) { remrange(ctx, argv, RangeBy::kLex); }

void zpopmin(ExecContext& ctx, Argv argv) { zpop(ctx, argv, false); }
void zpopmax(ExecContext& ctx, Argv argv) { zpop(ctx, argv, true); }
void zmpop(ExecContext& ctx, Argv argv) { zmpop_from(ctx, argv, 1); }

void zunion(ExecContext& ctx, Argv argv) { set_op_reply(ctx, argv, SetOp::kUnion); }
void zinter(ExecContext& ctx, Argv argv) { set_op_reply(ctx, argv, SetOp::kInter); }
void zdiff(ExecContext& ctx, Argv argv) { set_op_reply(ctx, argv, SetOp::kDiff); }
void zunionstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kUnion); }
void zinterstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kInter); }
void zdiffstore(ExecContext& ctx, Argv argv) { set_op_store(ctx, argv, SetOp::kDiff); }

void zintercard(ExecContext& ctx, Argv argv) {
  // ZINTERCARD numkeys key... [LIMIT limit]: the LIMIT is cut off before the shared parser runs.
  int64_t numkeys = 0;
  if (!parse_i64(argv[1], numkeys)) return ctx.out.error(kErrNotInt);
  if (numkeys < 1) return ctx.out.error("ERR at least 1 input key is needed for 'zintercard' command");
  if (static_cast<uint64_t>(numkeys) > argv.size() - 2) return ctx.out.error(kErrSyntax);
  const size_t keys_end = 2 + static_cast<size_t>(numkeys);
  int64_t limit = 0;
  if (keys_end < argv.size()) {
    if (!iequals(argv[keys_end], "limit") || keys_end + 2 != argv.size()) return ctx.out.error(kErrSyntax);
    if (!parse_i64(argv[keys_end + 1], limit) || limit < 0) return ctx.out.error("ERR LIMIT can't be negative");
  }
  bool with_scores = false;
  std::vector<std::pair<std::string_view, double>> result;
  if (!set_operation(ctx, argv.subspan(0, keys_end), 1, SetOp::kInter, false, with_scores, result)) return;
  const size_t n = limit == 0 ? result.size() : std::min<size_t>(result.size(), static_cast<size_t>(limit));
  ctx.out.integer(static_cast<int64_t>(n));
}

void zrandmember(ExecContext& ctx, Argv argv) {
  if (argv.size() > 4 || (argv.size() == 4 && !iequals(argv[3], "withscores"))) return ctx.out.error(kErrSyntax);
  Entry* e = nullptr;
  if (argv.size() == 2) {
    if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
    if (e == nullptr) return ctx.out.null();
    const ZSetValue& z = *e->zset_value();
    return ctx.out.bulk(z.at_rank(ctx.store.rng().uniform(z.size()))->member);
  }
  int64_t count = 0;
  if (!parse_i64(argv[2], count)) return ctx.out.error(kErrNotInt);
  const bool with_scores = argv.size() == 4;
  // Redis's bound: the reply's element count must not overflow.
  if (count < -INT64_MAX / 2 || count > INT64_MAX / 2) return ctx.out.error("ERR value is out of range");
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  std::vector<Item> items;
  if (e != nullptr && count != 0) {
    const ZSetValue& z = *e->zset_value();
    Rng& rng = ctx.store.rng();
    if (count < 0) {
      items.reserve(static_cast<size_t>(-count));
      for (int64_t i = 0; i < -count; ++i) {
        const Node* x = z.at_rank(rng.uniform(z.size()));
        items.push_back({x->member, x->score});
      }
    } else if (static_cast<uint64_t>(count) >= z.size()) {
      for (const Node* x = z.first(); x != nullptr; x = x->next()) items.push_back({x->member, x->score});
    } else {
      // Distinct ranks (Floyd's sampling), each O(log n) to reach.
      std::unordered_set<uint64_t> picked;
      const uint64_t n = z.size(), k = static_cast<uint64_t>(count);
      for (uint64_t j = n - k; j < n; ++j) {
        const uint64_t t = rng.uniform(j + 1);
        const uint64_t r = picked.insert(t).second ? t : (picked.insert(j), j);
        const Node* x = z.at_rank(r);
        items.push_back({x->member, x->score});
      }
    }
  }
  reply_items(ctx, items, with_scores);
}

void zscan(ExecContext& ctx, Argv argv) {
  ScanArgs args;
  if (!parse_scan_args(ctx, argv, 2, /*allow_type=*/false, args)) return;
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kZSet, Access::kRead, e)) return;
  std::vector<const Node*> found;
  uint64_t next = 0;
  if (e != nullptr) {
    next = scan_container(e->zset_value()->index(), args.cursor, static_cast<size_t>(args.count),
                          [&](const std::pair<const std::string_view, Node*>& kv) {
                            if (!args.has_pattern || store::glob_match(args.pattern, kv.first)) found.push_back(kv.second);
                          });
  }
  char buf[24];
  ctx.out.array(2);
  ctx.out.bulk(format_i64(static_cast<int64_t>(next), buf));
  ctx.out.array(found.size() * 2);
  for (const Node* x : found) {
    ctx.out.bulk(x->member);
    ctx.out.bulk(proto::format_double(x->score));  // ZSCAN gives scores as strings in RESP3 too
  }
}

}  // namespace tally::server::cmd
