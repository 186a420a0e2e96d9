#include "host/store/store.h"

#include <malloc.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "host/store/image.h"

namespace tally::store {
namespace {

// glibc's real cost of an n-byte request: 8-byte header, 16-byte rounding, 32-byte minimum.
uint64_t chunk_bytes(uint64_t n) { return std::max<uint64_t>(32, (n + 8 + 15) & ~uint64_t{15}); }

uint64_t reverse_bits(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
  v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
  v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
  return __builtin_bswap64(v);
}

// Per-element estimates for libstdc++ node containers (node with cached hash + bucket pointer).
uint64_t set_member_bytes(size_t len) { return chunk_bytes(8 + 32 + 8) + string_heap_bytes(len); }
uint64_t hash_field_bytes(size_t flen, size_t vlen) {
  return chunk_bytes(8 + 64 + 8) + string_heap_bytes(flen) + string_heap_bytes(vlen);
}
uint64_t set_total_bytes(const SetValue& s) { return s.bytes() + s.members().bucket_count() * 8; }
uint64_t hash_total_bytes(const HashValue& h) { return h.bytes() + h.fields().bucket_count() * 8; }
// A sorted set's sentinel node (kLevelsMax links) is part of its fixed cost.
constexpr uint64_t kZSetFixedBytes = sizeof(ZSetValue) + 8 + sizeof(ZSetValue::Node) +
                                     (ZSetValue::kLevelsMax - 1) * sizeof(ZSetValue::Link) + 16;
constexpr size_t kDequeBlockItems = 512 / sizeof(std::string);  // libstdc++'s 512-byte blocks

// Bytes of one container beyond its entry: fixed part and contents.
uint64_t container_bytes(const Entry& e) {
  switch (e.type()) {
    case ValueType::kString: return 0;
    case ValueType::kSet: return chunk_bytes(sizeof(SetValue)) + set_total_bytes(*e.set_value());
    case ValueType::kHash: return chunk_bytes(sizeof(HashValue)) + hash_total_bytes(*e.hash_value());
    case ValueType::kList: return chunk_bytes(sizeof(ListValue)) + e.list_value()->bytes();
    case ValueType::kZSet: return kZSetFixedBytes + e.zset_value()->bytes();
    case ValueType::kStream: return chunk_bytes(sizeof(StreamValue)) + e.stream_value()->bytes();
  }
  TALLY_UNREACHABLE();
}

constexpr uint32_t kLfuInitCounter = 5;  // new keys get a chance before they look cold
constexpr uint32_t kRandomAttemptsMax = 64;
constexpr uint32_t kActiveExpireRoundKeys = 20;
constexpr uint64_t kScanEmptyBucketsPerCount = 10;

}  // namespace

size_t StringHash::operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }

size_t string_heap_bytes(size_t len) { return len <= 15 ? 0 : chunk_bytes(len + 1); }

size_t ListValue::item_bytes(size_t len) { return sizeof(std::string) + string_heap_bytes(len); }

size_t ListValue::bytes() const {
  // The deque's blocks and its map (one pointer per block, with slack).
  const size_t blocks = items_.size() / kDequeBlockItems + 1;
  return item_bytes_ + blocks * (chunk_bytes(512) + 16) + 64;
}

void ListValue::push_front(std::string_view v) {
  items_.emplace_front(v);
  item_bytes_ += item_bytes(v.size());
}

void ListValue::push_back(std::string_view v) {
  items_.emplace_back(v);
  item_bytes_ += item_bytes(v.size());
}

std::string ListValue::pop_front() {
  TALLY_ASSERT(!items_.empty());
  std::string v = std::move(items_.front());
  items_.pop_front();
  item_bytes_ -= item_bytes(v.size());
  return v;
}

std::string ListValue::pop_back() {
  TALLY_ASSERT(!items_.empty());
  std::string v = std::move(items_.back());
  items_.pop_back();
  item_bytes_ -= item_bytes(v.size());
  return v;
}

void ListValue::set(size_t i, std::string_view v) {
  TALLY_ASSERT(i < items_.size());
  item_bytes_ -= item_bytes(items_[i].size());
  items_[i].assign(v);
  item_bytes_ += item_bytes(v.size());
}

void ListValue::insert(size_t i, std::string_view v) {
  TALLY_ASSERT(i <= items_.size());
  items_.emplace(items_.begin() + static_cast<ptrdiff_t>(i), v);
  item_bytes_ += item_bytes(v.size());
}

void ListValue::erase_sorted(const std::vector<size_t>& at) {
  size_t w = 0, next = 0;
  for (size_t r = 0; r < items_.size(); ++r) {
    if (next < at.size() && at[next] == r) {
      item_bytes_ -= item_bytes(items_[r].size());
      ++next;
      continue;
    }
    if (w != r) items_[w] = std::move(items_[r]);
    ++w;
  }
  TALLY_ASSERT(next == at.size());
  items_.resize(w);
}

void ListValue::keep(size_t first, size_t last) {
  if (items_.empty()) return;
  if (first > last || first >= items_.size()) {
    items_.clear();
    item_bytes_ = 0;
    return;
  }
  if (last >= items_.size()) last = items_.size() - 1;
  while (items_.size() > last + 1) pop_back();
  for (size_t i = 0; i < first; ++i) pop_front();
}

const char* type_name(ValueType t) {
  switch (t) {
    case ValueType::kString: return "string";
    case ValueType::kSet: return "set";
    case ValueType::kHash: return "hash";
    case ValueType::kList: return "list";
    case ValueType::kZSet: return "zset";
    case ValueType::kStream: return "stream";
  }
  TALLY_UNREACHABLE();
}

