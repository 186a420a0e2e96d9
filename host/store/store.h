// Store: the keyspace of one shard — chained hash table of Entry, TTLs, memory accounting, eviction.
// Single-threaded: one Store per shard, driven only by its core. Time is passed in (now_ms, wall clock).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/rng.h"
#include "host/common/status.h"
#include "host/store/containers.h"
#include "host/store/entry.h"
#include "host/store/stream.h"
#include "host/store/zset.h"

namespace tally::store {

class ImageWriter;

enum class EvictionPolicy : uint8_t {
  kNoEviction,
  kAllKeysLru,
  kVolatileLru,
  kAllKeysLfu,
  kVolatileLfu,
  kVolatileTtl,
  kAllKeysRandom,
  kVolatileRandom,
};

const char* policy_name(EvictionPolicy p);                      // "allkeys-lru", ...
Result<EvictionPolicy> parse_policy(std::string_view name);     // Redis's maxmemory-policy names

// Redis's reply when a write needs memory that noeviction (or nothing evictable) cannot give.
inline constexpr std::string_view kOomError =
    "OOM command not allowed when used memory > 'maxmemory'.";

struct StoreOptions {
  uint64_t maxmemory_bytes = 0;  // 0 = no limit
  EvictionPolicy policy = EvictionPolicy::kNoEviction;
  uint32_t eviction_samples = 16;  // keys sampled per eviction round (Redis: 5)
  uint32_t lfu_log_factor = 10;    // Redis's lfu-log-factor
  uint32_t lfu_decay_minutes = 1;  // Redis's lfu-decay-time
  uint64_t seed = 0x7a11c0de;      // hash seed and sampling randomness
};

struct StoreStats {
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  uint64_t expired_keys = 0;
  uint64_t evicted_keys = 0;
};

// What the stores of one shard's partitions share: their memory total (the memory limit applies to the
// shard) and the access clock, so LRU ages compare across partitions. Touched by one thread only.
struct StoreShared {
  uint64_t used_bytes = 0;
  uint32_t lru_clock = 0;
};

// How a lookup treats the key: reads count hits/misses; all but kPeek refresh LRU/LFU.
enum class Access : uint8_t { kRead, kWrite, kPeek };

class Store {
 public:
  static constexpr uint32_t kEvictionPoolSize = 16;
  static constexpr uint32_t kEvictionSamplesMax = 64;
  static constexpr uint32_t kEvictionRoundsMax = 1024;  // per evict_for_write call
  static constexpr uint64_t kInitialBuckets = 16;
  static constexpr uint64_t kRehashAtOnceBuckets = 1024;  // smaller tables resize in one go
  static constexpr uint64_t kRehashStepBuckets = 4;       // buckets moved per store operation
  static constexpr uint64_t kBucketsMax = 1ull << 40;      // SCAN cursors stay < 2^48
  static constexpr uint64_t kStringBytesMax = 512ull << 20;  // proto-max-bulk-len
  // While an image is active the table does not resize, unless it gets this many keys per bucket.
  static constexpr uint64_t kImageLoadFactorMax = 4;

  // `shared` (optional, outliving the store) pools memory and the LRU clock with other stores.
  explicit Store(StoreOptions options = {}, StoreShared* shared = nullptr);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- lookups (lazy expiry on every one) ----
  Entry* lookup(std::string_view key, uint64_t now_ms, Access access = Access::kRead);

