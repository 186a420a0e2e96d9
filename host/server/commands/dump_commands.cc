// DUMP and RESTORE in Redis's serialization format (the RDB encoding of one value, then the RDB version
// and a CRC64 of the whole), so values move between tallyd and redis-server 7 with DUMP/RESTORE and the
// tools built on them. DUMP writes the plainest encodings redis-server loads: strings as length-prefixed
// bytes, sets (type 2), hashes (4), sorted sets with binary scores (5) and lists as quicklist nodes of
// listpacks (18). RESTORE also reads the compact encodings redis-server 7.0 writes: integer and
// LZF-compressed strings, intsets (11), listpack hashes (16) and sorted sets (17). Streams use
// redis-server 7.0's own type (19): listpack nodes of delta-encoded entries, the stream's bookkeeping,
// and consumer groups with their pending entries and consumers.
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/server/commands/handlers.h"
#include "host/server/commands/util.h"
#include "host/store/zset.h"

namespace tally::server::cmd {
namespace {

using store::Access;
using store::Entry;
using store::ValueType;

constexpr uint16_t kRdbVersion = 10;  // redis-server 7.0's
constexpr uint8_t kTypeString = 0, kTypeSet = 2, kTypeZset2 = 5, kTypeHash = 4, kTypeSetIntset = 11,
                  kTypeHashListpack = 16, kTypeZsetListpack = 17, kTypeListQuicklist2 = 18,
                  kTypeStreamListpacks2 = 19;
constexpr size_t kStreamNodeEntries = 100;  // entries per stream listpack node DUMP writes
constexpr size_t kListpackNodeEntries = 128;  // elements per quicklist node DUMP writes

// CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9), the checksum of Redis's DUMP payloads.
uint64_t crc64_jones(std::string_view data) {
  static const auto table = [] {
    std::array<uint64_t, 256> t{};
    for (uint64_t i = 0; i < 256; ++i) {
      uint64_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x95ac9329ac4bc9b5ull : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint64_t crc = 0;
  for (unsigned char b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

// ---- writing ----

void put_len(std::string& out, uint64_t n) {
  if (n < 64) {
    out += static_cast<char>(n);
  } else if (n < 16384) {
    out += static_cast<char>(0x40 | (n >> 8));
    out += static_cast<char>(n & 0xff);
  } else if (n <= 0xffffffffull) {
    out += static_cast<char>(0x80);
    for (int s = 24; s >= 0; s -= 8) out += static_cast<char>((n >> s) & 0xff);
  } else {
    out += static_cast<char>(0x81);
    for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((n >> s) & 0xff);
  }
}

void put_string(std::string& out, std::string_view s) {
  put_len(out, s.size());
  out.append(s);
}

// One listpack element: a string, or (for stream nodes) an integer.
struct LpItem {
  std::string_view str;
  bool is_int = false;
  int64_t num = 0;
  LpItem(std::string_view s) : str(s) {}  // NOLINT: strings convert implicitly
  static LpItem integer(int64_t v) {
    LpItem x{std::string_view()};
    x.is_int = true;
    x.num = v;
    return x;
  }
};

// A listpack: strings with the 6-, 12- or 32-bit length encodings, integers as 7-bit or 64-bit ones.
std::string listpack(const std::vector<LpItem>& items) {
  std::string lp(6, '\0');
  for (const LpItem& item : items) {
    const size_t before = lp.size();
    const std::string_view s = item.str;
    if (item.is_int && item.num >= 0 && item.num < 128) {
      lp += static_cast<char>(item.num);
    } else if (item.is_int) {
      lp += static_cast<char>(0xf4);
      for (int k = 0; k < 8; ++k) lp += static_cast<char>((static_cast<uint64_t>(item.num) >> (8 * k)) & 0xff);
    } else if (s.size() < 64) {
      lp += static_cast<char>(0x80 | s.size());
    } else if (s.size() < 4096) {
      lp += static_cast<char>(0xe0 | (s.size() >> 8));
      lp += static_cast<char>(s.size() & 0xff);
    } else {
      lp += static_cast<char>(0xf0);
      for (int k = 0; k < 4; ++k) lp += static_cast<char>((s.size() >> (8 * k)) & 0xff);
    }
    lp.append(s);
    // The entry's length, backwards: 7 bits a byte, the last byte (read first) without the high bit.
    uint64_t len = lp.size() - before;
    std::string back;
    do {
      back += static_cast<char>(len & 0x7f);
      len >>= 7;
    } while (len != 0);
    for (size_t i = 0; i + 1 < back.size(); ++i) back[i] = static_cast<char>(back[i] | 0x80);
    lp.append(back.rbegin(), back.rend());
  }
  lp += static_cast<char>(0xff);
  const uint32_t total = static_cast<uint32_t>(lp.size());
  const uint16_t count = items.size() < 65535 ? static_cast<uint16_t>(items.size()) : 65535;
  for (int k = 0; k < 4; ++k) lp[k] = static_cast<char>((total >> (8 * k)) & 0xff);
  lp[4] = static_cast<char>(count & 0xff);
  lp[5] = static_cast<char>(count >> 8);
  return lp;
}

void put_id_raw(std::string& out, store::StreamId id) {
  for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((id.ms >> s) & 0xff);
  for (int s = 56; s >= 0; s -= 8) out += static_cast<char>((id.seq >> s) & 0xff);
}

void put_ms(std::string& out, uint64_t ms) {
  for (int k = 0; k < 8; ++k) out += static_cast<char>((ms >> (8 * k)) & 0xff);
}

// Redis 7.0's stream type: nodes keyed by their master id, each a listpack with a master entry (count,
// deleted, the master fields, 0) and then per entry: flags, id deltas, the fields (or only the values
// when they are the master's: flag 2), and the entry's element count.
void serialize_stream(const store::StreamValue& s, std::string& out) {
  out += static_cast<char>(kTypeStreamListpacks2);
  const auto& items = s.items();
  const size_t nodes = (items.size() + kStreamNodeEntries - 1) / kStreamNodeEntries;
  put_len(out, nodes);
  auto it = items.begin();
  for (size_t n = 0; n < nodes; ++n) {
    const store::StreamId master = it->first;
    const auto& master_fields = it->second;
    const size_t count = std::min(kStreamNodeEntries, static_cast<size_t>(std::distance(it, items.end())));
    std::vector<LpItem> lp;
    lp.push_back(LpItem::integer(static_cast<int64_t>(count)));
    lp.push_back(LpItem::integer(0));
    lp.push_back(LpItem::integer(static_cast<int64_t>(master_fields.size() / 2)));
    for (size_t f = 0; f < master_fields.size(); f += 2) lp.emplace_back(master_fields[f]);
    lp.push_back(LpItem::integer(0));
    for (size_t k = 0; k < count; ++k, ++it) {
      const auto& fields = it->second;
      bool same = fields.size() == master_fields.size();
      for (size_t f = 0; same && f < fields.size(); f += 2) same = fields[f] == master_fields[f];
      const size_t pairs = fields.size() / 2;
      lp.push_back(LpItem::integer(same ? 2 : 0));
      lp.push_back(LpItem::integer(static_cast<int64_t>(it->first.ms - master.ms)));
      lp.push_back(LpItem::integer(static_cast<int64_t>(it->first.seq - master.seq)));
      if (same) {
        for (size_t f = 1; f < fields.size(); f += 2) lp.emplace_back(fields[f]);
      } else {
        lp.push_back(LpItem::integer(static_cast<int64_t>(pairs)));
        for (const std::string& x : fields) lp.emplace_back(x);
      }
      lp.push_back(LpItem::integer(static_cast<int64_t>(same ? pairs + 3 : 2 * pairs + 4)));
    }
    std::string key;
    put_id_raw(key, master);
    put_string(out, key);
    put_string(out, listpack(lp));
  }
  put_len(out, items.size());
  put_len(out, s.last_id().ms);
  put_len(out, s.last_id().seq);
  put_len(out, s.first_id().ms);
  put_len(out, s.first_id().seq);
  put_len(out, s.max_deleted().ms);
  put_len(out, s.max_deleted().seq);
  put_len(out, s.entries_added());
  put_len(out, s.groups().size());
  for (const auto& [name, g] : s.groups()) {
    put_string(out, name);
    put_len(out, g.last_id.ms);
    put_len(out, g.last_id.seq);
    put_len(out, g.entries_read < 0 ? UINT64_MAX : static_cast<uint64_t>(g.entries_read));
    put_len(out, g.pel.size());
    for (const auto& [id, p] : g.pel) {
      put_id_raw(out, id);
      put_ms(out, p.delivery_ms);
      put_len(out, p.deliveries);
    }
    put_len(out, g.consumers.size());
    for (const auto& [cname, c] : g.consumers) {
      put_string(out, cname);
      put_ms(out, c.seen_ms);
      put_len(out, c.pending.size());
      for (const store::StreamId& id : c.pending) put_id_raw(out, id);
    }
  }
}

bool serialize(const Entry& e, std::string& out) {
  switch (e.type()) {
    case ValueType::kString:
      out += static_cast<char>(kTypeString);
      put_string(out, e.string_value());
      return true;
    case ValueType::kSet:
      out += static_cast<char>(kTypeSet);
      put_len(out, e.set_value()->size());
      for (const std::string& m : e.set_value()->members()) put_string(out, m);
      return true;
    case ValueType::kHash:
      out += static_cast<char>(kTypeHash);
      put_len(out, e.hash_value()->size());
      for (const auto& [f, v] : e.hash_value()->fields()) {
        put_string(out, f);
        put_string(out, v);
      }
      return true;
    case ValueType::kZSet: {
      out += static_cast<char>(kTypeZset2);
      put_len(out, e.zset_value()->size());
      // Highest first, as redis-server writes them (it loads in any order).
      for (const auto* n = e.zset_value()->last(); n != nullptr; n = n->prev) {
        put_string(out, n->member);
        char d[8];
        std::memcpy(d, &n->score, 8);
        out.append(d, 8);
      }
      return true;
    }
    case ValueType::kList: {
      out += static_cast<char>(kTypeListQuicklist2);
      const auto& items = e.list_value()->items();
      const size_t nodes = (items.size() + kListpackNodeEntries - 1) / kListpackNodeEntries;
      put_len(out, nodes);
      for (size_t n = 0; n < nodes; ++n) {
        std::vector<LpItem> chunk;
        for (size_t i = n * kListpackNodeEntries; i < items.size() && i < (n + 1) * kListpackNodeEntries; ++i) {
          chunk.emplace_back(std::string_view(items[i]));
        }
        put_len(out, 2);  // a packed (listpack) node
        put_string(out, listpack(chunk));
      }
      return true;
    }
    case ValueType::kStream:
      serialize_stream(*e.stream_value(), out);
      return true;
    default:
      return false;
  }
}

// ---- reading ----

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return at_ == d_.size(); }
  bool byte(uint8_t& b) {
    if (at_ >= d_.size()) return false;
    b = static_cast<uint8_t>(d_[at_++]);
    return true;
  }
  bool bytes(size_t n, std::string_view& out) {
    if (d_.size() - at_ < n) return false;
    out = d_.substr(at_, n);
    at_ += n;
    return true;
  }
  // A length, or (encoded = true) the kind of a special string encoding.
  bool len(uint64_t& n, bool* encoded = nullptr) {
    uint8_t b = 0;
    if (!byte(b)) return false;
    if (encoded != nullptr) *encoded = false;
    switch (b >> 6) {
      case 0:
        n = b & 0x3f;
        return true;
      case 1: {
        uint8_t c = 0;
        if (!byte(c)) return false;
        n = (uint64_t{b & 0x3fu} << 8) | c;
        return true;
      }
      case 2: {
        const int width = b == 0x80 ? 4 : b == 0x81 ? 8 : 0;
        if (width == 0) return false;
        n = 0;
        for (int k = 0; k < width; ++k) {
          uint8_t c = 0;
          if (!byte(c)) return false;
          n = (n << 8) | c;
        }
        return true;
      }
      default:
        if (encoded == nullptr) return false;
        *encoded = true;
        n = b & 0x3f;
        return true;
    }
  }
  bool string(std::string& out) {
    uint64_t n = 0;
    bool encoded = false;
    if (!len(n, &encoded)) return false;
    if (!encoded) {
      std::string_view v;
      if (n > store::Store::kStringBytesMax || !bytes(static_cast<size_t>(n), v)) return false;
      out.assign(v);
      return true;
    }
    if (n <= 2) {  // an integer of 1, 2 or 4 bytes, little-endian
      const int width = 1 << n;
      std::string_view v;
      if (!bytes(static_cast<size_t>(width), v)) return false;
      uint64_t u = 0;
      for (int k = width - 1; k >= 0; --k) u = (u << 8) | static_cast<uint8_t>(v[static_cast<size_t>(k)]);
      int64_t x = width == 1 ? static_cast<int8_t>(u) : width == 2 ? static_cast<int16_t>(u) : static_cast<int32_t>(u);
      out = std::to_string(x);
      return true;
    }
    if (n == 3) return lzf(out);
    return false;
  }

 private:
  // LZF: literal runs (control < 32: that many + 1 bytes) and back references (length in the top 3
  // bits, 7 meaning "plus the next byte", + 2; distance in the low 5 bits and the next byte, + 1).
  bool lzf(std::string& out) {
    uint64_t clen = 0, ulen = 0;
    std::string_view c;
    if (!len(clen) || !len(ulen) || ulen > store::Store::kStringBytesMax || !bytes(static_cast<size_t>(clen), c)) {
      return false;
    }
    out.clear();
    out.reserve(static_cast<size_t>(std::min<uint64_t>(ulen, clen * 64)));
    for (size_t i = 0; i < c.size();) {
      const unsigned ctrl = static_cast<uint8_t>(c[i++]);
      if (ctrl < 32) {
        if (c.size() - i < ctrl + 1) return false;
        out.append(c.substr(i, ctrl + 1));
        i += ctrl + 1;
        continue;
      }
      size_t n = ctrl >> 5;
      if (n == 7) {
        if (i >= c.size()) return false;
        n += static_cast<uint8_t>(c[i++]);
      }
      if (i >= c.size()) return false;
      const size_t back = ((ctrl & 0x1f) << 8) + static_cast<uint8_t>(c[i++]) + 1;
      if (back > out.size()) return false;
      for (size_t k = 0; k < n + 2; ++k) out += out[out.size() - back];
      if (out.size() > ulen) return false;  // more than it claimed: stop before it grows further
    }
    return out.size() == ulen;
  }

  std::string_view d_;
  size_t at_ = 0;
};

// The entries of a listpack, as strings (integers in decimal).
bool read_listpack(std::string_view lp, std::vector<std::string>& out) {
  if (lp.size() < 7) return false;
  uint32_t total = 0;
  for (int k = 3; k >= 0; --k) total = (total << 8) | static_cast<uint8_t>(lp[static_cast<size_t>(k)]);
  if (total != lp.size() || static_cast<uint8_t>(lp.back()) != 0xff) return false;
  size_t i = 6;
  auto le = [&](size_t at, int width) {
    uint64_t u = 0;
    for (int k = width - 1; k >= 0; --k) u = (u << 8) | static_cast<uint8_t>(lp[at + static_cast<size_t>(k)]);
    return u;
  };
  while (i < lp.size() - 1) {
    const size_t start = i;
    const uint8_t b = static_cast<uint8_t>(lp[i]);
    size_t avail = lp.size() - 1 - i;
    auto need = [&](size_t n) { return avail >= n; };
    if ((b & 0x80) == 0) {
      out.push_back(std::to_string(b & 0x7f));
      i += 1;
    } else if ((b & 0xc0) == 0x80) {
      const size_t n = b & 0x3f;
      if (!need(1 + n)) return false;
      out.emplace_back(lp.substr(i + 1, n));
      i += 1 + n;
    } else if ((b & 0xe0) == 0xc0) {
      if (!need(2)) return false;
      int64_t v = (static_cast<int64_t>(b & 0x1f) << 8) | static_cast<uint8_t>(lp[i + 1]);
      if (v >= 4096) v -= 8192;
      out.push_back(std::to_string(v));
      i += 2;
    } else if ((b & 0xf0) == 0xe0) {
      if (!need(2)) return false;
      const size_t n = (static_cast<size_t>(b & 0x0f) << 8) | static_cast<uint8_t>(lp[i + 1]);
      if (!need(2 + n)) return false;
      out.emplace_back(lp.substr(i + 2, n));
      i += 2 + n;
    } else if (b == 0xf0) {
      if (!need(5)) return false;
      const size_t n = static_cast<size_t>(le(i + 1, 4));
      if (!need(5 + n)) return false;
      out.emplace_back(lp.substr(i + 5, n));
      i += 5 + n;
    } else if (b >= 0xf1 && b <= 0xf4) {
      const int width = b == 0xf1 ? 2 : b == 0xf2 ? 3 : b == 0xf3 ? 4 : 8;
      if (!need(1 + static_cast<size_t>(width))) return false;
      const uint64_t u = le(i + 1, width);
      int64_t v = 0;
      if (width == 8) {
        v = static_cast<int64_t>(u);
      } else {
        const uint64_t sign = uint64_t{1} << (8 * width - 1);
        v = (u & sign) ? static_cast<int64_t>(u) - static_cast<int64_t>(sign << 1) : static_cast<int64_t>(u);
      }
      out.push_back(std::to_string(v));
      i += 1 + static_cast<size_t>(width);
    } else {
      return false;
    }
    const size_t entry = i - start;
    const size_t back = entry < 128 ? 1 : entry < 16384 ? 2 : entry < 2097152 ? 3 : entry < 268435456 ? 4 : 5;
    if (lp.size() - 1 - i < back) return false;
    i += back;
  }
  return i == lp.size() - 1;
}

// A value read from a payload, before it is stored.
struct Loaded {
  ValueType type = ValueType::kString;
  std::string str;
  std::vector<std::string> items;                    // list elements, set members
  std::vector<std::pair<std::string, std::string>> fields;  // hash
  std::vector<std::pair<std::string, double>> scored;       // sorted set
  // stream
  struct StreamGroup {
    std::string name;
    store::StreamId last;
    int64_t entries_read = -1;
    std::map<store::StreamId, std::pair<uint64_t, uint64_t>> pel;  // id -> delivery time, deliveries
    struct Consumer {
      std::string name;
      uint64_t seen_ms = 0;
      std::vector<store::StreamId> pending;
    };
    std::vector<Consumer> consumers;
  };
  std::vector<std::pair<store::StreamId, std::vector<std::string>>> entries;
  store::StreamId last_id, max_deleted;
  uint64_t entries_added = 0;
  std::vector<StreamGroup> groups;
};

bool parse_score(const std::string& s, double& d) {
  long double v = 0;
  if (!parse_ld(s, v)) return false;
  d = static_cast<double>(v);
  return true;
}

bool read_id_raw(Reader& r, store::StreamId& id) {
  std::string_view b;
  if (!r.bytes(16, b)) return false;
  id = {};
  for (int k = 0; k < 8; ++k) id.ms = (id.ms << 8) | static_cast<uint8_t>(b[static_cast<size_t>(k)]);
  for (int k = 8; k < 16; ++k) id.seq = (id.seq << 8) | static_cast<uint8_t>(b[static_cast<size_t>(k)]);
  return true;
}

bool read_ms(Reader& r, uint64_t& ms) {
  std::string_view b;
  if (!r.bytes(8, b)) return false;
  ms = 0;
  for (int k = 7; k >= 0; --k) ms = (ms << 8) | static_cast<uint8_t>(b[static_cast<size_t>(k)]);
  return true;
}

bool to_u64(const std::string& s, uint64_t& out) {
  int64_t x = 0;
  if (!parse_i64(s, x) || x < 0) return false;
  out = static_cast<uint64_t>(x);
  return true;
}

// Redis 7.0's stream type (see serialize_stream); entries flagged deleted are skipped.
bool deserialize_stream(Reader& r, Loaded& v) {
  v.type = ValueType::kStream;
  uint64_t nodes = 0;
  if (!r.len(nodes)) return false;
  for (uint64_t n = 0; n < nodes; ++n) {
    std::string key, blob;
    std::vector<std::string> lp;
    if (!r.string(key) || key.size() != 16 || !r.string(blob) || !read_listpack(blob, lp)) return false;
    Reader kr(key);
    store::StreamId master;
    if (!read_id_raw(kr, master)) return false;
    size_t i = 0;
    auto next = [&](uint64_t& x) { return i < lp.size() && to_u64(lp[i++], x); };
    uint64_t count = 0, deleted = 0, nmaster = 0, zero = 1;
    if (!next(count) || !next(deleted) || !next(nmaster) || nmaster > lp.size()) return false;
    std::vector<std::string> master_fields;
    for (uint64_t f = 0; f < nmaster; ++f) {
      if (i >= lp.size()) return false;
      master_fields.push_back(lp[i++]);
    }
    if (!next(zero) || zero != 0) return false;
    for (uint64_t e = 0; e < count + deleted; ++e) {
      uint64_t flags = 0, msd = 0, seqd = 0, lpcount = 0;
      if (!next(flags) || !next(msd) || !next(seqd)) return false;
      std::vector<std::string> fields;
      if (flags & 2) {
        for (uint64_t f = 0; f < nmaster; ++f) {
          if (i >= lp.size()) return false;
          fields.push_back(master_fields[f]);
          fields.push_back(lp[i++]);
        }
      } else {
        uint64_t nf = 0;
        if (!next(nf) || nf > lp.size()) return false;
        for (uint64_t f = 0; f < 2 * nf; ++f) {
          if (i >= lp.size()) return false;
          fields.push_back(lp[i++]);
        }
      }
      if (!next(lpcount)) return false;
      if (fields.empty()) return false;
      if (!(flags & 1)) v.entries.emplace_back(store::StreamId{master.ms + msd, master.seq + seqd}, std::move(fields));
    }
    if (i != lp.size()) return false;
  }
  uint64_t length = 0;
  store::StreamId first;
  if (!r.len(length) || !r.len(v.last_id.ms) || !r.len(v.last_id.seq) || !r.len(first.ms) || !r.len(first.seq) ||
      !r.len(v.max_deleted.ms) || !r.len(v.max_deleted.seq) || !r.len(v.entries_added)) {
    return false;
  }
  if (length != v.entries.size()) return false;
  for (size_t k = 1; k < v.entries.size(); ++k) {
    if (!(v.entries[k - 1].first < v.entries[k].first)) return false;
  }
  if (!v.entries.empty() && v.last_id < v.entries.back().first) return false;
  uint64_t groups = 0;
  if (!r.len(groups)) return false;
  for (uint64_t g = 0; g < groups; ++g) {
    Loaded::StreamGroup sg;
    uint64_t read = 0, pel = 0, consumers = 0;
    if (!r.string(sg.name) || !r.len(sg.last.ms) || !r.len(sg.last.seq) || !r.len(read) || !r.len(pel)) return false;
    sg.entries_read = static_cast<int64_t>(read);
    for (uint64_t p = 0; p < pel; ++p) {
      store::StreamId id;
      uint64_t when = 0, deliveries = 0;
      if (!read_id_raw(r, id) || !read_ms(r, when) || !r.len(deliveries)) return false;
      if (!sg.pel.emplace(id, std::make_pair(when, deliveries)).second) return false;
    }
    if (!r.len(consumers)) return false;
    size_t owned = 0;
    for (uint64_t c = 0; c < consumers; ++c) {
      Loaded::StreamGroup::Consumer sc;
      uint64_t n = 0;
      if (!r.string(sc.name) || !read_ms(r, sc.seen_ms) || !r.len(n)) return false;
      for (uint64_t k = 0; k < n; ++k) {
        store::StreamId id;
        if (!read_id_raw(r, id) || !sg.pel.contains(id)) return false;  // a consumer's entry the group lacks
        sc.pending.push_back(id);
      }
      owned += sc.pending.size();
      sg.consumers.push_back(std::move(sc));
    }
    if (owned != sg.pel.size()) return false;  // a pending entry with no consumer, or one with two
    v.groups.push_back(std::move(sg));
  }
  return true;
}

bool deserialize(std::string_view body, Loaded& v) {
  Reader r(body);
  uint8_t type = 0;
  if (!r.byte(type)) return false;
  uint64_t n = 0;
  switch (type) {
    case kTypeString:
      v.type = ValueType::kString;
      if (!r.string(v.str)) return false;
      break;
    case kTypeSet:
      v.type = ValueType::kSet;
      if (!r.len(n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        std::string m;
        if (!r.string(m)) return false;
        v.items.push_back(std::move(m));
      }
      break;
    case kTypeHash:
      v.type = ValueType::kHash;
      if (!r.len(n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        std::string f, x;
        if (!r.string(f) || !r.string(x)) return false;
        v.fields.emplace_back(std::move(f), std::move(x));
      }
      break;
    case kTypeZset2:
      v.type = ValueType::kZSet;
      if (!r.len(n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        std::string m;
        std::string_view d;
        if (!r.string(m) || !r.bytes(8, d)) return false;
        double score = 0;
        std::memcpy(&score, d.data(), 8);
        if (std::isnan(score)) return false;
        v.scored.emplace_back(std::move(m), score);
      }
      break;
    case kTypeListQuicklist2:
      v.type = ValueType::kList;
      if (!r.len(n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        uint64_t container = 0;
        std::string node;
        if (!r.len(container) || !r.string(node)) return false;
        if (container == 1) {
          v.items.push_back(std::move(node));  // a plain node: one element
        } else if (container == 2) {
          const size_t before = v.items.size();
          if (!read_listpack(node, v.items) || v.items.size() == before) return false;
        } else {
          return false;
        }
      }
      break;
    case kTypeSetIntset: {
      v.type = ValueType::kSet;
      std::string blob;
      if (!r.string(blob) || blob.size() < 8) return false;
      auto le = [&](size_t at, size_t width) {
        uint64_t u = 0;
        for (size_t k = width; k-- > 0;) u = (u << 8) | static_cast<uint8_t>(blob[at + k]);
        return u;
      };
      const size_t width = static_cast<size_t>(le(0, 4));
      const size_t count = static_cast<size_t>(le(4, 4));
      if ((width != 2 && width != 4 && width != 8) || blob.size() != 8 + width * count) return false;
      for (size_t i = 0; i < count; ++i) {
        const uint64_t u = le(8 + i * width, width);
        const int64_t x = width == 2 ? static_cast<int16_t>(u) : width == 4 ? static_cast<int32_t>(u) : static_cast<int64_t>(u);
        v.items.push_back(std::to_string(x));
      }
      break;
    }
    case kTypeHashListpack:
    case kTypeZsetListpack: {
      std::string blob;
      std::vector<std::string> flat;
      if (!r.string(blob) || !read_listpack(blob, flat) || flat.size() % 2 != 0) return false;
      for (size_t i = 0; i < flat.size(); i += 2) {
        if (type == kTypeHashListpack) {
          v.type = ValueType::kHash;
          v.fields.emplace_back(std::move(flat[i]), std::move(flat[i + 1]));
        } else {
          v.type = ValueType::kZSet;
          double score = 0;
          if (!parse_score(flat[i + 1], score)) return false;
          v.scored.emplace_back(std::move(flat[i]), score);
        }
      }
      break;
    }
    case kTypeStreamListpacks2:
      if (!deserialize_stream(r, v)) return false;
      break;
    default:
      return false;
  }
  return r.done();
}

void store_loaded(ExecContext& ctx, std::string_view key, Loaded& v, uint64_t expire_at_ms) {
  Entry* e = nullptr;
  switch (v.type) {
    case ValueType::kString:
      ctx.store.set_string(key, v.str, expire_at_ms, false);
      return;
    case ValueType::kSet:
      e = ctx.store.create_set(key);
      for (const std::string& m : v.items) ctx.store.set_add(e, m);
      break;
    case ValueType::kHash:
      e = ctx.store.create_hash(key);
      for (const auto& [f, x] : v.fields) ctx.store.hash_set(e, f, x);
      break;
    case ValueType::kList:
      e = ctx.store.create_list(key);
      ctx.store.edit_list(e, [&](store::ListValue& l) {
        for (const std::string& s : v.items) l.push_back(s);
        return 0;
      });
      break;
    case ValueType::kZSet:
      e = ctx.store.create_zset(key);
      ctx.store.edit_zset(e, [&](store::ZSetValue& z) {
        for (const auto& [m, s] : v.scored) z.put(m, s);
        return 0;
      });
      break;
    case ValueType::kStream:
      e = ctx.store.create_stream(key);
      ctx.store.edit_stream(e, [&](store::StreamValue& s) {
        s.set_ids(v.last_id, v.entries_added, v.max_deleted);
        std::vector<std::string_view> views;
        for (const auto& [id, fields] : v.entries) {
          views.assign(fields.begin(), fields.end());
          s.restore_item(id, views);
        }
        for (const auto& g : v.groups) {
          if (!s.create_group(g.name, g.last, g.entries_read)) continue;
          store::StreamValue::Group& group = *s.group_mut(g.name);
          for (const auto& c : g.consumers) {
            store::StreamValue::Consumer& consumer = s.consumer(group, c.name);
            consumer.seen_ms = c.seen_ms;
            consumer.active_ms = c.seen_ms;
            for (const store::StreamId& id : c.pending) {
              const auto& [when, deliveries] = g.pel.at(id);
              s.pend(group, id, c.name, consumer, when, deliveries);
            }
          }
        }
        return 0;
      });
      break;
    default:
      return;
  }
  if (expire_at_ms != 0) ctx.store.set_expire(e, expire_at_ms);
}

bool empty_value(const Loaded& v) {
  switch (v.type) {
    case ValueType::kString:
    case ValueType::kStream: return false;
    case ValueType::kHash: return v.fields.empty();
    case ValueType::kZSet: return v.scored.empty();
    default: return v.items.empty();
  }
}

}  // namespace

void dump(ExecContext& ctx, Argv argv) {
  Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kRead);
  if (e == nullptr) return ctx.out.null();
  std::string out;
  if (!serialize(*e, out)) return ctx.out.error("ERR DUMP does not know this value's type");
  out += static_cast<char>(kRdbVersion & 0xff);
  out += static_cast<char>(kRdbVersion >> 8);
  const uint64_t crc = crc64_jones(out);
  for (int k = 0; k < 8; ++k) out += static_cast<char>((crc >> (8 * k)) & 0xff);
  ctx.out.bulk(out);
}

void restore(ExecContext& ctx, Argv argv) {
  int64_t ttl = 0;
  bool replace = false, absttl = false, idle = false, freq = false;
  int64_t freq_value = 0;
  for (size_t i = 4; i < argv.size(); ++i) {
    if (iequals(argv[i], "replace")) {
      replace = true;
    } else if (iequals(argv[i], "absttl")) {
      absttl = true;
    } else if (iequals(argv[i], "idletime") && i + 1 < argv.size() && !freq) {
      int64_t x = 0;
      if (!parse_i64(argv[++i], x)) return ctx.out.error(kErrNotInt);
      if (x < 0) return ctx.out.error("ERR Invalid IDLETIME value, must be >= 0");
      idle = true;
    } else if (iequals(argv[i], "freq") && i + 1 < argv.size() && !idle) {
      int64_t x = 0;
      if (!parse_i64(argv[++i], x)) return ctx.out.error(kErrNotInt);
      if (x < 0 || x > 255) return ctx.out.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
      freq = true;
      freq_value = x;
    } else {
      return ctx.out.error(kErrSyntax);
    }
  }
  Entry* existing = ctx.store.lookup(argv[1], ctx.now_ms, Access::kWrite);
  if (existing != nullptr && !replace) return ctx.out.error("BUSYKEY Target key name already exists.");
  if (!parse_i64(argv[2], ttl)) return ctx.out.error(kErrNotInt);
  if (ttl < 0) return ctx.out.error("ERR Invalid TTL value, must be >= 0");
  // The footer: RDB version (2 bytes) and CRC64 (8 bytes), little-endian.
  const std::string_view payload = argv[3];
  if (payload.size() < 10) return ctx.out.error("ERR DUMP payload version or checksum are wrong");
  const std::string_view body = payload.substr(0, payload.size() - 10);
  const uint16_t version = static_cast<uint16_t>(static_cast<uint8_t>(payload[payload.size() - 10]) |
                                                 (static_cast<uint8_t>(payload[payload.size() - 9]) << 8));
  uint64_t crc = 0;
  for (int k = 7; k >= 0; --k) crc = (crc << 8) | static_cast<uint8_t>(payload[payload.size() - 8 + static_cast<size_t>(k)]);
  if (version > kRdbVersion || crc != crc64_jones(payload.substr(0, payload.size() - 8))) {
    return ctx.out.error("ERR DUMP payload version or checksum are wrong");
  }
  Loaded v;
  if (!deserialize(body, v)) return ctx.out.error("ERR Bad data format");
  if (empty_value(v)) return ctx.out.error("ERR Bad data format");
  uint64_t expire_at = 0;
  if (ttl > 0) expire_at = absttl ? static_cast<uint64_t>(ttl) : ctx.now_ms + static_cast<uint64_t>(ttl);
  if (existing != nullptr) ctx.store.erase(argv[1], ctx.now_ms);
  // A TTL already in the past: as Redis, nothing is created (and REPLACE still removed the old value).
  if (expire_at != 0 && expire_at <= ctx.now_ms) return ctx.out.ok();
  store_loaded(ctx, argv[1], v, expire_at);
  // FREQ sets the LFU counter (under an LFU policy, as Redis). IDLETIME is accepted and changes
  // nothing: the LRU clock here counts accesses, not seconds (OBJECT IDLETIME says so).
  if (freq) {
    if (Entry* e = ctx.store.lookup(argv[1], ctx.now_ms, Access::kPeek)) {
      ctx.store.set_access_frequency(*e, static_cast<uint32_t>(freq_value), ctx.now_ms);
    }
  }
  ctx.out.ok();
}

}  // namespace tally::server::cmd
