// Property tests on reachable random states: merge is commutative, associative, idempotent,
// and shipping a mutation's delta has the same effect as shipping the whole mutated state.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/crdt/lww_map.h"
#include "host/replication/crdt/lww_register.h"
#include "host/replication/crdt/or_set.h"
#include "host/replication/crdt/pn_counter.h"

namespace tally::crdt {
namespace {

constexpr int kCases = 3000;

// "e3", "f1", ...; appended rather than operator+ to dodge a GCC 12 -Wrestrict false positive.
std::string tagged(char tag, const std::string& rest) {
  std::string s(1, tag);
  s += rest;
  return s;
}
constexpr uint32_t kNodes = 3;

// Small stamp ranges on purpose: equal HLCs on different nodes are where LWW bugs live.
Version random_version(Rng& rng) {
  return Version{HlcStamp{rng.range(1, 4), static_cast<uint32_t>(rng.uniform(3))},
                 static_cast<uint32_t>(rng.range(1, kNodes))};
}
// A version near `current`, usually (not always) newer, so mutations stay legal but still tie.
Version newer_version(const Version& current, uint32_t node, Rng& rng) {
  return Version{HlcStamp{current.hlc.wall_ms + rng.uniform(2), static_cast<uint32_t>(rng.uniform(3))}, node};
}
// The value is a function of the version, as in a real cluster where a stamp names one write.
std::optional<std::string> value_for(const Version& v) {
  if ((v.hlc.wall_ms + v.hlc.logical + v.node_id) % 5 == 0) return std::nullopt;
  return tagged('v', v.to_string());
}

// One mutation applied locally by `node`: mutates the state and returns the delta, or nullopt
// if the random choice is not a legal mutation of this state. Each replica mutates as its own
// node, as in a cluster (two replicas issuing the same dot or stamp would be a different bug).
template <typename T>
using Mutator = std::function<std::optional<T>(T&, uint32_t, Rng&)>;
template <typename T>
using Merger = std::function<T(const T&, const T&)>;

// Reachable states: replicas mutate and exchange deltas or full states at random.
template <typename T>
std::vector<T> reachable_states(Rng& rng, const Mutator<T>& mutate, const Merger<T>& join) {
  std::vector<T> replicas(kNodes);
  std::vector<T> pool;
  for (int step = 0; step < 400; ++step) {
    const uint32_t node = static_cast<uint32_t>(rng.uniform(kNodes));
    T& r = replicas[node];
    if (rng.chance(2, 3)) {
      std::optional<T> delta = mutate(r, node + 1, rng);
      if (delta && rng.chance(1, 2)) {
        T& other = replicas[rng.uniform(kNodes)];
        other = join(other, *delta);
      }
    } else {
      T& other = replicas[rng.uniform(kNodes)];
      r = join(r, other);
    }
    pool.push_back(r);
  }
  return pool;
}

template <typename T>
void check_lattice_laws(uint64_t seed, const Mutator<T>& mutate, const Merger<T>& join) {
  Rng rng(seed);
  const std::vector<T> pool = reachable_states<T>(rng, mutate, join);
  auto pick = [&]() -> const T& { return pool[rng.uniform(pool.size())]; };
  int deltas_checked = 0;
  for (int i = 0; i < kCases; ++i) {
    const T& a = pick();
    const T& b = pick();
    const T& c = pick();
    ASSERT_EQ(join(a, b), join(b, a)) << "commutativity, case " << i;
    ASSERT_EQ(join(join(a, b), c), join(a, join(b, c))) << "associativity, case " << i;
    ASSERT_EQ(join(a, a), a) << "idempotence, case " << i;
    // Delta: x' = x mutated locally; x ⊔ d == x', and any replica b that has seen x
    // ends the same after receiving d as after receiving x'.
    T x = a;
    const T before = x;
    std::optional<T> d = mutate(x, kNodes + 1, rng);  // a node that issued nothing in the pool
    if (!d) continue;
    ++deltas_checked;
    ASSERT_EQ(join(before, *d), x) << "delta applied locally, case " << i;
    const T seen = join(b, before);
    ASSERT_EQ(join(seen, *d), join(seen, x)) << "delta vs full state, case " << i;
  }
  EXPECT_GT(deltas_checked, kCases / 4);
}

Mutator<LwwRegister> lww_register_mutator() {
  return [](LwwRegister& r, uint32_t node, Rng& rng) -> std::optional<LwwRegister> {
    Version v = newer_version(r.version, node, rng);
    if (!(v > r.version)) return std::nullopt;
    return r.assign(value_for(v), v);
  };
}

TEST(LwwRegister, LatticeLawsAndDeltas) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    check_lattice_laws<LwwRegister>(seed, lww_register_mutator(),
                                    [](const LwwRegister& a, const LwwRegister& b) { return merge(a, b); });
  }
}