  // ---- writes. Each returns the (possibly moved) entry; earlier Entry* for that key are void. ----
  // Sets a string, replacing whatever the key held. keep_ttl keeps an existing TTL,
  // otherwise expire_at_ms (0 = none) becomes the TTL.
  Entry* set_string(std::string_view key, std::string_view value, uint64_t expire_at_ms,
                    bool keep_ttl, uint32_t client_flags = 0);
  // Creates an empty set/hash; the key must not exist (callers delete empty containers).
  Entry* create_set(std::string_view key);
  Entry* create_hash(std::string_view key);
  Entry* create_list(std::string_view key);
  Entry* create_zset(std::string_view key);
  Entry* create_stream(std::string_view key);
  // Changes a list or sorted set through fn(ListValue&) / fn(ZSetValue&), returning what fn returns:
  // copy-on-write for an active image before, the memory difference and a new CAS after. Callers
  // delete a container left empty.
  template <typename Fn>
  decltype(auto) edit_list(Entry* e, Fn&& fn) {
    return edit<ListValue>(e, ValueType::kList, std::forward<Fn>(fn));
  }
  template <typename Fn>
  decltype(auto) edit_zset(Entry* e, Fn&& fn) {
    return edit<ZSetValue>(e, ValueType::kZSet, std::forward<Fn>(fn));
  }
  template <typename Fn>
  decltype(auto) edit_stream(Entry* e, Fn&& fn) {
    return edit<StreamValue>(e, ValueType::kStream, std::forward<Fn>(fn));
  }
  // A change that is bookkeeping only (a consumer seen by a read that delivered nothing): accounted and
  // copied for an image like any, but the CAS stays, so WATCH and blocked readers do not see a write.
  template <typename Fn>
  decltype(auto) edit_stream_quiet(Entry* e, Fn&& fn) {
    return edit<StreamValue, false>(e, ValueType::kStream, std::forward<Fn>(fn));
  }
  bool set_add(Entry* e, std::string_view member);     // true when new
  bool set_remove(Entry* e, std::string_view member);  // true when removed
  bool hash_set(Entry* e, std::string_view field, std::string_view value);  // true when new
  bool hash_del(Entry* e, std::string_view field);
  Entry* set_expire(Entry* e, uint64_t expire_at_ms);  // expire_at_ms > 0
  Entry* persist(Entry* e);
  void touch_cas(Entry* e) {  // after an in-container change
    before_change(e);
    e->cas_ = ++cas_counter_;
  }
  bool erase(std::string_view key, uint64_t now_ms);  // false when absent or expired
  void erase(Entry* e);
  // Moves src's value and TTL to dst (replacing dst). src must exist. Returns the new dst entry.
  Entry* rename(Entry* src, std::string_view dst_key);
  void flush();

  // ---- keyspace ----
  size_t size() const { return size_; }
  size_t keys_with_expire() const { return expires_.size(); }
  // One SCAN step: visits every entry of one or more buckets (expired ones included; callers
  // filter), at least `count` entries unless the table ends; returns the next cursor (0 = done).
  // Every key present during the whole scan is visited at least once, across grows and shrinks.
  uint64_t scan(uint64_t cursor, size_t count, const std::function<void(const Entry&)>& fn) const;
  // Visits every entry (KEYS, snapshots). fn must not mutate the store.
  void for_each(const std::function<void(const Entry&)>& fn) const;
  // A uniformly chosen bucket's random live key; nullptr when empty.
  Entry* random_entry(uint64_t now_ms);

  // ---- TTL ----
  // Deletes expired keys among at most max_keys_checked sampled keys that carry a TTL.
  size_t active_expire(uint64_t now_ms, size_t max_keys_checked);
  bool is_expired(const Entry& e, uint64_t now_ms) const {
    return e.has_expire() && e.expire_at_ms() <= now_ms;
  }

  // ---- memory ----
  uint64_t used_memory_bytes() const { return used_bytes_; }
  // Moves this store's memory into another pool (its partition moved to another shard).
  void rebind_shared(StoreShared* shared) {
    TALLY_ASSERT(shared != nullptr && shared_->used_bytes >= used_bytes_);
    shared_->used_bytes -= used_bytes_;
    shared_ = shared;
    shared_->used_bytes += used_bytes_;
  }
  uint64_t maxmemory_bytes() const { return options_.maxmemory_bytes; }
  // The key's logarithmic access counter after decay (OBJECT FREQ); meaningful under an LFU policy.
  uint32_t access_frequency(const Entry& e, uint64_t now_ms) const { return lfu_decayed(e, now_ms); }
  // RESTORE ... FREQ: the key's LFU counter (0..255) as of now; nothing under an LRU policy.
  void set_access_frequency(Entry& e, uint32_t freq, uint64_t now_ms) {
    TALLY_ASSERT(freq <= 255);
    if (!lfu_policy()) return;
    e.access_ = (static_cast<uint32_t>(now_ms / 60000) & 0xFFFF) << 8 | freq;
  }
  bool lfu_policy() const {
    return options_.policy == EvictionPolicy::kAllKeysLfu || options_.policy == EvictionPolicy::kVolatileLfu;
  }
  // Keys starting with this (when not empty) are never evicted: the server's own (change streams).
  void set_pinned_prefix(std::string prefix) {
    pinned_prefix_ = std::move(prefix);
    pool_size_ = 0;
  }
  void set_maxmemory(uint64_t bytes) { options_.maxmemory_bytes = bytes; }
  EvictionPolicy policy() const { return options_.policy; }
  void set_policy(EvictionPolicy p) { options_.policy = p; pool_size_ = 0; }
  // Called before a write that may grow memory: evicts by policy until used <= maxmemory.
  // kResourceExhausted (message kOomError) when still over the limit (noeviction, nothing left).
  Status evict_for_write(uint64_t now_ms);
  // The best eviction victim under the policy (sampled into the pool) and its score (higher is a
  // better victim, comparable across stores sharing a StoreShared); nullptr when there is none.
  // The caller erases it (counting it with count_eviction) or leaves it for a better one elsewhere.
  Entry* peek_victim(uint64_t now_ms, uint64_t& score);
  void count_eviction() { ++stats_.evicted_keys; }
  // Bytes an entry takes: its block (allocator rounding included) plus container contents.
  uint64_t entry_bytes(const Entry& e) const;

