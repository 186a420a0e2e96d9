// SORT and SORT_RO on lists, sets and sorted sets: numeric or ALPHA order, ASC/DESC, LIMIT, BY and GET
// patterns ("*" replaced by the element, "->field" reading a hash field, "#" the element itself) and
// STORE, with redis-server 7's replies and errors. A partition sees only its own keys, so a BY or GET
// pattern must name keys of the sorted key's slot: a hash tag before its '*' that hashes there (the
// rule Redis Cluster applies); BY without '*' (no sorting) and GET # need none.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "kernels/cpu/slot.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ValueType;

struct SortItem {
  std::string element;
  double score = 0;
  std::optional<std::string> by;  // ALPHA with BY: the value sorted by (none: the key is missing)
};

// Whether every key `pattern` forms lies in `slot`: a non-empty hash tag without '*' that comes before
// the pattern's '*' (so no element can change it) and hashes to the slot.
bool pattern_in_slot(std::string_view pattern, uint32_t slot) {
  const size_t open = pattern.find('{');
  const size_t star = pattern.find('*');
  if (open == std::string_view::npos || (star != std::string_view::npos && star < open)) return false;
  const size_t close = pattern.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return false;
  if (star != std::string_view::npos && star < close) return false;
  return kernels::key_slot(pattern.substr(open, close - open + 1)) == slot;
}

// The value a pattern names for an element (a string key, or a hash field with "->"), if any.
std::optional<std::string> lookup_by_pattern(ExecContext& ctx, std::string_view pattern, std::string_view element) {
  if (pattern == "#") return std::string(element);
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) return std::nullopt;
  std::string_view field;
  size_t key_end = pattern.size();
  if (const size_t arrow = pattern.find("->", star + 1); arrow != std::string_view::npos && arrow + 2 < pattern.size()) {
    field = pattern.substr(arrow + 2);
    key_end = arrow;
  }
  std::string key(pattern.substr(0, star));
  key.append(element);
  key.append(pattern.substr(star + 1, key_end - star - 1));
  Entry* e = ctx.store.lookup(key, ctx.now_ms, Access::kRead);
  if (e == nullptr) return std::nullopt;
  if (!field.empty()) {
    if (e->type() != ValueType::kHash) return std::nullopt;
    const std::string* v = e->hash_value()->find(field);
    if (v == nullptr) return std::nullopt;
    return *v;
  }
  if (e->type() != ValueType::kString) return std::nullopt;
  return std::string(e->string_value());
}

