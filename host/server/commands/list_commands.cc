// List commands, with redis-server 7's replies and errors. A list left empty is deleted (Redis never
// keeps empty lists). Multi-key ones (LMOVE, RPOPLPUSH, LMPOP) see keys of one partition: the server
// refuses or gathers the rest before they get here. The blocking forms (BLPOP, ...) answer at once
// when an element is there; session.cc parks them otherwise.
#include <algorithm>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ListValue;
using store::ValueType;

enum class End : uint8_t { kLeft, kRight };

bool parse_end(std::string_view s, End& end) {
  if (iequals(s, "left")) {
    end = End::kLeft;
  } else if (iequals(s, "right")) {
    end = End::kRight;
  } else {
    return false;
  }
  return true;
}

void push(ExecContext& ctx, Argv argv, End end, bool only_existing) {
  TALLY_ASSERT(argv.size() >= 3);
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e == nullptr) {
    if (only_existing) {
      ctx.out.integer(0);
      return;
    }
    e = ctx.store.create_list(argv[1]);
  }
  const size_t n = ctx.store.edit_list(e, [&](ListValue& l) {
    for (size_t i = 2; i < argv.size(); ++i) end == End::kLeft ? l.push_front(argv[i]) : l.push_back(argv[i]);
    return l.size();
  });
  ctx.out.integer(static_cast<int64_t>(n));
}

std::string pop_one(ExecContext& ctx, Entry* e, End end) {
  return ctx.store.edit_list(e, [&](ListValue& l) { return end == End::kLeft ? l.pop_front() : l.pop_back(); });
}

// Deletes a list its last pop emptied.
void drop_if_empty(ExecContext& ctx, Entry* e) {
  if (e->list_value()->empty()) ctx.store.erase(e);
}

// Pops up to `count` elements of a non-empty list into an array reply (LPOP with a count, LMPOP).
void pop_many(ExecContext& ctx, Entry* e, End end, uint64_t count) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(count, e->list_value()->size()));
  ctx.out.array(n);
  ctx.store.edit_list(e, [&](ListValue& l) {
    for (size_t i = 0; i < n; ++i) ctx.out.bulk(end == End::kLeft ? l.pop_front() : l.pop_back());
    return 0;
  });
  drop_if_empty(ctx, e);
}

void pop(ExecContext& ctx, Argv argv, End end) {
  if (argv.size() > 3) return wrong_arity(ctx, argv[0]);
  int64_t count = -1;
  if (argv.size() == 3 && (!parse_i64(argv[2], count) || count < 0)) {
    ctx.out.error(kErrMustBePositive);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e == nullptr) {
    count < 0 ? ctx.out.null() : ctx.out.null_array();
    return;
  }
  if (count < 0) {
    ctx.out.bulk(pop_one(ctx, e, end));
    drop_if_empty(ctx, e);
    return;
  }
  if (count == 0) {
    ctx.out.array(0);
    return;
  }
  pop_many(ctx, e, end, static_cast<uint64_t>(count));
}

// Redis's start/stop normalisation: negative from the end, clamped; false when the range is empty.
bool normalise_range(int64_t start, int64_t stop, size_t len, size_t& first, size_t& last) {
  const auto n = static_cast<int64_t>(len);
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  if (start < 0) start = 0;
  if (start > stop || start >= n) return false;
  if (stop >= n) stop = n - 1;
  first = static_cast<size_t>(start);
  last = static_cast<size_t>(stop);
  return true;
}

// The list's index for a possibly negative position, or false when out of range.
bool normalise_index(int64_t index, size_t len, size_t& at) {
  const auto n = static_cast<int64_t>(len);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return false;
  at = static_cast<size_t>(index);
  return true;
}

// Moves one element between lists (LMOVE, RPOPLPUSH, BLMOVE); src must hold a non-empty list and
// dst none or a list (the caller checked).
void move_one(ExecContext& ctx, Entry* src, std::string_view dst_key, End from, End to) {
  std::string v = pop_one(ctx, src, from);
  drop_if_empty(ctx, src);  // src may be dst: a one-element rotation deletes and re-creates it
  Entry* dst = ctx.store.lookup(dst_key, ctx.now_ms, Access::kWrite);
  if (dst == nullptr) dst = ctx.store.create_list(dst_key);
  ctx.store.edit_list(dst, [&](ListValue& l) {
    to == End::kLeft ? l.push_front(v) : l.push_back(v);
    return 0;
  });
  ctx.out.bulk(v);
}

// Looks up LMOVE's source and destination: false (the reply made) when either holds another type.
// A missing source answers nil before the destination is looked at (as Redis).
bool lookup_move(ExecContext& ctx, std::string_view src_key, std::string_view dst_key, Entry*& src) {
  if (!lookup_typed(ctx, src_key, ValueType::kList, Access::kWrite, src)) return false;
  if (src == nullptr) return true;
  Entry* dst = nullptr;
  return lookup_typed(ctx, dst_key, ValueType::kList, Access::kWrite, dst);
}

}  // namespace