const char* policy_name(EvictionPolicy p) {
  switch (p) {
    case EvictionPolicy::kNoEviction: return "noeviction";
    case EvictionPolicy::kAllKeysLru: return "allkeys-lru";
    case EvictionPolicy::kVolatileLru: return "volatile-lru";
    case EvictionPolicy::kAllKeysLfu: return "allkeys-lfu";
    case EvictionPolicy::kVolatileLfu: return "volatile-lfu";
    case EvictionPolicy::kVolatileTtl: return "volatile-ttl";
    case EvictionPolicy::kAllKeysRandom: return "allkeys-random";
    case EvictionPolicy::kVolatileRandom: return "volatile-random";
  }
  TALLY_UNREACHABLE();
}

Result<EvictionPolicy> parse_policy(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(EvictionPolicy::kVolatileRandom); ++i) {
    auto p = static_cast<EvictionPolicy>(i);
    if (name == policy_name(p)) return p;
  }
  return Status::invalid("unknown maxmemory policy");
}

Store::Store(StoreOptions options, StoreShared* shared)
    : options_(options),
      rng_(options.seed),
      hash_seed_(Rng(options.seed ^ 0x9e37).next()),
      shared_(shared != nullptr ? shared : &own_shared_) {
  TALLY_ASSERT(options_.eviction_samples >= 1 && options_.eviction_samples <= kEvictionSamplesMax);
  TALLY_ASSERT(options_.lfu_decay_minutes >= 1);
  t_[0].buckets.assign(kInitialBuckets, nullptr);
  t_[0].mask = kInitialBuckets - 1;
  account(static_cast<int64_t>(t_[0].buckets.capacity() * sizeof(Entry*)));
}

Store::~Store() {
  TALLY_ASSERT_MSG(image_ == nullptr, "an image must end before its store");
  flush();
}

void Store::image_before_change(const Entry& e) { image_->before_change(e); }

void Store::account(int64_t delta) {
  TALLY_ASSERT(delta >= 0 || used_bytes_ >= static_cast<uint64_t>(-delta));
  TALLY_ASSERT(delta >= 0 || shared_->used_bytes >= static_cast<uint64_t>(-delta));
  used_bytes_ = static_cast<uint64_t>(static_cast<int64_t>(used_bytes_) + delta);
  shared_->used_bytes = static_cast<uint64_t>(static_cast<int64_t>(shared_->used_bytes) + delta);
}

uint64_t Store::hash(std::string_view key) const {
  return XXH3_64bits_withSeed(key.data(), key.size(), hash_seed_);
}

Entry** Store::find_link(std::string_view key, uint64_t h) {
  for (int t = 0; t < (rehashing_ ? 2 : 1); ++t) {
    Entry** link = &t_[t].buckets[h & t_[t].mask];
    for (Entry* e = *link; e != nullptr; link = &e->next_, e = e->next_) {
      if (e->key_bytes() == key.size() && std::memcmp(e->key().data(), key.data(), key.size()) == 0) {
        return link;
      }
    }
  }
  return nullptr;
}

Entry** Store::link_of(Entry* e) {
  Entry** link = find_link(e->key(), hash(e->key()));
  TALLY_ASSERT(link != nullptr && *link == e);
  return link;
}

Entry* Store::alloc_entry(ValueType type, std::string_view key, uint32_t value_bytes,
                          bool has_expire, bool has_flags) {
  const bool wide = key.size() > Entry::kNarrowKeyBytesMax || value_bytes > Entry::kNarrowValueBytesMax;
  TALLY_ASSERT(key.size() <= UINT32_MAX);
  const uint32_t payload = type == ValueType::kString ? value_bytes : sizeof(void*);
  const size_t bytes = sizeof(Entry) + (has_expire ? Entry::kExpireBytes : 0) +
                       (has_flags ? Entry::kFlagsBytes : 0) + (wide ? Entry::kWideBytes : 0) +
                       key.size() + payload;
  void* mem = std::malloc(bytes);
  TALLY_ASSERT_MSG(mem != nullptr, "out of memory");  // the process cannot go on without heap
  Entry* e = new (mem) Entry();
  e->shape_ = static_cast<uint32_t>(type) | (has_expire ? Entry::kHasExpire : 0) |
              (has_flags ? Entry::kHasFlags : 0) | (wide ? Entry::kWide : 0);
  if (wide) {
    const uint32_t kb = static_cast<uint32_t>(key.size());
    std::memcpy(e->body() + e->wide_offset(), &kb, 4);
    std::memcpy(e->body() + e->wide_offset() + 4, &value_bytes, 4);
  } else {
    e->shape_ |= static_cast<uint32_t>(key.size()) << 6 | value_bytes << 16;
  }
  if (!key.empty()) std::memcpy(e->body() + e->key_offset(), key.data(), key.size());
  account(static_cast<int64_t>(malloc_usable_size(mem) + 8));
  return e;
}

void Store::free_entry(Entry* e) {
  account(-static_cast<int64_t>(malloc_usable_size(e) + 8));
  e->~Entry();
  std::free(e);
}

uint64_t Store::entry_bytes(const Entry& e) const {
  return malloc_usable_size(const_cast<Entry*>(&e)) + 8 + container_bytes(e);
}

void Store::destroy_container(Entry* e) {
  if (e->type() == ValueType::kString) return;
  account(-static_cast<int64_t>(container_bytes(*e)));
  switch (e->type()) {
    case ValueType::kString: break;
    case ValueType::kSet: delete e->set_value(); break;
    case ValueType::kHash: delete e->hash_value(); break;
    case ValueType::kList: delete static_cast<ListValue*>(e->container()); break;
    case ValueType::kZSet: delete static_cast<ZSetValue*>(e->container()); break;
    case ValueType::kStream: delete static_cast<StreamValue*>(e->container()); break;
  }
}

