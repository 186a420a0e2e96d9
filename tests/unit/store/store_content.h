// Test helpers: a Store's content as plain values (to compare a loaded image with the original), and
// a random store of strings, sets and hashes with TTLs, flags and large containers.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host/common/rng.h"
#include "host/store/store.h"

namespace tally::store::testing {

inline constexpr uint64_t kNow = 1'700'000'000'000ULL;

// prefix + decimal i (also keeps GCC 12's -Wrestrict false alarm on "literal" + std::string away).
inline std::string numbered(std::string_view prefix, uint64_t i) {
  std::string s(prefix);
  s += std::to_string(i);
  return s;
}

struct Item {
  ValueType type = ValueType::kString;
  std::string value;
  std::set<std::string> members;
  std::map<std::string, std::string> fields;
  std::vector<std::string> items;                       // a list, in order
  std::vector<std::pair<std::string, double>> scored;   // a sorted set, in order
  uint64_t expire_at_ms = 0;
  uint32_t client_flags = 0;
  uint64_t cas = 0;
  bool operator==(const Item&) const = default;
};
using Content = std::map<std::string, Item>;

inline Content content_of(const Store& s) {
  Content c;
  s.for_each([&](const Entry& e) {
    Item it;
    it.type = e.type();
    it.expire_at_ms = e.expire_at_ms();
    it.client_flags = e.client_flags();
    it.cas = e.cas();
    if (e.type() == ValueType::kString) it.value = e.string_value();
    if (e.type() == ValueType::kSet) it.members.insert(e.set_value()->members().begin(), e.set_value()->members().end());
    if (e.type() == ValueType::kHash) it.fields.insert(e.hash_value()->fields().begin(), e.hash_value()->fields().end());
    if (e.type() == ValueType::kList) it.items.assign(e.list_value()->items().begin(), e.list_value()->items().end());
    if (e.type() == ValueType::kStream) e.stream_value()->encode_canonical(it.value);  // all of it, groups too
    if (e.type() == ValueType::kZSet) {
      for (const auto* n = e.zset_value()->first(); n != nullptr; n = n->next()) it.scored.emplace_back(n->member, n->score);
    }
    c.emplace(std::string(e.key()), std::move(it));
  });
  return c;
}

// "" when equal, else the first difference in words.
inline std::string first_difference(const Content& want, const Content& got) {
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    if (it == got.end()) return "missing key " + k;
    const Item& g = it->second;
    if (g.type != w.type) return "type of " + k;
    if (g.value != w.value) return "value of " + k;
    if (g.members != w.members) return "members of " + k;
    if (g.fields != w.fields) return "fields of " + k;
    if (g.items != w.items) return "items of " + k;
    if (g.scored != w.scored) return "sorted members of " + k;
    if (g.expire_at_ms != w.expire_at_ms) return "expiry of " + k;
    if (g.client_flags != w.client_flags) return "flags of " + k;
    if (g.cas != w.cas) return "CAS of " + k;
  }
  for (const auto& [k, g] : got) {
    if (want.count(k) == 0) return "extra key " + k;
  }
  return "";
}

inline std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.uniform(256));
  return s;
}

// One random key "k<i>": a string (some with TTL and flags), a set, a hash, a list or a sorted set; one
// in 50 containers is large enough to be written in several records.
inline void add_random_key(Store& s, Rng& rng, uint64_t i) {
  const std::string key = numbered("k", i);
  s.erase(key, kNow);  // a rename may have taken the name already
  const uint64_t ttl = rng.chance(1, 4) ? kNow + rng.range(1, 20'000) : 0;
  const uint64_t kind = rng.uniform(12);
  if (kind < 6) {
    const std::string value = random_bytes(rng, rng.range(0, 40));
    const uint32_t flags = rng.chance(1, 3) ? static_cast<uint32_t>(rng.next()) : 0;
    s.set_string(key, value, ttl, false, flags);
    return;
  }
  const size_t n = rng.chance(1, 50) ? rng.range(1000, 3000) : rng.range(1, 8);
  if (kind >= 10) {
    Entry* e = kind == 10 ? s.create_list(key) : s.create_zset(key);
    for (size_t m = 0; m < n; ++m) {
      const std::string member = numbered("m", rng.uniform(4 * n));
      if (kind == 10) {
        s.edit_list(e, [&](ListValue& l) { return rng.chance(1, 2) ? (l.push_back(member), 0) : (l.push_front(member), 0); });
      } else {
        const double score = static_cast<double>(rng.uniform(2 * n)) / 4;
        s.edit_zset(e, [&](ZSetValue& z) { return z.put(member, score); });
      }
    }
    if (ttl != 0) s.set_expire(e, ttl);
    return;
  }
  Entry* e = kind < 8 ? s.create_set(key) : s.create_hash(key);
  for (size_t m = 0; m < n; ++m) {
    const std::string member = numbered("m", rng.uniform(4 * n));
    if (kind < 8) {
      s.set_add(e, member);
    } else {
      s.hash_set(e, member, random_bytes(rng, rng.range(0, 20)));
    }
  }
  if (ttl != 0) s.set_expire(e, ttl);
}

}  // namespace tally::store::testing