void lpush(ExecContext& ctx, Argv argv) { push(ctx, argv, End::kLeft, false); }
void rpush(ExecContext& ctx, Argv argv) { push(ctx, argv, End::kRight, false); }
void lpushx(ExecContext& ctx, Argv argv) { push(ctx, argv, End::kLeft, true); }
void rpushx(ExecContext& ctx, Argv argv) { push(ctx, argv, End::kRight, true); }
void lpop(ExecContext& ctx, Argv argv) { pop(ctx, argv, End::kLeft); }
void rpop(ExecContext& ctx, Argv argv) { pop(ctx, argv, End::kRight); }

void llen(ExecContext& ctx, Argv argv) {
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kRead, e)) return;
  ctx.out.integer(e == nullptr ? 0 : static_cast<int64_t>(e->list_value()->size()));
}

void lrange(ExecContext& ctx, Argv argv) {
  int64_t start = 0, stop = 0;
  if (!parse_i64(argv[2], start) || !parse_i64(argv[3], stop)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kRead, e)) return;
  size_t first = 0, last = 0;
  if (e == nullptr || !normalise_range(start, stop, e->list_value()->size(), first, last)) {
    ctx.out.array(0);
    return;
  }
  const ListValue& l = *e->list_value();
  ctx.out.array(last - first + 1);
  for (auto it = l.items().begin() + static_cast<ptrdiff_t>(first), end = l.items().begin() + static_cast<ptrdiff_t>(last) + 1;
       it != end; ++it) {
    ctx.out.bulk(*it);
  }
}

void lindex(ExecContext& ctx, Argv argv) {
  int64_t index = 0;
  if (!parse_i64(argv[2], index)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kRead, e)) return;
  size_t at = 0;
  if (e == nullptr || !normalise_index(index, e->list_value()->size(), at)) {
    ctx.out.null();
    return;
  }
  ctx.out.bulk(e->list_value()->at(at));
}

void lset(ExecContext& ctx, Argv argv) {
  int64_t index = 0;
  if (!parse_i64(argv[2], index)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e == nullptr) {
    ctx.out.error(kErrNoSuchKey);
    return;
  }
  size_t at = 0;
  if (!normalise_index(index, e->list_value()->size(), at)) {
    ctx.out.error("ERR index out of range");
    return;
  }
  ctx.store.edit_list(e, [&](ListValue& l) {
    l.set(at, argv[3]);
    return 0;
  });
  ctx.out.ok();
}

void linsert(ExecContext& ctx, Argv argv) {
  bool after = false;
  if (iequals(argv[2], "after")) {
    after = true;
  } else if (!iequals(argv[2], "before")) {
    ctx.out.error(kErrSyntax);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e == nullptr) {
    ctx.out.integer(0);
    return;
  }
  const ListValue& l = *e->list_value();
  auto it = std::find(l.items().begin(), l.items().end(), argv[3]);
  if (it == l.items().end()) {
    ctx.out.integer(-1);
    return;
  }
  const size_t at = static_cast<size_t>(it - l.items().begin()) + (after ? 1 : 0);
  const size_t n = ctx.store.edit_list(e, [&](ListValue& lv) {
    lv.insert(at, argv[4]);
    return lv.size();
  });
  ctx.out.integer(static_cast<int64_t>(n));
}

void lrem(ExecContext& ctx, Argv argv) {
  int64_t count = 0;
  if (!parse_i64(argv[2], count)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e == nullptr) {
    ctx.out.integer(0);
    return;
  }
  // Positions to remove, found first (a list with no match is left untouched: no new CAS).
  const ListValue& l = *e->list_value();
  const uint64_t limit = count == 0 ? UINT64_MAX
                         : count < 0 ? (count == INT64_MIN ? uint64_t{1} << 63 : static_cast<uint64_t>(-count))
                                     : static_cast<uint64_t>(count);
  std::vector<size_t> at;
  if (count >= 0) {
    for (size_t i = 0; i < l.size() && at.size() < limit; ++i) {
      if (l.at(i) == argv[3]) at.push_back(i);
    }
  } else {
    for (size_t i = l.size(); i > 0 && at.size() < limit; --i) {
      if (l.at(i - 1) == argv[3]) at.push_back(i - 1);
    }
  }
  if (!at.empty()) {
    std::sort(at.begin(), at.end());
    ctx.store.edit_list(e, [&](ListValue& lv) {
      lv.erase_sorted(at);
      return 0;
    });
    drop_if_empty(ctx, e);
  }
  ctx.out.integer(static_cast<int64_t>(at.size()));
}

void ltrim(ExecContext& ctx, Argv argv) {
  int64_t start = 0, stop = 0;
  if (!parse_i64(argv[2], start) || !parse_i64(argv[3], stop)) {
    ctx.out.error(kErrNotInt);
    return;
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kWrite, e)) return;
  if (e != nullptr) {
    size_t first = 0, last = 0;
    if (!normalise_range(start, stop, e->list_value()->size(), first, last)) {
      ctx.store.erase(e);
    } else if (first != 0 || last + 1 != e->list_value()->size()) {
      ctx.store.edit_list(e, [&](ListValue& l) {
        l.keep(first, last);
        return 0;
      });
    }
  }
  ctx.out.ok();
}

