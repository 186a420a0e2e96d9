// Entry records: little-endian fields written and read with memcpy; every read is bounded by the
// record, every record by its chunk body.
#include "host/store/entry_record.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "host/store/store.h"

namespace tally::store {
namespace {

static_assert(std::endian::native == std::endian::little, "records are copied as host integers");

constexpr size_t kMetaBytes = 8 + 4 + 8;

void put_u32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_bytes(std::string& out, std::string_view b) {
  TALLY_ASSERT(b.size() <= kElementBytesMax);
  put_u32(out, static_cast<uint32_t>(b.size()));
  out.append(b);
}

Status too_large(std::string_view what, size_t bytes) {
  return Status::exhausted("snapshot: a " + std::string(what) + " of " + std::to_string(bytes) +
                           " bytes is over the format's element limit");
}

// Length placeholder, kind and key; end_record fills in the length.
size_t begin_record(std::string& out, RecordKind kind, std::string_view key) {
  const size_t at = out.size();
  put_u32(out, 0);
  out.push_back(static_cast<char>(kind));
  put_bytes(out, key);
  return at;
}

void end_record(std::string& out, size_t at) {
  const uint64_t bytes = out.size() - at;
  TALLY_ASSERT(bytes <= kRecordBytesMax);
  const uint32_t r = static_cast<uint32_t>(bytes - kRecordLengthBytes);
  std::memcpy(out.data() + at, &r, sizeof r);
}

void put_meta(std::string& out, const EntryMeta& m) {
  put_u64(out, m.expire_at_ms);
  put_u32(out, m.client_flags);
  put_u64(out, m.cas);
}

// Members from `at` until the record (begun at `start`) reaches kContainerPartBytes; `put` writes one.
template <typename It, typename Size, typename Put>
Status put_members(std::string& out, size_t start, It& at, It end, Size size_of, Put put) {
  const size_t count_at = out.size();
  put_u32(out, 0);
  uint32_t n = 0;
  for (; at != end && (n == 0 || out.size() - start < kContainerPartBytes); ++at, ++n) {
    if (const size_t bytes = size_of(*at); bytes > kElementBytesMax) {
      out.resize(start);
      return too_large("member", bytes);
    }
    put(*at);
  }
  std::memcpy(out.data() + count_at, &n, sizeof n);
  end_record(out, start);
  return Status::ok();
}

// Bounded reads over one record or body.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool empty() const { return pos_ == b_.size(); }
  size_t pos() const { return pos_; }
  bool u8(uint8_t& v) { return fixed(&v, sizeof v); }
  bool u32(uint32_t& v) { return fixed(&v, sizeof v); }
  bool u64(uint64_t& v) { return fixed(&v, sizeof v); }
  // A 4-byte length and that many bytes (the length is bounded by what is left).
  bool bytes(std::string_view& v) {
    uint32_t n = 0;
    if (!u32(n) || n > b_.size() - pos_) return false;
    v = b_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool meta(EntryMeta& m) { return u64(m.expire_at_ms) && u32(m.client_flags) && u64(m.cas); }

 private:
  bool fixed(void* v, size_t n) {
    if (b_.size() - pos_ < n) return false;
    std::memcpy(v, b_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view b_;
  size_t pos_ = 0;
};

Status bad(size_t at, std::string_view why) {
  return Status::corruption("snapshot record at offset " + std::to_string(at) + " of its chunk: " +
                            std::string(why));
}

bool is_entry_kind(uint8_t k) { return (k >= 1 && k <= 3) || k == 6 || k == 7 || k == 10; }
bool is_known_kind(uint8_t k) { return k >= 1 && k <= 12; }

// The type an entry or continuation record holds.
ValueType type_of(RecordKind k) {
  switch (k) {
    case RecordKind::kString: return ValueType::kString;
    case RecordKind::kSet: case RecordKind::kSetMore: return ValueType::kSet;
    case RecordKind::kHash: case RecordKind::kHashMore: return ValueType::kHash;
    case RecordKind::kList: case RecordKind::kListMore: return ValueType::kList;
    case RecordKind::kZSet: case RecordKind::kZSetMore: return ValueType::kZSet;
    case RecordKind::kStream: case RecordKind::kStreamMore: case RecordKind::kStreamGroup: return ValueType::kStream;
  }
  TALLY_UNREACHABLE();
}

bool is_continuation(RecordKind k) {
  return k == RecordKind::kSetMore || k == RecordKind::kHashMore || k == RecordKind::kListMore ||
         k == RecordKind::kZSetMore || k == RecordKind::kStreamMore || k == RecordKind::kStreamGroup;
}

// Walks a sorted set's elements in order (put_members's iterator).
struct ZSetIter {
  const ZSetValue::Node* n;
  bool operator!=(const ZSetIter& o) const { return n != o.n; }
  ZSetIter& operator++() {
    n = n->next();
    return *this;
  }
  const ZSetValue::Node& operator*() const { return *n; }
};

void put_f64(std::string& out, double v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

// Members (kinds 2, 4), field/value pairs (3, 5), list items (6, 8) or member/score pairs (7, 9) up to
// the end of the record.
Status load_members(Reader& r, size_t at, ValueType type, bool continuation, Entry* e, Store& store) {
  uint32_t n = 0;
  if (!r.u32(n)) return bad(at, "no member count");
  if (continuation && n == 0) return bad(at, "a continuation without members");
  for (uint32_t i = 0; i < n; ++i) {
    std::string_view m, v;
    if (!r.bytes(m)) return bad(at, "members run past the record");
    switch (type) {
      case ValueType::kString: case ValueType::kStream: TALLY_UNREACHABLE();
      case ValueType::kSet:
        if (!store.restore_member(e, m)) return bad(at, "repeated set member");
        break;
      case ValueType::kHash:
        if (!r.bytes(v)) return bad(at, "members run past the record");
        if (!store.restore_field(e, m, v)) return bad(at, "repeated hash field");
        break;
      case ValueType::kList:
        store.restore_list_item(e, m);
        break;
      case ValueType::kZSet: {
        uint64_t bits = 0;
        if (!r.u64(bits)) return bad(at, "members run past the record");
        double score;
        std::memcpy(&score, &bits, sizeof score);
        if (std::isnan(score)) return bad(at, "a NaN score");
        if (!store.restore_zset_member(e, m, score)) return bad(at, "repeated sorted set member");
        break;
      }
    }
  }
  if (!r.empty()) return bad(at, "bytes after the last member");
  return Status::ok();
}

// Stream entries (kinds 10, 11) up to the end of the record: count, then id, field count, fields.
Status load_stream_items(Reader& r, size_t at, Entry* e, Store& store) {
  uint32_t n = 0;
  if (!r.u32(n)) return bad(at, "no entry count");
  std::vector<std::string_view> fields;
  for (uint32_t i = 0; i < n; ++i) {
    StreamId id;
    uint32_t nf = 0;
    if (!r.u64(id.ms) || !r.u64(id.seq) || !r.u32(nf)) return bad(at, "stream entries run past the record");
    if (nf == 0 || nf % 2 != 0) return bad(at, "a stream entry without field/value pairs");
    fields.clear();
    for (uint32_t j = 0; j < nf; ++j) {
      std::string_view f;
      if (!r.bytes(f)) return bad(at, "stream entries run past the record");
      fields.push_back(f);
    }
    const bool ok = store.restore_stream(e, [&](StreamValue& s) { return s.restore_item(id, fields); });
    if (!ok) return bad(at, "stream entry ids out of order or above the last id");
  }
  if (!r.empty()) return bad(at, "bytes after the last stream entry");
  return Status::ok();
}

// One consumer group (kind 12): name, last id, read counter, consumers, then pending entries.
Status load_stream_group(Reader& r, size_t at, Entry* e, Store& store) {
  std::string_view name;
  StreamId last;
  uint64_t read = 0;
  uint32_t consumers = 0;
  if (!r.bytes(name) || !r.u64(last.ms) || !r.u64(last.seq) || !r.u64(read) || !r.u32(consumers)) {
    return bad(at, "stream group record too short");
  }
  return store.restore_stream(e, [&](StreamValue& s) -> Status {
    if (!s.create_group(name, last, static_cast<int64_t>(read))) return bad(at, "repeated stream group");
    StreamValue::Group& g = *s.group_mut(name);
    for (uint32_t i = 0; i < consumers; ++i) {
      std::string_view cname;
      uint64_t seen = 0, active = 0;
      if (!r.bytes(cname) || !r.u64(seen) || !r.u64(active)) return bad(at, "stream consumers run past the record");
      bool created = false;
      StreamValue::Consumer& c = s.consumer(g, cname, &created);
      if (!created) return bad(at, "repeated stream consumer");
      c.seen_ms = seen;
      c.active_ms = active;
    }
    uint32_t pending = 0;
    if (!r.u32(pending)) return bad(at, "no pending count");
    for (uint32_t i = 0; i < pending; ++i) {
      StreamId id;
      std::string_view cname;
      uint64_t when = 0, deliveries = 0;
      if (!r.u64(id.ms) || !r.u64(id.seq) || !r.bytes(cname) || !r.u64(when) || !r.u64(deliveries)) {
        return bad(at, "pending entries run past the record");
      }
      auto c = g.consumers.find(cname);
      if (c == g.consumers.end()) return bad(at, "a pending entry of an unknown consumer");
      if (g.pel.contains(id)) return bad(at, "repeated pending entry");
      s.pend(g, id, cname, c->second, when, deliveries);
    }
    if (!r.empty()) return bad(at, "bytes after the last pending entry");
    return Status::ok();
  });
}

Status load_record(std::string_view rec, size_t at, Store& store) {
  Reader r(rec);
  uint8_t kind = 0;
  std::string_view key;
  if (!r.u8(kind) || !r.bytes(key)) return bad(at, "record too short for its key");
  if (!is_known_kind(kind)) return bad(at, "unknown record kind " + std::to_string(kind));
  const auto k = static_cast<RecordKind>(kind);
  const ValueType type = type_of(k);
  if (is_continuation(k)) {
    // now 0: a lookup that never expires anything (every expiry is >= 1), and kPeek touches nothing.
    Entry* e = store.lookup(key, 0, Access::kPeek);
    if (e == nullptr || e->type() != type) return bad(at, "continuation of an entry not loaded before it");
    if (k == RecordKind::kStreamMore) return load_stream_items(r, at, e, store);
    if (k == RecordKind::kStreamGroup) return load_stream_group(r, at, e, store);
    return load_members(r, at, type, true, e, store);
  }
  EntryMeta m;
  if (!r.meta(m)) return bad(at, "record too short for its expiry, flags and CAS");
  if (m.cas == 0) return bad(at, "CAS 0");
  if (k == RecordKind::kString) {
    std::string_view value;
    if (!r.bytes(value) || !r.empty()) return bad(at, "string value does not fill the record");
    if (value.size() > Store::kStringBytesMax) return bad(at, "string value over the store's limit");
    if (store.restore_string(key, value, m.expire_at_ms, m.client_flags, m.cas) == nullptr) {
      return bad(at, "repeated key");
    }
    return Status::ok();
  }
  if (k == RecordKind::kStream) {
    StreamId last, max_deleted;
    uint64_t added = 0;
    if (!r.u64(last.ms) || !r.u64(last.seq) || !r.u64(added) || !r.u64(max_deleted.ms) || !r.u64(max_deleted.seq)) {
      return bad(at, "stream record too short");
    }
    Entry* e = store.restore_container(type, key, m.expire_at_ms, m.client_flags, m.cas);
    if (e == nullptr) return bad(at, "repeated key");
    store.restore_stream(e, [&](StreamValue& s) { s.set_ids(last, added, max_deleted); });
    return load_stream_items(r, at, e, store);
  }
  Entry* e = store.restore_container(type, key, m.expire_at_ms, m.client_flags, m.cas);
  if (e == nullptr) return bad(at, "repeated key");
  return load_members(r, at, type, false, e, store);
}

}  // namespace

EntryMeta meta_of(const Entry& e) { return {e.expire_at_ms(), e.client_flags(), e.cas()}; }

Status encode_set_part(std::string_view key, const EntryMeta* meta, const SetValue& set,
                       SetValue::Members::const_iterator& at, std::string& out) {
  TALLY_ASSERT(meta != nullptr || at != set.members().end());
  if (key.size() > kElementBytesMax) return too_large("key", key.size());
  const size_t start = begin_record(out, meta != nullptr ? RecordKind::kSet : RecordKind::kSetMore, key);
  if (meta != nullptr) put_meta(out, *meta);
  return put_members(
      out, start, at, set.members().end(), [](const std::string& m) { return m.size(); },
      [&](const std::string& m) { put_bytes(out, m); });
}

Status encode_hash_part(std::string_view key, const EntryMeta* meta, const HashValue& hash,
                        HashValue::Fields::const_iterator& at, std::string& out) {
  TALLY_ASSERT(meta != nullptr || at != hash.fields().end());
  if (key.size() > kElementBytesMax) return too_large("key", key.size());
  const size_t start = begin_record(out, meta != nullptr ? RecordKind::kHash : RecordKind::kHashMore, key);
  if (meta != nullptr) put_meta(out, *meta);
  using Field = HashValue::Fields::value_type;
  return put_members(
      out, start, at, hash.fields().end(),
      [](const Field& f) { return std::max(f.first.size(), f.second.size()); },
      [&](const Field& f) {
        put_bytes(out, f.first);
        put_bytes(out, f.second);
      });
}

namespace {

// A stream: its entry record (bookkeeping and the first entries), continuations while entries remain,
// then one record per consumer group.
Status encode_stream(const Entry& e, const EntryMeta& m, std::string& out) {
  if (e.key().size() > kElementBytesMax) return too_large("key", e.key().size());
  const StreamValue& s = *e.stream_value();
  auto at = s.items().begin();
  Status st;
  for (bool first = true; st.is_ok() && (first || at != s.items().end()); first = false) {
    const size_t rec = begin_record(out, first ? RecordKind::kStream : RecordKind::kStreamMore, e.key());
    if (first) {
      put_meta(out, m);
      put_u64(out, s.last_id().ms);
      put_u64(out, s.last_id().seq);
      put_u64(out, s.entries_added());
      put_u64(out, s.max_deleted().ms);
      put_u64(out, s.max_deleted().seq);
    }
    using Item = StreamValue::Items::value_type;
    st = put_members(
        out, rec, at, s.items().end(),
        [](const Item& it) {
          size_t n = 0;
          for (const std::string& f : it.second) n = std::max(n, f.size());
          return n;
        },
        [&](const Item& it) {
          put_u64(out, it.first.ms);
          put_u64(out, it.first.seq);
          put_u32(out, static_cast<uint32_t>(it.second.size()));
          for (const std::string& f : it.second) put_bytes(out, f);
        });
  }
  for (const auto& [name, g] : s.groups()) {
    if (!st.is_ok()) break;
    if (name.size() > kElementBytesMax) return too_large("group name", name.size());
    const size_t rec = begin_record(out, RecordKind::kStreamGroup, e.key());
    put_bytes(out, name);
    put_u64(out, g.last_id.ms);
    put_u64(out, g.last_id.seq);
    put_u64(out, static_cast<uint64_t>(g.entries_read));
    put_u32(out, static_cast<uint32_t>(g.consumers.size()));
    for (const auto& [cname, c] : g.consumers) {
      if (cname.size() > kElementBytesMax) return too_large("consumer name", cname.size());
      put_bytes(out, cname);
      put_u64(out, c.seen_ms);
      put_u64(out, c.active_ms);
    }
    put_u32(out, static_cast<uint32_t>(g.pel.size()));
    for (const auto& [id, p] : g.pel) {
      put_u64(out, id.ms);
      put_u64(out, id.seq);
      put_bytes(out, p.consumer);
      put_u64(out, p.delivery_ms);
      put_u64(out, p.deliveries);
    }
    if (out.size() - rec > kRecordBytesMax) return too_large("consumer group", out.size() - rec);
    end_record(out, rec);
  }
  return st;
}

}  // namespace

Status encode_entry(const Entry& e, std::string& out) {
  const EntryMeta m = meta_of(e);
  const size_t start = out.size();
  Status st;
  switch (e.type()) {
    case ValueType::kString: {
      if (e.key().size() > kElementBytesMax) return too_large("key", e.key().size());
      const size_t at = begin_record(out, RecordKind::kString, e.key());
      put_meta(out, m);
      put_bytes(out, e.string_value());
      end_record(out, at);
      return Status::ok();
    }
    case ValueType::kSet: {
      const SetValue& s = *e.set_value();
      auto at = s.members().begin();
      st = encode_set_part(e.key(), &m, s, at, out);
      while (st.is_ok() && at != s.members().end()) st = encode_set_part(e.key(), nullptr, s, at, out);
      break;
    }
    case ValueType::kHash: {
      const HashValue& h = *e.hash_value();
      auto at = h.fields().begin();
      st = encode_hash_part(e.key(), &m, h, at, out);
      while (st.is_ok() && at != h.fields().end()) st = encode_hash_part(e.key(), nullptr, h, at, out);
      break;
    }
    case ValueType::kList: {
      if (e.key().size() > kElementBytesMax) return too_large("key", e.key().size());
      const ListValue& l = *e.list_value();
      auto at = l.items().begin();
      for (bool first = true; st.is_ok() && (first || at != l.items().end()); first = false) {
        const size_t rec = begin_record(out, first ? RecordKind::kList : RecordKind::kListMore, e.key());
        if (first) put_meta(out, m);
        st = put_members(
            out, rec, at, l.items().end(), [](const std::string& v) { return v.size(); },
            [&](const std::string& v) { put_bytes(out, v); });
      }
      break;
    }
    case ValueType::kZSet: {
      if (e.key().size() > kElementBytesMax) return too_large("key", e.key().size());
      const ZSetValue& z = *e.zset_value();
      ZSetIter at{z.first()}, end{nullptr};
      for (bool first = true; st.is_ok() && (first || at != end); first = false) {
        const size_t rec = begin_record(out, first ? RecordKind::kZSet : RecordKind::kZSetMore, e.key());
        if (first) put_meta(out, m);
        st = put_members(
            out, rec, at, end, [](const ZSetValue::Node& n) { return n.member.size(); },
            [&](const ZSetValue::Node& n) {
              put_bytes(out, n.member);
              put_f64(out, n.score);
            });
      }
      break;
    }
    case ValueType::kStream:
      st = encode_stream(e, m, out);
      break;
  }
  if (!st.is_ok()) out.resize(start);
  return st;
}

Result<uint64_t> count_entries(std::string_view body) {
  uint64_t entries = 0;
  Reader in(body);
  while (!in.empty()) {
    const size_t at = in.pos();
    std::string_view rec, key;
    uint8_t kind = 0;
    if (!in.bytes(rec)) return bad(at, "record runs past the end of its chunk");
    Reader r(rec);
    if (!r.u8(kind) || !r.bytes(key)) return bad(at, "record too short for its key");
    if (!is_known_kind(kind)) return bad(at, "unknown record kind " + std::to_string(kind));
    if (is_entry_kind(kind)) ++entries;
  }
  return entries;
}

Status load_entries(std::string_view body, Store& store) {
  TALLY_ASSERT(!store.has_image());
  Reader in(body);
  while (!in.empty()) {
    const size_t at = in.pos();
    std::string_view rec;
    if (!in.bytes(rec)) return bad(at, "record runs past the end of its chunk");
    TALLY_RETURN_IF_ERROR(load_record(rec, at, store));
  }
  return Status::ok();
}

}  // namespace tally::store