  // ---- snapshots (host/store/image.h, docs/snapshot-format.md) ----
  // Loading inserts entries exactly as they were saved (CAS, expiry, flags) without running commands;
  // nullptr when the key exists. The CAS counter rises to at least `cas`. Not while an image is active.
  Entry* restore_string(std::string_view key, std::string_view value, uint64_t expire_at_ms,
                        uint32_t client_flags, uint64_t cas);
  Entry* restore_container(ValueType type, std::string_view key, uint64_t expire_at_ms,
                           uint32_t client_flags, uint64_t cas);
  // Adds to a restored set or hash without touching its CAS; false when already there.
  bool restore_member(Entry* set, std::string_view member);
  bool restore_field(Entry* hash, std::string_view field, std::string_view value);
  void restore_list_item(Entry* list, std::string_view item);  // appended
  bool restore_zset_member(Entry* zset, std::string_view member, double score);  // false when there
  // Loads into a restored stream through fn(StreamValue&) (accounted, its CAS untouched).
  template <typename Fn>
  decltype(auto) restore_stream(Entry* stream, Fn&& fn) {
    TALLY_ASSERT(image_ == nullptr && stream->type() == ValueType::kStream);
    StreamValue& v = *static_cast<StreamValue*>(stream->container());
    const int64_t before = static_cast<int64_t>(v.bytes());
    struct After {
      Store* s; StreamValue& v; int64_t before;
      ~After() { s->account(static_cast<int64_t>(v.bytes()) - before); }
    } after{this, v, before};
    return fn(v);
  }
  uint64_t cas_counter() const { return cas_counter_; }
  // Moves on every write that changed something: a new CAS, a removed key, a TTL set or dropped, a
  // flush. Whether a command wrote is whether this moved while it ran.
  uint64_t write_stamp() const { return cas_counter_ + removals_; }
  void set_cas_counter(uint64_t cas);  // never lowers it: CAS values are not reused
  // Sizes the table for `keys` keys at once (before a load) and keeps it from shrinking until they
  // are in, so loading does not rehash.
  void reserve(size_t keys);
  bool has_image() const { return image_ != nullptr; }

  // Randomness for commands that pick members (SPOP, SRANDMEMBER): seeded, so tests replay.
  Rng& rng() { return rng_; }
  // Restarts the randomness from a seed: every replica applying a logged command draws the same
  // members (SPOP) when each seeds it from the entry being applied.
  void reseed(uint64_t seed) { rng_ = Rng(seed); }
  // Called when the store removes a key on its own (an expired key found by a lookup or by active
  // expiry): a partition whose writes are logged logs the deletion. Not called for erase() and
  // flush(), which callers ask for.
  void set_expiry_observer(std::function<void(std::string_view key)> fn) { expiry_observer_ = std::move(fn); }
  // Off: lookups and random picks treat expired keys as absent but leave them in place (a replicated
  // partition removes keys only by applying logged deletions, so every replica removes the same keys
  // at the same place in its log). On by default.
  void set_erase_expired(bool yes) { erase_expired_ = yes; }
  // Calls fn with up to max_keys_checked sampled keys that have expired, removing nothing (the caller
  // logs their deletion). Returns how many it found.
  size_t collect_expired(uint64_t now_ms, size_t max_keys_checked, const std::function<void(std::string_view)>& fn);
  const StoreStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  // Buckets of both tables while a resize is in progress.
  uint64_t bucket_count() const { return t_[0].buckets.size() + t_[1].buckets.size(); }
  bool is_rehashing() const { return rehashing_; }

