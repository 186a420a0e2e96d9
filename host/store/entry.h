// Entry: one key of a shard's keyspace in a single allocation (header, key, value or container).
// Entries are owned by a Store; an Entry* stays valid only until the next mutating call on it.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

#include "host/common/assert.h"

namespace tally::store {

class SetValue;
class HashValue;
class ListValue;
class ZSetValue;
class StreamValue;

// Value types. Three bits in the entry header, so up to eight kinds.
enum class ValueType : uint8_t { kString = 0, kSet = 1, kHash = 2, kList = 3, kZSet = 4, kStream = 5 };

const char* type_name(ValueType t);  // "string", "set", "hash", "list", "zset", "stream" (TYPE's reply)

// Layout, in one malloc block (why: one cache miss and one allocator header per key):
//   Entry header (24 bytes)  next | cas | access | shape
//   [expire_at_ms u64, ttl_index u32]   when has_expire
//   [client_flags u32]                  when has_client_flags
//   [key_bytes u32, value_bytes u32]    when wide (key >= 1024 or value >= 65536 bytes)
//   key bytes
//   value bytes (string) or a pointer to its container (8 bytes)
class Entry {
 public:
  static constexpr uint32_t kNarrowKeyBytesMax = (1u << 10) - 1;
  static constexpr uint32_t kNarrowValueBytesMax = (1u << 16) - 1;

  Entry(const Entry&) = delete;
  Entry& operator=(const Entry&) = delete;

  ValueType type() const { return static_cast<ValueType>(shape_ & 7u); }
  bool has_expire() const { return (shape_ & kHasExpire) != 0; }
  bool has_client_flags() const { return (shape_ & kHasFlags) != 0; }
  uint64_t cas() const { return cas_; }

  uint64_t expire_at_ms() const {
    if (!has_expire()) return 0;
    uint64_t v;
    std::memcpy(&v, body(), sizeof v);
    return v;
  }
  uint32_t client_flags() const {
    if (!has_client_flags()) return 0;
    uint32_t v;
    std::memcpy(&v, body() + flags_offset(), sizeof v);
    return v;
  }
  uint32_t key_bytes() const { return is_wide() ? wide_field(0) : (shape_ >> 6) & kNarrowKeyBytesMax; }
  uint32_t value_bytes() const { return is_wide() ? wide_field(4) : shape_ >> 16; }

  std::string_view key() const { return {body() + key_offset(), key_bytes()}; }
  std::string_view string_value() const {
    TALLY_ASSERT(type() == ValueType::kString);
    return {body() + key_offset() + key_bytes(), value_bytes()};
  }
  SetValue* set_value() const {
    TALLY_ASSERT(type() == ValueType::kSet);
    return static_cast<SetValue*>(container());
  }
  HashValue* hash_value() const {
    TALLY_ASSERT(type() == ValueType::kHash);
    return static_cast<HashValue*>(container());
  }
  // Lists and sorted sets change only through Store::edit_list / edit_zset.
  const ListValue* list_value() const {
    TALLY_ASSERT(type() == ValueType::kList);
    return static_cast<const ListValue*>(container());
  }
  const ZSetValue* zset_value() const {
    TALLY_ASSERT(type() == ValueType::kZSet);
    return static_cast<const ZSetValue*>(container());
  }
  const StreamValue* stream_value() const {  // changes only through Store::edit_stream
    TALLY_ASSERT(type() == ValueType::kStream);
    return static_cast<const StreamValue*>(container());
  }

 private:
  friend class Store;
  friend class ImageWriter;  // walks bucket chains
  Entry() = default;

  static constexpr uint32_t kHasExpire = 1u << 3;
  static constexpr uint32_t kHasFlags = 1u << 4;
  static constexpr uint32_t kWide = 1u << 5;
  static constexpr uint32_t kExpireBytes = 12;  // expire_at_ms + ttl_index
  static constexpr uint32_t kFlagsBytes = 4;
  static constexpr uint32_t kWideBytes = 8;

  bool is_wide() const { return (shape_ & kWide) != 0; }
  const char* body() const { return reinterpret_cast<const char*>(this + 1); }
  char* body() { return reinterpret_cast<char*>(this + 1); }
  uint32_t flags_offset() const { return has_expire() ? kExpireBytes : 0; }
  uint32_t wide_offset() const { return flags_offset() + (has_client_flags() ? kFlagsBytes : 0); }
  uint32_t key_offset() const { return wide_offset() + (is_wide() ? kWideBytes : 0); }
  uint32_t wide_field(uint32_t at) const {
    uint32_t v;
    std::memcpy(&v, body() + wide_offset() + at, sizeof v);
    return v;
  }
  void* container() const {
    void* p;
    std::memcpy(&p, body() + key_offset() + key_bytes(), sizeof p);
    return p;
  }
  uint32_t ttl_index() const {
    TALLY_ASSERT(has_expire());
    uint32_t v;
    std::memcpy(&v, body() + 8, sizeof v);
    return v;
  }
  void set_ttl_index(uint32_t i) {
    TALLY_ASSERT(has_expire());
    std::memcpy(body() + 8, &i, sizeof i);
  }

  Entry* next_ = nullptr;  // bucket chain
  uint64_t cas_ = 0;       // memcached CAS unique, bumped on every write
  uint32_t access_ = 0;    // LRU: store access tick; LFU: minutes(16) << 8 | log counter(8)
  uint32_t shape_ = 0;     // type(3) expire(1) flags(1) wide(1) key_bytes(10) value_bytes(16)
};

static_assert(sizeof(Entry) == 24, "the entry header is part of the memory budget per key");

}  // namespace tally::store