void lpos(ExecContext& ctx, Argv argv) {
  int64_t rank = 1, count = -1, maxlen = 0;
  for (size_t i = 3; i < argv.size(); i += 2) {
    if (i + 1 >= argv.size()) {
      ctx.out.error(kErrSyntax);
      return;
    }
    int64_t v = 0;
    if (!parse_i64(argv[i + 1], v)) {
      ctx.out.error(kErrNotInt);
      return;
    }
    if (iequals(argv[i], "rank")) {
      if (v == 0 || v == INT64_MIN) {
        ctx.out.error(v == 0 ? "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
                             : "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
        return;
      }
      rank = v;
    } else if (iequals(argv[i], "count")) {
      if (v < 0) {
        ctx.out.error("ERR COUNT can't be negative");
        return;
      }
      count = v;
    } else if (iequals(argv[i], "maxlen")) {
      if (v < 0) {
        ctx.out.error("ERR MAXLEN can't be negative");
        return;
      }
      maxlen = v;
    } else {
      ctx.out.error(kErrSyntax);
      return;
    }
  }
  Entry* e = nullptr;
  if (!lookup_typed(ctx, argv[1], ValueType::kList, Access::kRead, e)) return;
  std::vector<int64_t> found;
  if (e != nullptr) {
    const ListValue& l = *e->list_value();
    const size_t n = l.size();
    const uint64_t want = count == 0 ? UINT64_MAX : count < 0 ? 1 : static_cast<uint64_t>(count);
    uint64_t skip = static_cast<uint64_t>(rank > 0 ? rank : -rank) - 1;
    const size_t scan = maxlen == 0 ? n : std::min<size_t>(n, static_cast<size_t>(maxlen));
    for (size_t k = 0; k < scan && found.size() < want; ++k) {
      const size_t i = rank > 0 ? k : n - 1 - k;
      if (l.at(i) != argv[2]) continue;
      if (skip > 0) {
        --skip;
        continue;
      }
      found.push_back(static_cast<int64_t>(i));
    }
  }
  if (count < 0) {
    found.empty() ? ctx.out.null() : ctx.out.integer(found[0]);
    return;
  }
  ctx.out.array(found.size());
  for (int64_t i : found) ctx.out.integer(i);
}

void lmove(ExecContext& ctx, Argv argv) {
  End from, to;
  if (!parse_end(argv[3], from) || !parse_end(argv[4], to)) {
    ctx.out.error(kErrSyntax);
    return;
  }
  Entry* src = nullptr;
  if (!lookup_move(ctx, argv[1], argv[2], src)) return;
  if (src == nullptr) {
    ctx.out.null();
    return;
  }
  move_one(ctx, src, argv[2], from, to);
}

void rpoplpush(ExecContext& ctx, Argv argv) {
  Entry* src = nullptr;
  if (!lookup_move(ctx, argv[1], argv[2], src)) return;
  if (src == nullptr) {
    ctx.out.null();
    return;
  }
  move_one(ctx, src, argv[2], End::kRight, End::kLeft);
}

// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]; BLMPOP has the timeout first (from = 2).
void lmpop_from(ExecContext& ctx, Argv argv, size_t from) {
  int64_t numkeys = 0;
  if (!parse_i64(argv[from], numkeys) || numkeys <= 0 ||
      static_cast<uint64_t>(numkeys) > argv.size() - from - 1) {
    ctx.out.error(numkeys <= 0 ? "ERR numkeys should be greater than 0" : kErrSyntax);
    return;
  }
  const size_t keys_end = from + 1 + static_cast<size_t>(numkeys);
  End end;
  if (keys_end >= argv.size() || !parse_end(argv[keys_end], end)) {
    ctx.out.error(kErrSyntax);
    return;
  }
  int64_t count = 1;
  size_t i = keys_end + 1;
  if (i < argv.size()) {
    if (!iequals(argv[i], "count") || i + 2 != argv.size()) {
      ctx.out.error(kErrSyntax);
      return;
    }
    if (!parse_i64(argv[i + 1], count) || count <= 0) {
      ctx.out.error("ERR count should be greater than 0");
      return;
    }
  }
  for (size_t k = from + 1; k < keys_end; ++k) {
    Entry* e = nullptr;
    if (!lookup_typed(ctx, argv[k], ValueType::kList, Access::kWrite, e)) return;
    if (e == nullptr) continue;
    ctx.out.array(2);
    ctx.out.bulk(argv[k]);
    pop_many(ctx, e, end, static_cast<uint64_t>(count));
    return;
  }
  ctx.out.null_array();
}

void lmpop(ExecContext& ctx, Argv argv) { lmpop_from(ctx, argv, 1); }

}  // namespace tally::server::cmd