void Store::expires_add(Entry* e) {
  TALLY_ASSERT(e->has_expire());
  TALLY_ASSERT(expires_.size() < UINT32_MAX);
  const size_t cap = expires_.capacity();
  e->set_ttl_index(static_cast<uint32_t>(expires_.size()));
  expires_.push_back(e);
  account(static_cast<int64_t>((expires_.capacity() - cap) * sizeof(Entry*)));
}

void Store::expires_remove(Entry* e) {
  const uint32_t i = e->ttl_index();
  TALLY_ASSERT(i < expires_.size() && expires_[i] == e);
  Entry* last = expires_.back();
  expires_[i] = last;
  last->set_ttl_index(i);
  expires_.pop_back();
}

void Store::link_new(Entry* e, uint64_t h) {
  Table& t = t_[rehashing_ ? 1 : 0];  // new keys go to the new table during a resize
  Entry*& head = t.buckets[h & t.mask];
  e->next_ = head;
  head = e;
  ++size_;
  if (e->has_expire()) expires_add(e);
  resize_if_needed();
}

void Store::replace(Entry** link, Entry* old_e, Entry* new_e) {
  TALLY_ASSERT(*link == old_e);
  new_e->next_ = old_e->next_;
  *link = new_e;
  if (old_e->has_expire() && new_e->has_expire()) {
    const uint32_t i = old_e->ttl_index();
    new_e->set_ttl_index(i);
    expires_[i] = new_e;
  } else if (old_e->has_expire()) {
    expires_remove(old_e);
  } else if (new_e->has_expire()) {
    expires_add(new_e);
  }
}

void Store::unlink_and_free(Entry** link) {
  Entry* e = *link;
  TALLY_ASSERT(e != nullptr && size_ > 0);
  before_change(e);
  ++removals_;
  *link = e->next_;
  --size_;
  if (e->has_expire()) expires_remove(e);
  destroy_container(e);
  free_entry(e);
  resize_if_needed();
}

void Store::resize_if_needed() {
  if (reserved_keys_ != 0 && size_ >= reserved_keys_) reserved_keys_ = 0;
  if (image_ != nullptr) [[unlikely]] {
    // An image walks t_[0] by bucket index, so buckets stay put while it is active (a resize under
    // way when it began is finished first, by its steps). Only a table far past its load is resized,
    // after the image has copied out everything it still needs.
    const uint64_t buckets = (rehashing_ ? t_[1] : t_[0]).buckets.size();
    if (size_ <= kImageLoadFactorMax * buckets) return;
    image_->finish_now();
    TALLY_ASSERT(image_ == nullptr);
  }
  if (rehashing_) {
    // A resize is under way; only if the new table is already too small, finish it now.
    if (size_ <= 2 * t_[1].buckets.size()) return;
    rehash_step(UINT64_MAX);
  }
  const uint64_t buckets = t_[0].mask + 1;
  if (size_ > buckets && buckets < kBucketsMax) {
    start_rehash(buckets * 2);
  } else if (buckets > kInitialBuckets && size_ * 8 < buckets && reserved_keys_ == 0) {
    uint64_t target = kInitialBuckets;
    while (target < size_ * 2) target *= 2;
    start_rehash(target);
  }
}

void Store::start_rehash(uint64_t buckets) {
  TALLY_ASSERT(!rehashing_);
  TALLY_ASSERT((buckets & (buckets - 1)) == 0 && buckets >= kInitialBuckets);
  if (buckets <= kRehashAtOnceBuckets && t_[0].buckets.size() <= kRehashAtOnceBuckets) {
    rehash_all(buckets);
    return;
  }
  t_[1].buckets.assign(buckets, nullptr);
  t_[1].mask = buckets - 1;
  account(static_cast<int64_t>(t_[1].buckets.capacity() * sizeof(Entry*)));
  rehashing_ = true;
  rehash_index_ = 0;
}

void Store::rehash_step(uint64_t buckets_max) {
  if (!rehashing_) return;
  Table& from = t_[0];
  Table& to = t_[1];
  // Empty buckets are cheap but not free: visit at most ten per bucket moved.
  const uint64_t empty_max = buckets_max > UINT64_MAX / 10 ? UINT64_MAX : buckets_max * 10;
  uint64_t moved = 0, empty = 0;
  while (rehash_index_ <= from.mask && moved < buckets_max && empty < empty_max) {
    Entry* head = from.buckets[rehash_index_];
    from.buckets[rehash_index_++] = nullptr;
    if (head == nullptr) {
      ++empty;
      continue;
    }
    while (head != nullptr) {
      Entry* e = head;
      head = e->next_;
      Entry*& slot = to.buckets[hash(e->key()) & to.mask];
      e->next_ = slot;
      slot = e;
    }
    ++moved;
  }
  if (rehash_index_ > from.mask) {
    account(-static_cast<int64_t>(from.buckets.capacity() * sizeof(Entry*)));
    from.buckets.swap(to.buckets);
    from.mask = to.mask;
    std::vector<Entry*>().swap(to.buckets);
    to.mask = 0;
    rehashing_ = false;
  }
}

void Store::rehash_all(uint64_t buckets) {
  TALLY_ASSERT(!rehashing_);
  TALLY_ASSERT((buckets & (buckets - 1)) == 0 && buckets >= kInitialBuckets);
  std::vector<Entry*> next(buckets, nullptr);
  const uint64_t mask = buckets - 1;
  size_t moved = 0;
  for (Entry* head : t_[0].buckets) {
    while (head != nullptr) {
      Entry* e = head;
      head = e->next_;
      Entry*& slot = next[hash(e->key()) & mask];
      e->next_ = slot;
      slot = e;
      ++moved;
    }
  }
  TALLY_ASSERT(moved == size_);
  account(static_cast<int64_t>(next.capacity() * sizeof(Entry*)) -
          static_cast<int64_t>(t_[0].buckets.capacity() * sizeof(Entry*)));
  t_[0].buckets.swap(next);
  t_[0].mask = mask;
}