 private:
  struct PoolSlot {
    uint64_t score = 0;  // higher = better victim
    std::string key;
  };

  friend class ImageWriter;

  // Copy on write for an active image: runs before an entry is changed or freed. When no image is
  // active (nearly always) this is one predictable branch.
  void before_change(const Entry* e) {
    if (image_ != nullptr) [[unlikely]] image_before_change(*e);
  }
  void image_before_change(const Entry& e);

  template <typename V, bool kBumpCas = true, typename Fn>
  decltype(auto) edit(Entry* e, ValueType type, Fn&& fn) {
    TALLY_ASSERT(e->type() == type);
    before_change(e);
    V& v = *static_cast<V*>(e->container());
    const int64_t before = static_cast<int64_t>(v.bytes());
    struct After {  // runs after fn, whatever it returns
      Store* s; Entry* e; V& v; int64_t before;
      ~After() {
        s->account(static_cast<int64_t>(v.bytes()) - before);
        if (kBumpCas) e->cas_ = ++s->cas_counter_;
      }
    } after{this, e, v, before};
    return fn(v);
  }

  uint64_t hash(std::string_view key) const;
  bool pinned(const Entry& e) const { return !pinned_prefix_.empty() && e.key().starts_with(pinned_prefix_); }
  Entry** find_link(std::string_view key, uint64_t h);
  Entry* alloc_entry(ValueType type, std::string_view key, uint32_t value_bytes,
                     bool has_expire, bool has_flags);
  void free_entry(Entry* e);
  void link_new(Entry* e, uint64_t h);
  void replace(Entry** link, Entry* old_e, Entry* new_e);
  Entry** link_of(Entry* e);
  void unlink_and_free(Entry** link);
  Entry* relayout(Entry* e, bool has_expire, uint64_t expire_at_ms);
  void expires_add(Entry* e);
  void expires_remove(Entry* e);
  void destroy_container(Entry* e);
  Entry* create_container(ValueType type, std::string_view key);
  Entry* new_container(ValueType type, std::string_view key, uint64_t h, uint64_t expire_at_ms,
                       uint32_t client_flags);
  bool add_member(SetValue* s, std::string_view member);
  bool put_field(HashValue* hv, std::string_view field, std::string_view value);
  struct Table {
    std::vector<Entry*> buckets;
    uint64_t mask = 0;
  };
  void resize_if_needed();
  void start_rehash(uint64_t buckets);
  void rehash_step(uint64_t buckets_max);
  void rehash_all(uint64_t buckets);
  Entry* random_bucket_head();
  void touch(Entry* e, uint64_t now_ms);
  void init_access(Entry* e);
  uint32_t lfu_decayed(const Entry& e, uint64_t now_ms) const;
  uint64_t victim_score(const Entry& e, uint64_t now_ms) const;
  bool volatile_policy() const;
  void pool_offer(const Entry& e, uint64_t now_ms);
  void account(int64_t delta);

  StoreOptions options_;
  Rng rng_;
  uint64_t hash_seed_;
  // Incremental resize (as Redis): t_[0] is the table, t_[1] the new one while rehashing_;
  // buckets of t_[0] below rehash_index_ have moved.
  Table t_[2];
  bool rehashing_ = false;
  uint64_t rehash_index_ = 0;
  size_t size_ = 0;
  std::vector<Entry*> expires_;  // every entry with a TTL; entry->ttl_index is its position
  uint64_t used_bytes_ = 0;
  uint64_t cas_counter_ = 0;
  uint64_t removals_ = 0;  // keys removed, TTLs changed, flushes (write_stamp)
  std::string pinned_prefix_;
  uint64_t last_now_ms_ = 0;  // newest time seen, for LFU stamps of keys created by writes
  std::function<void(std::string_view)> expiry_observer_;
  bool erase_expired_ = true;
  StoreShared own_shared_;
  StoreShared* shared_;  // memory total and LRU clock (bumped on every access), own or a shard's
  StoreStats stats_;
  PoolSlot pool_[kEvictionPoolSize];
  uint32_t pool_size_ = 0;
  ImageWriter* image_ = nullptr;  // the image being taken, if any (at most one)
  size_t reserved_keys_ = 0;      // no shrinking until this many keys are in (reserve)
};

}  // namespace tally::store
