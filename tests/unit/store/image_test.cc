// Entry records round trip, and an image equals the store at its start whatever writes come between
// its slices (property test over seeds); slices stay within their budget on a 200k-key store.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <chrono>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/store/entry_record.h"
#include "host/store/image.h"
#include "host/store/store.h"
#include "tests/unit/store/store_content.h"

namespace tally::store {
namespace {

using testing::Content;
using testing::content_of;
using testing::first_difference;
using testing::kNow;

// The whole image in slices of `budget` bytes, each one a chunk body.
std::vector<std::string> image_chunks(ImageWriter& image, size_t budget) {
  std::vector<std::string> chunks;
  for (bool done = false; !done;) {
    std::string out;
    done = image.step(out, budget);
    if (!out.empty()) chunks.push_back(std::move(out));
  }
  return chunks;
}

Status load_chunks(const std::vector<std::string>& chunks, Store& into) {
  for (const std::string& c : chunks) TALLY_RETURN_IF_ERROR(load_entries(c, into));
  return Status::ok();
}

// Record kinds in a body, in order (the framing is trusted here: the tests wrote it).
std::vector<RecordKind> kinds_of(std::string_view body) {
  std::vector<RecordKind> kinds;
  for (size_t at = 0; at < body.size();) {
    uint32_t r = 0;
    std::memcpy(&r, body.data() + at, 4);
    kinds.push_back(static_cast<RecordKind>(body[at + 4]));
    at += 4 + r;
  }
  return kinds;
}

TEST(EntryRecord, EveryTypeRoundTripsWithTtlFlagsAndCas) {
  Store s;
  Rng rng(7);
  s.set_string("plain", "v", 0, false);
  s.set_string("ttl-and-flags", "value", kNow + 1234, false, 0xdeadbeef);
  s.set_string("", "empty key", 0, false);
  s.set_string("empty value", "", kNow + 1, false, 1);
  s.set_string("large", testing::random_bytes(rng, 1 << 20), 0, false, 9);
  s.set_string(std::string(5000, 'w'), testing::random_bytes(rng, 70'000), kNow + 5, false);  // wide
  s.create_set("empty-set");
  Entry* set = s.create_set("set");
  for (int i = 0; i < 5; ++i) s.set_add(set, testing::numbered("member", i));
  s.set_add(set, "");
  s.set_expire(s.lookup("set", kNow, Access::kPeek), kNow + 99);
  Entry* big = s.create_set(std::string(2000, 'b'));  // wide key, several records
  for (int i = 0; i < 5000; ++i) s.set_add(big, testing::numbered("m", i));
  Entry* hash = s.create_hash("hash");
  s.hash_set(hash, "f", "v");
  s.hash_set(hash, "", "");
  s.hash_set(hash, "big", std::string(100'000, 'x'));
  Entry* wide = s.create_hash("wide-hash");
  for (int i = 0; i < 3000; ++i) s.hash_set(wide, testing::numbered("field", i), std::to_string(i * i));
  Entry* list = s.create_list("list");
  s.edit_list(list, [](ListValue& l) {
    for (int i = 0; i < 4000; ++i) l.push_back(testing::numbered("item", i % 700));  // repeats kept
    l.push_front("");
    return 0;
  });
  Entry* zset = s.create_zset("zset");
  s.edit_zset(zset, [](ZSetValue& z) {
    for (int i = 0; i < 3000; ++i) z.put(testing::numbered("z", i), i % 3 == 0 ? -0.5 * i : 1.0 * (i % 17));
    z.put("inf", std::numeric_limits<double>::infinity());
    z.put("-inf", -std::numeric_limits<double>::infinity());
    return 0;
  });
  s.set_expire(s.lookup("zset", kNow, Access::kPeek), kNow + 7);
  s.create_stream("empty-stream");
  Entry* stream = s.create_stream("stream");
  s.edit_stream(stream, [](StreamValue& v) {
    for (uint64_t i = 1; i <= 3000; ++i) {
      const std::string n = std::to_string(i);
      const std::string_view f[] = {"field", n, "", std::string_view("x\0y", 3)};
      v.append({1000 + i / 7, i % 7}, f);
    }
    v.erase({1001, 0});
    v.create_group("g", {1100, 0}, 700);
    v.create_group("", {}, StreamValue::kEntriesReadUnknown);
    StreamValue::Group& g = *v.group_mut("g");
    StreamValue::Consumer& a = v.consumer(g, "alice");
    v.consumer(g, "idle-bob").seen_ms = kNow;
    for (uint64_t i = 2; i < 60; ++i) v.pend(g, {1000 + i / 7, i % 7}, "alice", a, kNow + i, i);
    v.ack(g, {1002, 0});
  });
  s.set_expire(s.lookup("stream", kNow, Access::kPeek), kNow + 70);
  s.touch_cas(s.lookup("plain", kNow, Access::kPeek));
  const Content want = content_of(s);

  std::string body;
  s.for_each([&](const Entry& e) { ASSERT_TRUE(encode_entry(e, body).is_ok()); });
  const std::vector<RecordKind> kinds = kinds_of(body);
  EXPECT_GT(std::count(kinds.begin(), kinds.end(), RecordKind::kSetMore), 0);
  EXPECT_GT(std::count(kinds.begin(), kinds.end(), RecordKind::kHashMore), 0);
  EXPECT_GT(std::count(kinds.begin(), kinds.end(), RecordKind::kListMore), 0);
  EXPECT_GT(std::count(kinds.begin(), kinds.end(), RecordKind::kZSetMore), 0);
  EXPECT_GT(std::count(kinds.begin(), kinds.end(), RecordKind::kStreamMore), 0);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), RecordKind::kStreamGroup), 2);
  auto counted = count_entries(body);
  ASSERT_TRUE(counted.is_ok()) << counted.status().to_string();
  EXPECT_EQ(*counted, s.size());

  Store loaded;
  ASSERT_TRUE(load_entries(body, loaded).is_ok());
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
  EXPECT_EQ(loaded.cas_counter(), s.cas_counter());  // the newest CAS is the last handed out
  // Accounting of restored entries matches entries made by commands.
  uint64_t bytes = 0;
  loaded.for_each([&](const Entry& e) { bytes += loaded.entry_bytes(e); });
  EXPECT_LE(bytes, loaded.used_memory_bytes());
}

TEST(EntryRecord, ContainerRecordsStayNearTheirTargetSize) {
  Store s;
  Entry* set = s.create_set("s");
  for (int i = 0; i < 20'000; ++i) s.set_add(set, testing::numbered("member-", i));
  std::string body;
  ASSERT_TRUE(encode_entry(*s.lookup("s", kNow), body).is_ok());
  size_t records = 0;
  for (size_t at = 0; at < body.size(); ++records) {
    uint32_t r = 0;
    std::memcpy(&r, body.data() + at, 4);
    EXPECT_LE(r, kContainerPartBytes + 64);
    at += 4 + r;
  }
  EXPECT_GE(records, body.size() / (kContainerPartBytes + 64));
}

// Each malformed body is refused with kCorruption and a reason, never a crash.
TEST(EntryRecord, LoaderRefusesMalformedRecords) {
  Store src;
  src.set_string("a", "value", 0, false);
  Entry* set = src.create_set("s");
  for (int i = 0; i < 3000; ++i) src.set_add(set, testing::numbered("m", i));
  std::string str_rec, set_recs;
  ASSERT_TRUE(encode_entry(*src.lookup("a", kNow), str_rec).is_ok());
  ASSERT_TRUE(encode_entry(*src.lookup("s", kNow), set_recs).is_ok());
  uint32_t first_set_record = 0;
  std::memcpy(&first_set_record, set_recs.data(), 4);
  const std::string set_head = set_recs.substr(0, 4 + first_set_record);
  const std::string set_more = set_recs.substr(4 + first_set_record);
  ASSERT_EQ(kinds_of(set_more).front(), RecordKind::kSetMore);

  auto refused = [](const std::string& body, std::string_view why) {
    Store into;
    Status st = load_entries(body, into);
    EXPECT_EQ(st.code(), Code::kCorruption) << why;
    EXPECT_NE(st.message().find("snapshot record"), std::string::npos) << st.message();
  };
  refused(str_rec.substr(0, str_rec.size() - 1), "cut short");
  refused(str_rec + str_rec, "repeated key");
  refused(set_more + set_head, "continuation before its entry");
  uint32_t first_more_record = 0;
  std::memcpy(&first_more_record, set_more.data(), 4);
  refused(set_head + set_more.substr(0, 4 + first_more_record) + set_more, "repeated members");
  std::string bad_kind = str_rec;
  bad_kind[4] = 13;
  refused(bad_kind, "unknown kind");
  // A sorted set whose score is NaN, and one that names a member twice.
  Store zs;
  Entry* z = zs.create_zset("z");
  zs.edit_zset(z, [](ZSetValue& v) { return v.put("m", 1.5); });
  std::string zrec;
  ASSERT_TRUE(encode_entry(*z, zrec).is_ok());
  std::string nan_rec = zrec;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ASSERT_EQ(nan_rec.size(), 4u + 1 + 4 + 1 + 20 + 4 + 4 + 1 + 8);
  std::memcpy(nan_rec.data() + nan_rec.size() - 8, &nan, 8);
  refused(nan_rec, "NaN score");
  std::string twice = zrec;
  twice.append(twice.substr(4 + 1 + 4 + 1 + 20 + 4));  // the member and score again
  uint32_t count = 2, len = static_cast<uint32_t>(twice.size() - 4);
  std::memcpy(twice.data() + 4 + 1 + 4 + 1 + 20, &count, 4);
  std::memcpy(twice.data(), &len, 4);
  refused(twice, "repeated sorted set member");
  std::string cas0 = str_rec;
  std::memset(cas0.data() + 4 + 1 + 4 + 1 + 12, 0, 8);  // length, kind, key length, "a", expiry, flags
  refused(cas0, "CAS 0");
  std::string long_len = str_rec;
  const uint32_t huge = 0xfffffff0u;
  std::memcpy(long_len.data(), &huge, 4);
  refused(long_len, "record length past the body");
  std::string long_value = str_rec;
  std::memcpy(long_value.data() + long_value.size() - 5 - 4, &huge, 4);
  refused(long_value, "value length past the record");
  std::string trailing = str_rec;
  trailing.push_back('x');
  const uint32_t r = static_cast<uint32_t>(trailing.size() - 4);
  std::memcpy(trailing.data(), &r, 4);
  refused(trailing, "bytes after the value");
  EXPECT_FALSE(count_entries(long_len).is_ok());
  EXPECT_FALSE(count_entries(bad_kind).is_ok());
}

TEST(Image, QuietStoreImageEqualsItsContent) {
  Store s;
  Rng rng(1);
  for (uint64_t i = 0; i < 3000; ++i) testing::add_random_key(s, rng, i);
  const Content want = content_of(s);
  ImageWriter image(s);
  EXPECT_EQ(image.cas_counter(), s.cas_counter());
  const std::vector<std::string> chunks = image_chunks(image, 4096);
  ASSERT_TRUE(image.status().is_ok());
  EXPECT_FALSE(s.has_image());
  EXPECT_EQ(image.entries(), s.size());
  Store loaded;
  ASSERT_TRUE(load_chunks(chunks, loaded).is_ok());
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
}

// Random writes of every kind, applied between an image's slices.
class Mutator {
 public:
  Mutator(Store& s, Rng& rng, uint64_t names) : s_(s), rng_(rng), names_(names) {}
  uint64_t now = kNow;
  bool flushes = false;  // in a tenth of the seeds: a flush copies out the rest of the image at once
  std::vector<std::string> big_keys;  // containers written in several records

  void run() {
    const std::string k = any_key();
    Entry* e = s_.lookup(k, now, Access::kPeek);
    switch (rng_.uniform(18)) {
      case 0: testing::add_random_key(s_, rng_, names_++); break;
      case 1:  // overwrite in place: same size, same TTL and flags
        if (e != nullptr && e->type() == ValueType::kString) {
          s_.set_string(k, testing::random_bytes(rng_, e->value_bytes()), 0, true, e->client_flags());
        }
        break;
      case 2: {  // another size, TTL, flags or type
        const size_t bytes = rng_.chance(1, 100) ? 70'000 : rng_.range(0, 64);
        const std::string v = testing::random_bytes(rng_, bytes);
        const uint64_t ttl = rng_.chance(1, 3) ? now + rng_.range(1, 20'000) : 0;
        const uint32_t flags = rng_.chance(1, 2) ? 0 : static_cast<uint32_t>(rng_.next());
        s_.set_string(k, v, ttl, false, flags);
        break;
      }
      case 3:  // append
        if (e != nullptr && e->type() == ValueType::kString) {
          const std::string v = std::string(e->string_value()) + testing::random_bytes(rng_, rng_.range(1, 30));
          s_.set_string(k, v, 0, true, e->client_flags());
        }
        break;
      case 4: s_.erase(k, now); break;
      case 5:
        if (e != nullptr) s_.set_expire(e, now + rng_.range(1, 20'000));  // keeps the CAS
        break;
      case 6:
        if (e != nullptr) s_.persist(e);  // keeps the CAS
        break;
      case 7:
        if (e != nullptr) s_.rename(e, any_key());
        break;
      case 8: container_write(k, e, ValueType::kSet); break;
      case 9: container_write(k, e, ValueType::kHash); break;
      case 10:  // a write to a large container, likely one the walk has begun
        if (!big_keys.empty()) {
          const std::string& b = big_keys[rng_.uniform(big_keys.size())];
          Entry* be = s_.lookup(b, now, Access::kPeek);
          if (be == nullptr || be->type() == ValueType::kString) break;
          if (be->type() == ValueType::kList || be->type() == ValueType::kZSet || be->type() == ValueType::kStream) {
            list_or_zset_write(b, be);
          } else {
            container_write(b, be, be->type());
          }
        }
        break;
      case 11:
        if (e != nullptr) s_.touch_cas(e);
        break;
      case 12:  // time passes: lazy and active expiry
        now += rng_.range(0, 500);
        s_.lookup(any_key(), now);
        s_.active_expire(now, 20);
        break;
      case 13: {  // eviction under a small limit
        s_.set_maxmemory(s_.used_memory_bytes() - s_.used_memory_bytes() / 20);
        (void)s_.evict_for_write(now);
        s_.set_maxmemory(0);
        break;
      }
      case 14:
        if (flushes && rng_.chance(1, 40)) s_.flush();
        break;
      case 15: s_.random_entry(now); break;
      case 16: list_or_zset_write(k, e); break;
      default:  // new keys only: fills the frozen table toward its limit
        for (int i = 0; i < 4; ++i) testing::add_random_key(s_, rng_, names_++);
    }
  }

 private:
  std::string any_key() { return testing::numbered("k", rng_.uniform(names_ + 8)); }

  void container_write(const std::string& k, Entry* e, ValueType type) {
    if (e == nullptr) e = type == ValueType::kSet ? s_.create_set(k) : s_.create_hash(k);
    if (e->type() != type) return;
    const std::string m = testing::numbered("m", rng_.uniform(64));
    if (type == ValueType::kSet) {
      if (rng_.chance(1, 2)) {
        s_.set_add(e, m);
      } else {
        s_.set_remove(e, m);
      }
      if (e->set_value()->size() == 0) s_.erase(e);
    } else {
      if (rng_.chance(1, 2)) {
        s_.hash_set(e, m, testing::random_bytes(rng_, rng_.range(0, 30)));
      } else {
        s_.hash_del(e, m);
      }
      if (e->hash_value()->size() == 0) s_.erase(e);
    }
  }

  // A push, pop or score change on a list or sorted set, or an append, delete or group change on a
  // stream (creating one of them when the key is free).
  void list_or_zset_write(const std::string& k, Entry* e) {
    if (e == nullptr) {
      const uint64_t pick = rng_.uniform(3);
      e = pick == 0 ? s_.create_list(k) : pick == 1 ? s_.create_zset(k) : s_.create_stream(k);
    }
    if (e->type() == ValueType::kStream) {
      s_.edit_stream(e, [&](StreamValue& v) {
        StreamId next;
        v.last_id().incr(next);
        const std::string n = std::to_string(rng_.uniform(1000));
        const std::string_view f[] = {"n", n};
        switch (rng_.uniform(4)) {
          case 0: case 1: v.append(next, f); break;
          case 2: if (!v.empty()) v.erase(v.first_id()); break;
          case 3: {
            if (v.group("g") == nullptr) v.create_group("g", {}, 0);
            StreamValue::Group& g = *v.group_mut("g");
            const std::string_view name = rng_.chance(1, 2) ? "c1" : "c2";
            StreamValue::Consumer& c = v.consumer(g, name);
            if (!v.empty()) v.pend(g, v.first_id(), name, c, rng_.uniform(99), 1);
            break;
          }
        }
      });
      return;
    }
    const std::string m = testing::numbered("m", rng_.uniform(64));
    if (e->type() == ValueType::kList) {
      s_.edit_list(e, [&](ListValue& l) {
        if (rng_.chance(1, 3) && !l.empty()) return (l.pop_front(), 0);
        return (l.push_back(m), 0);
      });
      if (e->list_value()->empty()) s_.erase(e);
    } else if (e->type() == ValueType::kZSet) {
      s_.edit_zset(e, [&](ZSetValue& z) { return rng_.chance(1, 3) ? z.remove(m) : z.put(m, static_cast<double>(rng_.uniform(10))); });
      if (e->zset_value()->empty()) s_.erase(e);
    }
  }

  Store& s_;
  Rng& rng_;
  uint64_t names_;
};

struct Coverage {
  int mid_rehash = 0;
  int finished_early = 0;
  uint64_t copied = 0;
  uint64_t drained = 0;
};

// The image taken while `seed`'s random writes run between its slices, loaded into a fresh store,
// equals the store at the image's start.
void check_point_in_time(uint64_t seed, Coverage& cov) {
  Rng rng(seed);
  StoreOptions opts;
  opts.seed = seed;
  opts.policy = rng.chance(1, 2) ? EvictionPolicy::kAllKeysRandom : EvictionPolicy::kAllKeysLru;
  Store s(opts);
  const uint64_t keys = rng.chance(1, 10) ? rng.range(0, 30) : rng.range(0, 4000);
  Mutator m(s, rng, keys);
  m.flushes = seed % 10 == 7;
  for (uint64_t i = 0; i < keys; ++i) testing::add_random_key(s, rng, i);
  // A third of the seeds begin while an incremental resize is under way.
  for (uint64_t i = keys; seed % 3 == 0 && s.size() > 1024 && !s.is_rehashing() && i < keys + 5000; ++i) {
    testing::add_random_key(s, rng, i);
  }
  s.for_each([&](const Entry& e) {
    const size_t n = e.type() == ValueType::kSet    ? e.set_value()->size()
                     : e.type() == ValueType::kHash ? e.hash_value()->size()
                     : e.type() == ValueType::kList ? e.list_value()->size()
                     : e.type() == ValueType::kZSet ? e.zset_value()->size()
                                                    : 0;
    if (n >= 1000) m.big_keys.emplace_back(e.key());
  });
  cov.mid_rehash += s.is_rehashing() ? 1 : 0;

  const Content want = content_of(s);
  const uint64_t cas_at_start = s.cas_counter();
  std::vector<std::string> chunks;
  ImageStats stats;
  uint64_t entries = 0;
  {
    ImageWriter image(s);
    for (bool done = false; !done;) {
      std::string out;
      done = image.step(out, rng.range(64, 4096));
      if (!out.empty()) chunks.push_back(std::move(out));
      for (uint64_t w = rng.range(0, 12); w > 0; --w) m.run();
    }
    ASSERT_TRUE(image.status().is_ok()) << "seed " << seed;
    EXPECT_EQ(image.cas_counter(), cas_at_start);
    stats = image.stats();
    entries = image.entries();
  }
  cov.finished_early += stats.finished_early ? 1 : 0;
  cov.copied += stats.copied_entries;
  cov.drained += stats.drained_containers;

  uint64_t counted = 0;
  for (const std::string& c : chunks) {
    auto n = count_entries(c);
    ASSERT_TRUE(n.is_ok()) << "seed " << seed << ": " << n.status().to_string();
    counted += *n;
  }
  EXPECT_EQ(counted, want.size()) << "seed " << seed;
  EXPECT_EQ(entries, want.size()) << "seed " << seed;
  Store loaded;
  Status st = load_chunks(chunks, loaded);
  ASSERT_TRUE(st.is_ok()) << "seed " << seed << ": " << st.to_string();
  EXPECT_EQ(first_difference(want, content_of(loaded)), "") << "seed " << seed;
  EXPECT_LE(loaded.cas_counter(), cas_at_start) << "seed " << seed;
}

TEST(Image, PointInTimeUnderRandomWritesBetweenSlices) {
  constexpr uint64_t kSeeds = 300;
  Coverage cov;
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    check_point_in_time(seed, cov);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "first failing seed " << seed;
      break;
    }
  }
  std::printf("seeds %llu: %d began mid-resize, %d finished early, %llu entries copied by writes, "
              "%llu begun containers drained by writes\n",
              static_cast<unsigned long long>(kSeeds), cov.mid_rehash, cov.finished_early,
              static_cast<unsigned long long>(cov.copied), static_cast<unsigned long long>(cov.drained));
  // The paths the property depends on were all taken.
  EXPECT_GT(cov.mid_rehash, 0);
  EXPECT_GT(cov.finished_early, 0);
  EXPECT_GT(cov.copied, 0u);
  EXPECT_GT(cov.drained, 0u);
}

TEST(Image, OnlyOneImageAtATime) {
  Store s;
  s.set_string("a", "1", 0, false);
  ImageWriter image(s);
  EXPECT_TRUE(s.has_image());
  EXPECT_DEATH({ ImageWriter second(s); }, "one image per store");
}

TEST(Image, AbandonedImageLeavesTheStoreServingAndResizing) {
  Store s;
  for (int i = 0; i < 5000; ++i) s.set_string(testing::numbered("key", i), "v", 0, false);
  const uint64_t buckets = s.bucket_count();
  {
    ImageWriter image(s);
    std::string out;
    EXPECT_FALSE(image.step(out, 1024));
    for (int i = 0; i < 5000; ++i) s.erase(testing::numbered("key", i), kNow);
    EXPECT_EQ(s.bucket_count(), buckets);  // frozen while the image walks
  }
  EXPECT_FALSE(s.has_image());
  s.set_string("x", "y", 0, false);
  for (int i = 0; i < 10'000 && s.is_rehashing(); ++i) s.lookup("x", kNow);
  EXPECT_LT(s.bucket_count(), buckets);  // the shrink that waited happens
}

TEST(Image, OverfullTableFinishesTheImageAtOnce) {
  Store s;
  for (int i = 0; i < 100; ++i) s.set_string(testing::numbered("old", i), std::to_string(i), 0, false);
  const Content want = content_of(s);
  ImageWriter image(s);
  std::string first;
  ASSERT_FALSE(image.step(first, 64));
  const uint64_t buckets = s.bucket_count();
  for (int i = 0; s.has_image(); ++i) {
    ASSERT_LT(i, 10'000);
    s.set_string(testing::numbered("new", i), "v", 0, false);
    if (i % 3 == 0) s.set_string(testing::numbered("old", i % 100), "changed", 0, false);
  }
  EXPECT_GT(s.size(), Store::kImageLoadFactorMax * buckets);
  EXPECT_TRUE(image.stats().finished_early);
  std::vector<std::string> chunks = image_chunks(image, 256);
  chunks.insert(chunks.begin(), first);
  Store loaded;
  ASSERT_TRUE(load_chunks(chunks, loaded).is_ok());
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
}

TEST(Image, FlushDuringTheImageKeepsTheStartContent) {
  Store s;
  Rng rng(3);
  for (uint64_t i = 0; i < 2000; ++i) testing::add_random_key(s, rng, i);
  const Content want = content_of(s);
  ImageWriter image(s);
  std::string first;
  ASSERT_FALSE(image.step(first, 512));
  s.flush();
  s.set_string("after", "flush", 0, false);
  EXPECT_FALSE(s.has_image());
  std::vector<std::string> chunks = image_chunks(image, 512);
  chunks.insert(chunks.begin(), first);
  Store loaded;
  ASSERT_TRUE(load_chunks(chunks, loaded).is_ok());
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
  EXPECT_EQ(image.buffered_bytes(), 0u);
}

// Keys sharing a bucket: once a slice is full the rest of the chain waits in the buffer, so no slice
// holds two of these values.
TEST(Image, ASliceExceedsItsBudgetByOneRecordAtMost) {
  constexpr size_t kValueBytes = 10'000;
  Store s;
  Rng rng(4);
  for (int i = 0; i < 16; ++i) {
    s.set_string(testing::numbered("big", i), testing::random_bytes(rng, kValueBytes), 0, false);
  }
  ASSERT_EQ(s.bucket_count(), Store::kInitialBuckets);  // 16 keys in 16 buckets: chains of several
  const Content want = content_of(s);
  ImageWriter image(s);
  const std::vector<std::string> chunks = image_chunks(image, 100);
  for (const std::string& c : chunks) EXPECT_LT(c.size(), 2 * kValueBytes);
  Store loaded;
  ASSERT_TRUE(load_chunks(chunks, loaded).is_ok());
  EXPECT_EQ(first_difference(want, content_of(loaded)), "");
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Slices on a 200k-key store: their size stays within the budget plus one record, and their time is
// reported (the shell wants <= 1 ms per slice): wall time, and the thread's CPU time, which a machine
// shared with other work does not inflate. Writes run between slices, so copies are included.
TEST(Image, SlicesStayWithinTheirBudgetOn200kKeys) {
  constexpr size_t kKeys = 200'000;
  constexpr size_t kBudget = 64 << 10;
  Store s;
  Rng rng(11);
  for (size_t i = 0; i < kKeys; ++i) {
    s.set_string(testing::numbered("key:", i), testing::random_bytes(rng, 32), 0, false);
  }
  Entry* big = s.create_set("big-set");
  for (int i = 0; i < 200'000; ++i) s.set_add(big, testing::numbered("member:", i));
  Entry* hash = s.create_hash("big-hash");
  for (int i = 0; i < 100'000; ++i) s.hash_set(hash, testing::numbered("field:", i), "value");

  ImageWriter image(s);
  std::vector<double> step_us, cpu_us;
  size_t max_bytes = 0, total = 0;
  for (bool done = false; !done;) {
    std::string out;
    out.reserve(kBudget + kContainerPartBytes + 4096);
    const double c0 = thread_cpu_us();
    const auto t0 = std::chrono::steady_clock::now();
    done = image.step(out, kBudget);
    const auto t1 = std::chrono::steady_clock::now();
    cpu_us.push_back(thread_cpu_us() - c0);
    step_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    max_bytes = std::max(max_bytes, out.size());
    total += out.size();
    for (int w = 0; w < 20; ++w) {
      s.set_string(testing::numbered("key:", rng.uniform(kKeys)), testing::random_bytes(rng, 32), 0, false);
    }
  }
  ASSERT_TRUE(image.status().is_ok());
  std::sort(step_us.begin(), step_us.end());
  std::sort(cpu_us.begin(), cpu_us.end());
  const double p50 = step_us[step_us.size() / 2], p99 = step_us[step_us.size() * 99 / 100];
  const double cpu_p50 = cpu_us[cpu_us.size() / 2], cpu_p99 = cpu_us[cpu_us.size() * 99 / 100];
  std::printf("%zu keys, budget %zu: %zu slices, %zu bytes, largest slice %zu bytes; slice wall time "
              "p50 %.0f us, p99 %.0f us, max %.0f us; CPU time p50 %.0f us, p99 %.0f us, max %.0f us; "
              "%llu entries copied by writes\n",
              s.size(), kBudget, step_us.size(), total, max_bytes, p50, p99, step_us.back(), cpu_p50, cpu_p99,
              cpu_us.back(), static_cast<unsigned long long>(image.stats().copied_entries));
  EXPECT_LE(max_bytes, kBudget + kContainerPartBytes + 256);
  EXPECT_LT(p50, 1000.0);
}

}  // namespace
}  // namespace tally::store
