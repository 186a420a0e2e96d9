// Entry records of a snapshot (docs/snapshot-format.md): encoding one Entry, checking the framing of a
// chunk's records, and loading records into a Store. Pure byte work: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "host/common/status.h"
#include "host/store/containers.h"
#include "host/store/entry.h"

namespace tally::store {

class Store;

inline constexpr uint64_t kElementBytesMax = 512ull << 20;       // key, value, member, field
inline constexpr uint64_t kRecordBytesMax = uint64_t{1} << 31;   // one record, its length included
inline constexpr size_t kRecordLengthBytes = 4;
inline constexpr size_t kEntryRecordBytesMin = 33;               // a string, empty key and value
inline constexpr size_t kContainerPartBytes = 16 << 10;          // a set/hash record's target size

enum class RecordKind : uint8_t {
  kString = 1, kSet = 2, kHash = 3, kSetMore = 4, kHashMore = 5,
  kList = 6, kZSet = 7, kListMore = 8, kZSetMore = 9,
  kStream = 10, kStreamMore = 11, kStreamGroup = 12,
};

// The fields of an entry record besides its key and value.
struct EntryMeta {
  uint64_t expire_at_ms = 0;  // 0 = none
  uint32_t client_flags = 0;
  uint64_t cas = 0;
};
EntryMeta meta_of(const Entry& e);

// Appends all records of one entry: one for a string; for a set, hash, list or sorted set its entry
// record and as many continuations as its size needs. kResourceExhausted (nothing appended) when an element is over
// kElementBytesMax.
Status encode_entry(const Entry& e, std::string& out);

// Appends one record of a set (or hash): its entry record when `meta` is given, else a continuation,
// holding the members from `at` on until the record reaches kContainerPartBytes (at least one member
// when any remain; a continuation needs one). Advances `at`.
Status encode_set_part(std::string_view key, const EntryMeta* meta, const SetValue& set,
                       SetValue::Members::const_iterator& at, std::string& out);
Status encode_hash_part(std::string_view key, const EntryMeta* meta, const HashValue& hash,
                        HashValue::Fields::const_iterator& at, std::string& out);

// Checks the framing of a chunk body (record lengths within it, known kinds) and counts its entry
// records (kinds 1-3, 6, 7, 10). kCorruption naming the offset in the body.
Result<uint64_t> count_entries(std::string_view body);

// Inserts a chunk body's records into `store` with their CAS, expiry and flags (no commands run).
// kCorruption on a malformed record, a repeated key, member or field, a NaN score, or a continuation
// of a key not loaded before. On error earlier records of the body stay inserted: load_snapshot empties the store.
Status load_entries(std::string_view body, Store& store);

}  // namespace tally::store