Entry* Store::random_bucket_head() {
  const uint64_t n0 = t_[0].buckets.size();
  const uint64_t total = n0 + t_[1].buckets.size();
  uint64_t i = rng_.uniform(total);
  for (uint64_t walked = 0; walked < total; ++walked, i = i + 1 == total ? 0 : i + 1) {
    Entry* head = i < n0 ? t_[0].buckets[i] : t_[1].buckets[i - n0];
    if (head != nullptr) return head;
  }
  return nullptr;
}

uint32_t Store::lfu_decayed(const Entry& e, uint64_t now_ms) const {
  const uint32_t now_min = static_cast<uint32_t>(now_ms / 60000) & 0xFFFF;
  const uint32_t elapsed = (now_min - (e.access_ >> 8)) & 0xFFFF;
  const uint32_t periods = elapsed / options_.lfu_decay_minutes;
  const uint32_t counter = e.access_ & 0xFF;
  return periods >= counter ? 0 : counter - periods;
}

void Store::touch(Entry* e, uint64_t now_ms) {
  if (options_.policy == EvictionPolicy::kAllKeysLfu || options_.policy == EvictionPolicy::kVolatileLfu) {
    uint32_t counter = lfu_decayed(*e, now_ms);
    if (counter < 255) {
      // Logarithmic counter (as Redis): hot keys climb slowly so 8 bits rank a wide range.
      const double base = counter > kLfuInitCounter ? counter - kLfuInitCounter : 0;
      if (rng_.unit() < 1.0 / (base * options_.lfu_log_factor + 1.0)) ++counter;
    }
    const uint32_t now_min = static_cast<uint32_t>(now_ms / 60000) & 0xFFFF;
    e->access_ = now_min << 8 | counter;
  } else {
    e->access_ = ++shared_->lru_clock;
  }
}

void Store::init_access(Entry* e) {
  if (options_.policy == EvictionPolicy::kAllKeysLfu || options_.policy == EvictionPolicy::kVolatileLfu) {
    const uint32_t now_min = static_cast<uint32_t>(last_now_ms_ / 60000) & 0xFFFF;
    e->access_ = now_min << 8 | kLfuInitCounter;
  } else {
    e->access_ = ++shared_->lru_clock;
  }
}

Entry* Store::lookup(std::string_view key, uint64_t now_ms, Access access) {
  last_now_ms_ = now_ms;
  rehash_step(kRehashStepBuckets);
  Entry** link = find_link(key, hash(key));
  Entry* e = link != nullptr ? *link : nullptr;
  if (e != nullptr && is_expired(*e, now_ms)) {
    if (erase_expired_) {
      if (expiry_observer_) expiry_observer_(e->key());
      unlink_and_free(link);
      ++stats_.expired_keys;
    }
    e = nullptr;
  }
  if (access == Access::kRead) {
    if (e != nullptr) {
      ++stats_.keyspace_hits;
    } else {
      ++stats_.keyspace_misses;
    }
  }
  if (e != nullptr && access != Access::kPeek) touch(e, now_ms);
  return e;
}

Entry* Store::set_string(std::string_view key, std::string_view value, uint64_t expire_at_ms,
                         bool keep_ttl, uint32_t client_flags) {
  TALLY_ASSERT(value.size() <= kStringBytesMax);
  rehash_step(kRehashStepBuckets);
  const uint64_t h = hash(key);
  Entry** link = find_link(key, h);
  Entry* old_e = link != nullptr ? *link : nullptr;
  if (old_e != nullptr) before_change(old_e);
  if (keep_ttl) expire_at_ms = old_e != nullptr ? old_e->expire_at_ms() : 0;
  const bool has_expire = expire_at_ms != 0;
  const bool has_flags = client_flags != 0;
  const uint32_t vbytes = static_cast<uint32_t>(value.size());
  const bool wide = key.size() > Entry::kNarrowKeyBytesMax || vbytes > Entry::kNarrowValueBytesMax;

  if (old_e != nullptr && old_e->type() == ValueType::kString && old_e->has_expire() == has_expire &&
      old_e->has_client_flags() == has_flags && old_e->is_wide() == wide) {
    const size_t need = sizeof(Entry) + old_e->key_offset() + key.size() + vbytes;
    if (need <= malloc_usable_size(old_e)) {
      // Same layout and the block has room: rewrite in place (INCR, APPEND, same-size SET).
      if (wide) {
        std::memcpy(old_e->body() + old_e->wide_offset() + 4, &vbytes, 4);
      } else {
        old_e->shape_ = (old_e->shape_ & 0xFFFFu) | vbytes << 16;
      }
      if (vbytes > 0) std::memmove(old_e->body() + old_e->key_offset() + key.size(), value.data(), vbytes);
      if (has_expire) std::memcpy(old_e->body(), &expire_at_ms, 8);
      if (has_flags) std::memcpy(old_e->body() + old_e->flags_offset(), &client_flags, 4);
      old_e->cas_ = ++cas_counter_;
      return old_e;
    }
  }
  Entry* e = alloc_entry(ValueType::kString, key, vbytes, has_expire, has_flags);
  if (vbytes > 0) std::memcpy(e->body() + e->key_offset() + key.size(), value.data(), vbytes);
  if (has_expire) std::memcpy(e->body(), &expire_at_ms, 8);
  if (has_flags) std::memcpy(e->body() + e->flags_offset(), &client_flags, 4);
  e->cas_ = ++cas_counter_;
  if (old_e != nullptr) {
    e->access_ = old_e->access_;
    replace(link, old_e, e);
    destroy_container(old_e);
    free_entry(old_e);
  } else {
    init_access(e);
    link_new(e, h);
  }
  return e;
}