// Binary comparison, as memcmp then length.
int compare_bytes(std::string_view a, std::string_view b) {
  const int c = a.compare(b);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

void sort_generic(ExecContext& ctx, Argv argv, bool read_only) {
  bool desc = false, alpha = false, dontsort = false;
  int64_t limit_start = 0, limit_count = -1;
  std::optional<std::string_view> by, store_key;
  std::vector<std::string_view> gets;
  const uint32_t slot = kernels::key_slot(argv[1]);
  for (size_t j = 2; j < argv.size(); ++j) {
    const size_t left = argv.size() - j - 1;
    const std::string_view w = argv[j];
    if (iequals(w, "asc")) {
      desc = false;
    } else if (iequals(w, "desc")) {
      desc = true;
    } else if (iequals(w, "alpha")) {
      alpha = true;
    } else if (iequals(w, "limit") && left >= 2) {
      if (!parse_i64(argv[j + 1], limit_start) || !parse_i64(argv[j + 2], limit_count)) return ctx.out.error(kErrNotInt);
      j += 2;
    } else if (!read_only && iequals(w, "store") && left >= 1) {
      store_key = argv[++j];
    } else if (iequals(w, "by") && left >= 1) {
      by = argv[++j];
      if (by->find('*') == std::string_view::npos) {
        dontsort = true;
      } else if (!pattern_in_slot(*by, slot)) {
        return ctx.out.error(
            "ERR BY option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.");
      }
    } else if (iequals(w, "get") && left >= 1) {
      const std::string_view p = argv[++j];
      if (p != "#" && !pattern_in_slot(p, slot)) {
        return ctx.out.error(
            "ERR GET option of SORT denied in Cluster mode when keys formed by the pattern may be in different slots.");
      }
      gets.push_back(p);
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, store_key ? Access::kWrite : Access::kRead);
  if (e != nullptr && e->type() != ValueType::kList && e->type() != ValueType::kSet && e->type() != ValueType::kZSet) {
    return ctx.out.error(kErrWrongType);
  }
  const ValueType type = e == nullptr ? ValueType::kList : e->type();
  // A set has no order of its own: unsorted, it is sorted by its elements' bytes so that every replica
  // (and every run) gives the same answer.
  if (dontsort && type == ValueType::kSet) {
    dontsort = false;
    alpha = true;
    by.reset();
  }
  int64_t len = 0;
  if (e != nullptr) {
    len = static_cast<int64_t>(type == ValueType::kList  ? e->list_value()->size()
                               : type == ValueType::kSet ? e->set_value()->size()
                                                         : e->zset_value()->size());
  }
  int64_t start = limit_start < 0 ? 0 : limit_start;
  int64_t end = limit_count < 0 ? len - 1 : start + limit_count - 1;
  if (start >= len) {
    start = len - 1;
    end = len - 2;
  }
  if (end >= len) end = len - 1;

  std::vector<SortItem> items;
  if (e != nullptr && dontsort && (type == ValueType::kList || type == ValueType::kZSet)) {
    // In the container's own order (reversed by DESC), only the LIMIT range.
    for (int64_t i = start; i <= end; ++i) {
      const int64_t at = desc ? len - 1 - i : i;
      if (type == ValueType::kList) {
        items.push_back(SortItem{e->list_value()->at(static_cast<size_t>(at)), 0, std::nullopt});
      } else {
        items.push_back(SortItem{e->zset_value()->at_rank(static_cast<uint64_t>(at))->member, 0, std::nullopt});
      }
    }
    end -= start;
    start = 0;
  } else if (e != nullptr) {
    if (type == ValueType::kList) {
      for (const std::string& s : e->list_value()->items()) items.push_back(SortItem{s, 0, std::nullopt});
    } else if (type == ValueType::kSet) {
      for (const std::string& s : e->set_value()->members()) items.push_back(SortItem{s, 0, std::nullopt});
    } else {
      for (const auto* n = e->zset_value()->first(); n != nullptr; n = n->next()) {
        items.push_back(SortItem{n->member, 0, std::nullopt});
      }
    }
  }
  if (!dontsort) {
    bool bad_score = false;
    for (SortItem& it : items) {
      std::optional<std::string> value;
      if (by) {
        value = lookup_by_pattern(ctx, *by, it.element);
        if (!value) continue;  // numeric: 0; ALPHA: sorts first
      }
      if (alpha) {
        if (by) it.by = std::move(value);
        continue;
      }
      const std::string& text = by ? *value : it.element;
      errno = 0;
      char* stop = nullptr;
      it.score = std::strtod(text.c_str(), &stop);
      if (*stop != '\0' || errno == ERANGE || std::isnan(it.score)) bad_score = true;
    }
    if (bad_score) return ctx.out.error("ERR One or more scores can't be converted into double");
    auto cmp = [&](const SortItem& a, const SortItem& b) {
      int c = 0;
      if (!alpha) {
        c = a.score < b.score ? -1 : a.score > b.score ? 1 : compare_bytes(a.element, b.element);
      } else if (by) {
        if (!a.by || !b.by) {
          c = a.by.has_value() == b.by.has_value() ? 0 : !a.by ? -1 : 1;
        } else {
          c = compare_bytes(*a.by, *b.by);
        }
      } else {
        c = compare_bytes(a.element, b.element);
      }
      return desc ? c > 0 : c < 0;
    };
    std::stable_sort(items.begin(), items.end(), cmp);
  }

  const int64_t count = end >= start ? end - start + 1 : 0;
  const size_t per = gets.empty() ? 1 : gets.size();
  if (!store_key) {
    ctx.out.array(static_cast<size_t>(count) * per);
    for (int64_t i = start; i <= end; ++i) {
      const SortItem& it = items[static_cast<size_t>(i)];
      if (gets.empty()) ctx.out.bulk(it.element);
      for (std::string_view p : gets) {
        if (auto v = lookup_by_pattern(ctx, p, it.element)) {
          ctx.out.bulk(*v);
        } else {
          ctx.out.null();
        }
      }
    }
    return;
  }
  std::vector<std::string> out;
  for (int64_t i = start; i <= end; ++i) {
    const SortItem& it = items[static_cast<size_t>(i)];
    if (gets.empty()) out.push_back(it.element);
    for (std::string_view p : gets) out.push_back(lookup_by_pattern(ctx, p, it.element).value_or(std::string()));
  }
  ctx.store.erase(*store_key, ctx.now_ms);
  if (!out.empty()) {
    Entry* dst = ctx.store.create_list(*store_key);
    ctx.store.edit_list(dst, [&](store::ListValue& l) {
      for (const std::string& s : out) l.push_back(s);
      return 0;
    });
  }
  ctx.out.integer(static_cast<int64_t>(out.size()));
}

}  // namespace

void sort(ExecContext& ctx, Argv argv) { sort_generic(ctx, argv, false); }
void sort_ro(ExecContext& ctx, Argv argv) { sort_generic(ctx, argv, true); }

}  // namespace tally::server::cmd