TEST(LwwRegister, HigherNodeIdWinsEqualHlc) {
  LwwRegister a, b;
  a.assign("from-1", Version{HlcStamp{10, 0}, 1});
  b.assign("from-2", Version{HlcStamp{10, 0}, 2});
  EXPECT_EQ(merge(a, b).value, "from-2");
  EXPECT_EQ(merge(b, a).value, "from-2");
  LwwRegister newer;
  newer.assign(std::nullopt, Version{HlcStamp{10, 1}, 1});
  EXPECT_EQ(merge(b, newer).value, std::nullopt);  // a later delete wins over an older write
}

// The planted bug must break the laws the tests check, or the tests prove nothing.
TEST(LwwRegister, IgnoreNodeIdBugIsNotCommutative) {
  CrdtBugs bugs;
  bugs.lww_ignore_node_id = true;
  Rng rng(11);
  int found = 0;
  for (int i = 0; i < kCases && found == 0; ++i) {
    LwwRegister a, b;
    Version va = random_version(rng), vb = random_version(rng);
    a.assign(value_for(va), va);
    b.assign(value_for(vb), vb);
    found += merge(a, b, bugs) != merge(b, a, bugs) ? 1 : 0;
  }
  EXPECT_EQ(found, 1);
}

TEST(PnCounter, LatticeLawsAndDeltas) {
  Mutator<PnCounter> mutate = [](PnCounter& c, uint32_t node, Rng& rng) -> std::optional<PnCounter> {
    return c.add(node, static_cast<int64_t>(rng.uniform(21)) - 10);
  };
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    check_lattice_laws<PnCounter>(seed, mutate, [](const PnCounter& a, const PnCounter& b) { return merge(a, b); });
  }
}

TEST(PnCounter, ConcurrentIncrementsAllCount) {
  PnCounter a, b;
  a.add(1, 5);
  b.add(2, 7);
  b.add(2, -3);
  PnCounter m = merge(a, b);
  EXPECT_EQ(m.value(), 9);
  EXPECT_EQ(merge(m, a).value(), 9);  // re-delivery does not double count
  PnCounter c;
  c.add(3, INT64_MIN);
  EXPECT_EQ(c.value(), INT64_MIN);
}

Mutator<OrSet> or_set_mutator() {
  return [](OrSet& s, uint32_t node, Rng& rng) -> std::optional<OrSet> {
    const std::string e = tagged('e', std::to_string(rng.uniform(4)));
    Result<OrSet> d = rng.chance(3, 5) ? s.add(e, node) : s.remove(e);
    if (!d.is_ok()) return std::nullopt;
    return std::move(d).value();
  };
}

TEST(OrSet, LatticeLawsAndDeltas) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    check_lattice_laws<OrSet>(seed, or_set_mutator(), [](const OrSet& a, const OrSet& b) { return merge(a, b); });
  }
}

TEST(OrSet, ConcurrentAddWinsOverRemove) {
  OrSet a, b;
  OrSet d1 = a.add("x", 1).value();
  b = merge(b, d1);
  OrSet rm = a.remove("x").value();        // replica 1 removes the x it saw
  OrSet re = b.add("x", 2).value();        // replica 2 concurrently re-adds x
  EXPECT_TRUE(merge(a, re).contains("x"));
  EXPECT_TRUE(merge(b, rm).contains("x"));
  EXPECT_EQ(merge(a, re), merge(b, rm));
  OrSet gone = merge(a, re);
  gone.remove("x").value();
  EXPECT_FALSE(gone.contains("x"));
  EXPECT_FALSE(merge(gone, d1).contains("x"));  // a late duplicate of the old add stays removed
}

TEST(LwwMap, LatticeLawsAndDeltas) {
  Mutator<LwwMap> mutate = [](LwwMap& m, uint32_t node, Rng& rng) -> std::optional<LwwMap> {
    const std::string f = tagged('f', std::to_string(rng.uniform(3)));
    auto it = m.fields.find(f);
    Version v = newer_version(it == m.fields.end() ? Version{} : it->second.version, node, rng);
    if (it != m.fields.end() && !(v > it->second.version)) return std::nullopt;
    return m.assign(f, value_for(v), v).value();
  };
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    check_lattice_laws<LwwMap>(seed, mutate, [](const LwwMap& a, const LwwMap& b) { return merge(a, b); });
  }
}

TEST(LwwMap, FieldsMergeIndependently) {
  LwwMap a, b;
  a.assign("name", "ann", Version{HlcStamp{5, 0}, 1}).value();
  b.assign("name", "bob", Version{HlcStamp{4, 0}, 2}).value();
  b.assign("age", "30", Version{HlcStamp{6, 0}, 2}).value();
  LwwMap m = merge(a, b);
  EXPECT_EQ(m.get("name"), "ann");
  EXPECT_EQ(m.get("age"), "30");
  EXPECT_EQ(m.live_size(), 2u);
  m.assign("age", std::nullopt, Version{HlcStamp{7, 0}, 1}).value();
  EXPECT_EQ(merge(b, m).get("age"), std::nullopt);
  EXPECT_EQ(merge(b, m).live_size(), 1u);
}

}  // namespace
}  // namespace tally::crdt