// An empty set or hash with its CAS still 0: the caller sets it and links the entry.
Entry* Store::new_container(ValueType type, std::string_view key, uint64_t h, uint64_t expire_at_ms,
                            uint32_t client_flags) {
  TALLY_ASSERT(type != ValueType::kString);
  TALLY_ASSERT(find_link(key, h) == nullptr);
  Entry* e = alloc_entry(type, key, 0, expire_at_ms != 0, client_flags != 0);
  void* c = nullptr;
  switch (type) {
    case ValueType::kString: TALLY_UNREACHABLE();
    case ValueType::kSet: c = new SetValue(); break;
    case ValueType::kHash: c = new HashValue(); break;
    case ValueType::kList: c = new ListValue(); break;
    case ValueType::kZSet: c = new ZSetValue(); break;
    case ValueType::kStream: c = new StreamValue(); break;
  }
  std::memcpy(e->body() + e->key_offset() + key.size(), &c, sizeof c);
  account(static_cast<int64_t>(container_bytes(*e)));
  if (expire_at_ms != 0) std::memcpy(e->body(), &expire_at_ms, 8);
  if (client_flags != 0) std::memcpy(e->body() + e->flags_offset(), &client_flags, 4);
  return e;
}

Entry* Store::create_set(std::string_view key) { return create_container(ValueType::kSet, key); }

Entry* Store::create_container(ValueType type, std::string_view key) {
  rehash_step(kRehashStepBuckets);
  const uint64_t h = hash(key);
  Entry* e = new_container(type, key, h, 0, 0);
  e->cas_ = ++cas_counter_;
  init_access(e);
  link_new(e, h);
  return e;
}

Entry* Store::create_hash(std::string_view key) { return create_container(ValueType::kHash, key); }
Entry* Store::create_list(std::string_view key) { return create_container(ValueType::kList, key); }
Entry* Store::create_zset(std::string_view key) { return create_container(ValueType::kZSet, key); }
Entry* Store::create_stream(std::string_view key) { return create_container(ValueType::kStream, key); }

bool Store::add_member(SetValue* s, std::string_view member) {
  const uint64_t before = set_total_bytes(*s);
  if (s->members_.find(member) != s->members_.end()) return false;
  s->members_.emplace(member);
  s->bytes_ += set_member_bytes(member.size());
  account(static_cast<int64_t>(set_total_bytes(*s)) - static_cast<int64_t>(before));
  return true;
}

bool Store::set_add(Entry* e, std::string_view member) {
  before_change(e);  // even when the member is there already: one lookup, not two
  if (!add_member(e->set_value(), member)) return false;
  e->cas_ = ++cas_counter_;
  return true;
}

bool Store::set_remove(Entry* e, std::string_view member) {
  SetValue* s = e->set_value();
  auto it = s->members_.find(member);
  if (it == s->members_.end()) return false;
  before_change(e);
  const uint64_t before = set_total_bytes(*s);
  TALLY_ASSERT(s->bytes_ >= set_member_bytes(member.size()));
  s->bytes_ -= set_member_bytes(member.size());
  s->members_.erase(it);
  account(static_cast<int64_t>(set_total_bytes(*s)) - static_cast<int64_t>(before));
  e->cas_ = ++cas_counter_;
  return true;
}

bool Store::hash_set(Entry* e, std::string_view field, std::string_view value) {
  before_change(e);
  const bool created = put_field(e->hash_value(), field, value);
  e->cas_ = ++cas_counter_;
  return created;
}

bool Store::put_field(HashValue* hv, std::string_view field, std::string_view value) {
  const uint64_t before = hash_total_bytes(*hv);
  auto it = hv->fields_.find(field);
  bool created = false;
  if (it == hv->fields_.end()) {
    hv->fields_.emplace(std::string(field), std::string(value));
    hv->bytes_ += hash_field_bytes(field.size(), value.size());
    created = true;
  } else {
    hv->bytes_ -= string_heap_bytes(it->second.size());
    it->second.assign(value);
    hv->bytes_ += string_heap_bytes(value.size());
  }
  account(static_cast<int64_t>(hash_total_bytes(*hv)) - static_cast<int64_t>(before));
  return created;
}

bool Store::hash_del(Entry* e, std::string_view field) {
  HashValue* hv = e->hash_value();
  auto it = hv->fields_.find(field);
  if (it == hv->fields_.end()) return false;
  before_change(e);
  const uint64_t before = hash_total_bytes(*hv);
  const uint64_t bytes = hash_field_bytes(it->first.size(), it->second.size());
  TALLY_ASSERT(hv->bytes_ >= bytes);
  hv->bytes_ -= bytes;
  hv->fields_.erase(it);
  account(static_cast<int64_t>(hash_total_bytes(*hv)) - static_cast<int64_t>(before));
  e->cas_ = ++cas_counter_;
  return true;
}

Entry* Store::relayout(Entry* e, bool has_expire, uint64_t expire_at_ms) {
  Entry** link = link_of(e);
  const bool is_string = e->type() == ValueType::kString;
  Entry* n = alloc_entry(e->type(), e->key(), is_string ? e->value_bytes() : 0, has_expire,
                         e->has_client_flags());
  const size_t payload = is_string ? e->value_bytes() : sizeof(void*);
  std::memcpy(n->body() + n->key_offset() + n->key_bytes(), e->body() + e->key_offset() + e->key_bytes(),
              payload);
  if (has_expire) std::memcpy(n->body(), &expire_at_ms, 8);
  if (e->has_client_flags()) {
    const uint32_t f = e->client_flags();
    std::memcpy(n->body() + n->flags_offset(), &f, 4);
  }
  n->cas_ = e->cas_;
  n->access_ = e->access_;
  replace(link, e, n);
  free_entry(e);  // the container (if any) now belongs to n
  return n;
}

Entry* Store::set_expire(Entry* e, uint64_t expire_at_ms) {
  TALLY_ASSERT(expire_at_ms > 0);
  before_change(e);
  ++removals_;  // a TTL change is a write, though it keeps the CAS (memcached's touch does)
  if (e->has_expire()) {
    std::memcpy(e->body(), &expire_at_ms, 8);
    return e;
  }
  return relayout(e, true, expire_at_ms);
}

Entry* Store::persist(Entry* e) {
  if (!e->has_expire()) return e;
  before_change(e);
  ++removals_;
  return relayout(e, false, 0);
}

bool Store::erase(std::string_view key, uint64_t now_ms) {
  rehash_step(kRehashStepBuckets);
  Entry** link = find_link(key, hash(key));
  if (link == nullptr) return false;
  const bool expired = is_expired(**link, now_ms);
  if (expired) ++stats_.expired_keys;
  unlink_and_free(link);
  return !expired;
}

void Store::erase(Entry* e) { unlink_and_free(link_of(e)); }

Entry* Store::rename(Entry* src, std::string_view dst_key) {
  if (src->key() == dst_key) return src;
  before_change(src);
  if (Entry** dl = find_link(dst_key, hash(dst_key)); dl != nullptr) unlink_and_free(dl);
  const bool is_string = src->type() == ValueType::kString;
  Entry* n = alloc_entry(src->type(), dst_key, is_string ? src->value_bytes() : 0, src->has_expire(),
                         src->has_client_flags());
  const size_t payload = is_string ? src->value_bytes() : sizeof(void*);
  std::memcpy(n->body() + n->key_offset() + dst_key.size(),
              src->body() + src->key_offset() + src->key_bytes(), payload);
  if (src->has_expire()) {
    const uint64_t at = src->expire_at_ms();
    std::memcpy(n->body(), &at, 8);
  }
  if (src->has_client_flags()) {
    const uint32_t f = src->client_flags();
    std::memcpy(n->body() + n->flags_offset(), &f, 4);
  }
  n->cas_ = ++cas_counter_;
  n->access_ = src->access_;
  // Unlink src without destroying its container: n owns it now.
  Entry** sl = link_of(src);
  *sl = src->next_;
  --size_;
  if (src->has_expire()) expires_remove(src);
  free_entry(src);
  link_new(n, hash(dst_key));
  return n;
}

void Store::flush() {
  // The image copies out what it still needs before everything goes (a flush costs O(keys) anyway).
  if (image_ != nullptr) image_->finish_now();
  TALLY_ASSERT(image_ == nullptr);
  reserved_keys_ = 0;
  if (size_ > 0) ++removals_;
  for (Table& t : t_) {
    for (Entry*& head : t.buckets) {
      while (head != nullptr) {
        Entry* e = head;
        head = e->next_;
        destroy_container(e);
        free_entry(e);
      }
    }
  }
  size_ = 0;
  if (rehashing_) {
    account(-static_cast<int64_t>(t_[1].buckets.capacity() * sizeof(Entry*)));
    std::vector<Entry*>().swap(t_[1].buckets);
    t_[1].mask = 0;
    rehashing_ = false;
  }
  account(-static_cast<int64_t>(expires_.capacity() * sizeof(Entry*)));
  std::vector<Entry*>().swap(expires_);
  pool_size_ = 0;
  if (t_[0].buckets.size() != kInitialBuckets) rehash_all(kInitialBuckets);
}

Entry* Store::restore_string(std::string_view key, std::string_view value, uint64_t expire_at_ms,
                             uint32_t client_flags, uint64_t cas) {
  // An image tells entries it must copy by CAS: a restored (old) CAS would look like one of them.
  TALLY_ASSERT(image_ == nullptr);
  TALLY_ASSERT(value.size() <= kStringBytesMax && cas > 0);
  rehash_step(kRehashStepBuckets);
  const uint64_t h = hash(key);
  if (find_link(key, h) != nullptr) return nullptr;
  const uint32_t vbytes = static_cast<uint32_t>(value.size());
  Entry* e = alloc_entry(ValueType::kString, key, vbytes, expire_at_ms != 0, client_flags != 0);
  if (vbytes > 0) std::memcpy(e->body() + e->key_offset() + key.size(), value.data(), vbytes);
  if (expire_at_ms != 0) std::memcpy(e->body(), &expire_at_ms, 8);
  if (client_flags != 0) std::memcpy(e->body() + e->flags_offset(), &client_flags, 4);
  e->cas_ = cas;
  cas_counter_ = std::max(cas_counter_, cas);
  init_access(e);
  link_new(e, h);
  return e;
}

Entry* Store::restore_container(ValueType type, std::string_view key, uint64_t expire_at_ms,
                                uint32_t client_flags, uint64_t cas) {
  TALLY_ASSERT(image_ == nullptr);
  TALLY_ASSERT(cas > 0);
  rehash_step(kRehashStepBuckets);
  const uint64_t h = hash(key);
  if (find_link(key, h) != nullptr) return nullptr;
  Entry* e = new_container(type, key, h, expire_at_ms, client_flags);
  e->cas_ = cas;
  cas_counter_ = std::max(cas_counter_, cas);
  init_access(e);
  link_new(e, h);
  return e;
}

bool Store::restore_member(Entry* set, std::string_view member) {
  TALLY_ASSERT(image_ == nullptr);
  return add_member(set->set_value(), member);
}

bool Store::restore_field(Entry* hash, std::string_view field, std::string_view value) {
  TALLY_ASSERT(image_ == nullptr);
  HashValue* hv = hash->hash_value();
  if (hv->find(field) != nullptr) return false;
  const bool created = put_field(hv, field, value);
  TALLY_ASSERT(created);
  return true;
}

void Store::restore_list_item(Entry* list, std::string_view item) {
  TALLY_ASSERT(image_ == nullptr && list->type() == ValueType::kList);
  ListValue& l = *static_cast<ListValue*>(list->container());
  const uint64_t before = l.bytes();
  l.push_back(item);
  account(static_cast<int64_t>(l.bytes()) - static_cast<int64_t>(before));
}

bool Store::restore_zset_member(Entry* zset, std::string_view member, double score) {
  TALLY_ASSERT(image_ == nullptr && zset->type() == ValueType::kZSet);
  ZSetValue& z = *static_cast<ZSetValue*>(zset->container());
  if (z.score(member) != nullptr) return false;
  const uint64_t before = z.bytes();
  z.put(member, score);
  account(static_cast<int64_t>(z.bytes()) - static_cast<int64_t>(before));
  return true;
}

void Store::set_cas_counter(uint64_t cas) {
  TALLY_ASSERT(image_ == nullptr);
  TALLY_ASSERT(cas >= cas_counter_);
  cas_counter_ = cas;
}

void Store::reserve(size_t keys) {
  TALLY_ASSERT(image_ == nullptr);
  uint64_t buckets = kInitialBuckets;
  while (buckets < keys && buckets < kBucketsMax) buckets *= 2;
  if (rehashing_) rehash_step(UINT64_MAX);
  if (buckets > t_[0].buckets.size()) rehash_all(buckets);
  reserved_keys_ = keys > size_ ? keys : 0;
}

namespace {
// Reverse-binary increment under mask m: the high bits of the cursor advance first, so a bucket
// split by a grow (or merged by a shrink) is never revisited from its start or skipped.
uint64_t next_cursor(uint64_t v, uint64_t m) {
  v |= ~m;
  v = reverse_bits(v);
  ++v;
  return reverse_bits(v);
}
}  // namespace

uint64_t Store::scan(uint64_t cursor, size_t count, const std::function<void(const Entry&)>& fn) const {
  TALLY_ASSERT(count > 0);
  if (size_ == 0) return 0;
  size_t visited = 0;
  auto emit = [&](const Table& t, uint64_t b) {
    for (const Entry* e = t.buckets[b & t.mask]; e != nullptr; e = e->next_) {
      fn(*e);
      ++visited;
    }
  };
  // Bounded: at most count*10 steps per call even if every bucket is empty (as Redis).
  const uint64_t steps_max = std::max<uint64_t>(1, count * kScanEmptyBucketsPerCount);
  uint64_t v = cursor;
  if (!rehashing_) {
    const Table& t = t_[0];
    v &= t.mask;
    for (uint64_t step = 0; step < steps_max; ++step) {
      emit(t, v);
      v = next_cursor(v, t.mask);
      if (v == 0 || visited >= count) break;
    }
    TALLY_ASSERT(v <= t.mask);
    return v;
  }
  // During a resize, as Redis's dictScan: a bucket of the smaller table, then every bucket of
  // the larger table that expands from it.
  const Table& small = t_[0].mask <= t_[1].mask ? t_[0] : t_[1];
  const Table& large = t_[0].mask <= t_[1].mask ? t_[1] : t_[0];
  const uint64_t m0 = small.mask, m1 = large.mask;
  v &= m1;
  for (uint64_t step = 0; step < steps_max; ++step) {
    emit(small, v);
    do {
      emit(large, v);
      v = next_cursor(v, m1);
    } while ((v & (m0 ^ m1)) != 0);
    if (v == 0 || visited >= count) break;
  }
  TALLY_ASSERT(v <= m1);
  return v;
}

void Store::for_each(const std::function<void(const Entry&)>& fn) const {
  size_t seen = 0;
  for (const Table& t : t_) {
    for (const Entry* head : t.buckets) {
      for (const Entry* e = head; e != nullptr; e = e->next_) {
        fn(*e);
        ++seen;
      }
    }
  }
  TALLY_ASSERT(seen == size_);
}

Entry* Store::random_entry(uint64_t now_ms) {
  for (uint32_t attempt = 0; attempt < kRandomAttemptsMax && size_ > 0; ++attempt) {
    Entry* head = random_bucket_head();
    TALLY_ASSERT(head != nullptr);
    size_t chain = 0;
    for (Entry* e = head; e != nullptr; e = e->next_) ++chain;
    Entry* e = head;
    for (uint64_t skip = rng_.uniform(chain); skip > 0; --skip) e = e->next_;
    if (!is_expired(*e, now_ms)) return e;
    if (!erase_expired_) continue;
    ++stats_.expired_keys;
    if (expiry_observer_) expiry_observer_(e->key());
    erase(e);
  }
  return nullptr;
}

size_t Store::active_expire(uint64_t now_ms, size_t max_keys_checked) {
  size_t checked = 0;
  size_t expired = 0;
  while (checked < max_keys_checked && !expires_.empty()) {
    const size_t round = std::min<size_t>(kActiveExpireRoundKeys, max_keys_checked - checked);
    size_t round_expired = 0;
    for (size_t i = 0; i < round && !expires_.empty(); ++i) {
      Entry* e = expires_[rng_.uniform(expires_.size())];
      ++checked;
      if (is_expired(*e, now_ms)) {
        if (expiry_observer_) expiry_observer_(e->key());
        erase(e);
        ++round_expired;
      }
    }
    expired += round_expired;
    // Adaptive, as Redis: keep going only while more than 10% of the sample had expired.
    if (round_expired * 10 <= round) break;
  }
  stats_.expired_keys += expired;
  TALLY_ASSERT(checked <= max_keys_checked);
  return expired;
}

size_t Store::collect_expired(uint64_t now_ms, size_t max_keys_checked,
                              const std::function<void(std::string_view)>& fn) {
  size_t found = 0;
  for (size_t i = 0; i < max_keys_checked && !expires_.empty(); ++i) {
    const Entry* e = expires_[rng_.uniform(expires_.size())];
    if (is_expired(*e, now_ms)) {
      fn(e->key());
      ++found;
    }
  }
  return found;
}

bool Store::volatile_policy() const {
  return options_.policy == EvictionPolicy::kVolatileLru || options_.policy == EvictionPolicy::kVolatileLfu ||
         options_.policy == EvictionPolicy::kVolatileTtl || options_.policy == EvictionPolicy::kVolatileRandom;
}

uint64_t Store::victim_score(const Entry& e, uint64_t now_ms) const {
  switch (options_.policy) {
    case EvictionPolicy::kAllKeysLru:
    case EvictionPolicy::kVolatileLru:
      return static_cast<uint32_t>(shared_->lru_clock - e.access_);  // accesses since its last one
    case EvictionPolicy::kAllKeysLfu:
    case EvictionPolicy::kVolatileLfu:
      return 255 - lfu_decayed(e, now_ms);
    case EvictionPolicy::kVolatileTtl:
      return UINT64_MAX - e.expire_at_ms();
    default:
      TALLY_UNREACHABLE();
  }
}

void Store::pool_offer(const Entry& e, uint64_t now_ms) {
  const std::string_view key = e.key();
  if (pinned(e)) return;
  const uint64_t score = victim_score(e, now_ms);
  for (uint32_t i = 0; i < pool_size_; ++i) {
    if (pool_[i].key == key) {
      pool_[i].score = score;
      std::sort(pool_, pool_ + pool_size_, [](const PoolSlot& a, const PoolSlot& b) { return a.score < b.score; });
      return;
    }
  }
  // pool_ is ascending by score: slot 0 is the worst candidate, the last one the best.
  uint32_t at = 0;
  while (at < pool_size_ && pool_[at].score < score) ++at;
  if (pool_size_ == kEvictionPoolSize) {
    if (at == 0) return;  // worse than everything kept
    std::string dropped = std::move(pool_[0].key);
    for (uint32_t i = 0; i + 1 < at; ++i) pool_[i] = std::move(pool_[i + 1]);
    --at;
    pool_[at].key = std::move(dropped);  // reuse its buffer
  } else {
    for (uint32_t i = pool_size_; i > at; --i) pool_[i] = std::move(pool_[i - 1]);
    ++pool_size_;
  }
  pool_[at].score = score;
  pool_[at].key.assign(key);
}

Entry* Store::peek_victim(uint64_t now_ms, uint64_t& score) {
  if (options_.policy == EvictionPolicy::kNoEviction) return nullptr;
  if (options_.policy == EvictionPolicy::kAllKeysRandom || options_.policy == EvictionPolicy::kVolatileRandom) {
    Entry* e = nullptr;
    for (int attempt = 0; attempt < 8 && (e == nullptr || pinned(*e)); ++attempt) {
      if (options_.policy == EvictionPolicy::kAllKeysRandom) {
        e = size_ > 0 ? random_entry(now_ms) : nullptr;
      } else if (!expires_.empty()) {
        e = expires_[rng_.uniform(expires_.size())];
      }
      if (e == nullptr) break;
    }
    if (e != nullptr && pinned(*e)) e = nullptr;
    score = rng_.next();
    return e;
  }
  const bool vol = volatile_policy();
  if (vol ? expires_.empty() : size_ == 0) return nullptr;
  // Sample: independent random buckets (whole chains) or random TTL keys, into the pool.
  for (uint32_t taken = 0; taken < options_.eviction_samples;) {
    if (vol) {
      pool_offer(*expires_[rng_.uniform(expires_.size())], now_ms);
      ++taken;
      continue;
    }
    for (const Entry* e = random_bucket_head(); e != nullptr && taken < options_.eviction_samples; e = e->next_) {
      pool_offer(*e, now_ms);
      ++taken;
    }
  }
  // The best candidate that still exists with a score no better than it was sampled at. It stays in
  // the pool: once erased, the next call finds it gone and drops it.
  for (uint32_t tries = 0; pool_size_ > 0 && tries < 2 * kEvictionPoolSize; ++tries) {
    PoolSlot& best = pool_[pool_size_ - 1];
    Entry** link = find_link(best.key, hash(best.key));
    if (link == nullptr || (vol && !(*link)->has_expire())) {
      --pool_size_;
      continue;
    }
    const uint64_t now_score = victim_score(**link, now_ms);
    if (now_score < best.score) {  // touched since it was sampled: re-rank it
      pool_offer(**link, now_ms);
      continue;
    }
    score = best.score;
    return *link;
  }
  return nullptr;
}

Status Store::evict_for_write(uint64_t now_ms) {
  if (options_.maxmemory_bytes == 0 || used_bytes_ <= options_.maxmemory_bytes) return Status::ok();
  if (options_.policy == EvictionPolicy::kNoEviction) return Status::exhausted(std::string(kOomError));
  uint32_t rounds = 0;
  for (; rounds < kEvictionRoundsMax && used_bytes_ > options_.maxmemory_bytes; ++rounds) {
    uint64_t score = 0;
    Entry* victim = peek_victim(now_ms, score);
    if (victim == nullptr) break;
    erase(victim);
    ++stats_.evicted_keys;
  }
  // Out of rounds with memory still high: let this write through, the next one evicts more.
  if (used_bytes_ > options_.maxmemory_bytes && rounds < kEvictionRoundsMax) {
    return Status::exhausted(std::string(kOomError));
  }
  return Status::ok();
}

}  // namespace tally::store
