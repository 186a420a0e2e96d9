#include "host/proto/reply_value.h"

#include <cstring>

#include "host/proto/reply.h"

namespace tally::proto {

namespace {

bool is_container(ReplyType t) {
  return t == ReplyType::kArray || t == ReplyType::kMap || t == ReplyType::kSet || t == ReplyType::kPush;
}

uint64_t elements(const Reply::Node& n) { return n.type == ReplyType::kMap ? 2 * n.count : n.count; }

}  // namespace

size_t Reply::skip(size_t i) const {
  TALLY_ASSERT(i < nodes_.size());
  // Elements still to pass over; a container adds its own.
  uint64_t todo = 1;
  while (todo > 0) {
    TALLY_ASSERT_MSG(i < nodes_.size(), "reply: container count exceeds its elements");
    const Node& n = nodes_[i++];
    --todo;
    if (is_container(n.type)) todo += elements(n);
  }
  return i;
}

size_t Reply::top_level_count() const {
  size_t count = 0;
  for (size_t i = 0; i < nodes_.size(); i = skip(i)) ++count;
  return count;
}

void Reply::append(const Reply& other, size_t from, size_t to) {
  TALLY_ASSERT(from <= to && to <= other.nodes_.size());
  nodes_.reserve(nodes_.size() + (to - from));
  for (size_t i = from; i < to; ++i) {
    const Node& n = other.nodes_[i];
    switch (n.type) {
      case ReplyType::kSimple:
      case ReplyType::kError:
      case ReplyType::kBulk:
      case ReplyType::kVerbatim:
        push_string(n.type, other.text(i));
        nodes_.back().flatten_resp2 = n.flatten_resp2;
        break;
      default:
        nodes_.push_back(n);
        break;
    }
  }
}

size_t Reply::write_one(ReplyWriter& w, size_t i) const {
  const Node& n = node(i);
  switch (n.type) {
    case ReplyType::kSimple:
      if (text(i) == "OK") {
        w.ok();  // the commonest reply, in one append
      } else {
        w.simple(text(i));
      }
      return i + 1;
    case ReplyType::kError: w.error(text(i)); return i + 1;
    case ReplyType::kInteger: w.integer(n.integer); return i + 1;
    case ReplyType::kBulk: w.bulk(text(i)); return i + 1;
    case ReplyType::kNull: w.null(); return i + 1;
    case ReplyType::kNullArray: w.null_array(); return i + 1;
    case ReplyType::kDouble: w.dbl(n.dbl); return i + 1;
    case ReplyType::kBool: w.boolean(n.boolean); return i + 1;
    case ReplyType::kVerbatim: w.verbatim(text(i)); return i + 1;
    case ReplyType::kArray:
      if (n.flatten_resp2 && w.resp() < 3) {
        // Each element is an array whose own elements join this one.
        uint64_t total = 0;
        size_t j = i + 1;
        for (uint64_t k = 0; k < n.count; ++k) {
          TALLY_ASSERT(node(j).type == ReplyType::kArray);
          total += node(j).count;
          j = skip(j);
        }
        w.array(total);
        j = i + 1;
        for (uint64_t k = 0; k < n.count; ++k) {
          const uint64_t inner = node(j).count;
          ++j;
          for (uint64_t e = 0; e < inner; ++e) j = write_one(w, j);
        }
        return j;
      }
      w.array(n.count);
      break;
    case ReplyType::kMap:
      if (n.pairs_resp2 && w.resp() < 3) {
        w.array(n.count);
        size_t j = i + 1;
        for (uint64_t k = 0; k < n.count; ++k) {
          w.array(2);
          j = write_one(w, j);
          j = write_one(w, j);
        }
        return j;
      }
      w.map(n.count);
      break;
    case ReplyType::kSet: w.set(n.count); break;
    case ReplyType::kPush: w.push(n.count); break;
  }
  size_t j = i + 1;
  for (uint64_t e = 0; e < elements(n); ++e) j = write_one(w, j);
  return j;
}

void Reply::write_resp(ReplyWriter& w, size_t from, size_t to) const {
  TALLY_ASSERT(from <= to && to <= nodes_.size());
  size_t i = from;
  while (i < to) i = write_one(w, i);
  TALLY_ASSERT(i == to);
}

namespace {

// The image: u32 node count, then per node u8 type, u8 flags (1: flatten_resp2, 2: pairs_resp2) and
// its value: strings u32 length and bytes, integers i64, containers u64 count, doubles 8 bytes,
// booleans u8; little-endian, as the peer protocol.
void put(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }

bool is_string(ReplyType t) {
  return t == ReplyType::kSimple || t == ReplyType::kError || t == ReplyType::kBulk || t == ReplyType::kVerbatim;
}

}  // namespace

void Reply::encode(std::string& out) const {
  const uint32_t count = static_cast<uint32_t>(nodes_.size());
  TALLY_ASSERT(count == nodes_.size());
  put(out, &count, 4);
  for (const Node& n : nodes_) {
    const uint8_t head[2] = {static_cast<uint8_t>(n.type),
                             static_cast<uint8_t>((n.flatten_resp2 ? 1 : 0) | (n.pairs_resp2 ? 2 : 0))};
    put(out, head, 2);
    if (is_string(n.type)) {
      put(out, &n.len, 4);
      put(out, arena_.data() + n.offset, n.len);
    } else if (is_container(n.type)) {
      put(out, &n.count, 8);
    } else if (n.type == ReplyType::kInteger) {
      put(out, &n.integer, 8);
    } else if (n.type == ReplyType::kDouble) {
      put(out, &n.dbl, 8);
    } else if (n.type == ReplyType::kBool) {
      const uint8_t b = n.boolean ? 1 : 0;
      put(out, &b, 1);
    }
  }
}

bool Reply::decode(std::string_view in, Reply& out) {
  out.clear();
  size_t at = 0;
  auto take = [&](void* p, size_t n) {
    if (in.size() - at < n) return false;
    std::memcpy(p, in.data() + at, n);
    at += n;
    return true;
  };
  uint32_t count = 0;
  // Every node takes at least its 2-byte head: a count beyond that is a lie, refused before allocating.
  if (!take(&count, 4) || count == 0 || count > (in.size() - at) / 2) return false;
  out.nodes_.reserve(count);
  // Values still owed to open containers, plus the top level's (at least one value, any number).
  uint64_t owed = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t head[2];
    if (!take(head, 2) || head[0] > static_cast<uint8_t>(ReplyType::kVerbatim) || head[1] > 3) {
      out.clear();
      return false;
    }
    const ReplyType t = static_cast<ReplyType>(head[0]);
    if (owed > 0) --owed;
    bool ok = true;
    if (is_string(t)) {
      uint32_t len = 0;
      ok = take(&len, 4) && in.size() - at >= len;
      if (ok) {
        out.push_string(t, in.substr(at, len));
        at += len;
      }
    } else if (is_container(t)) {
      uint64_t n = 0;
      // Its elements are among the nodes still to come.
      ok = take(&n, 8) && n <= count - i - 1 && (t != ReplyType::kMap || 2 * n <= count - i - 1);
      if (ok) {
        out.push_container(t, n);
        owed += t == ReplyType::kMap ? 2 * n : n;
        ok = owed <= count - i - 1;
      }
    } else if (t == ReplyType::kInteger) {
      int64_t v = 0;
      ok = take(&v, 8);
      if (ok) out.integer(v);
    } else if (t == ReplyType::kDouble) {
      double v = 0;
      ok = take(&v, 8);
      if (ok) out.dbl(v);
    } else if (t == ReplyType::kBool) {
      uint8_t b = 0;
      ok = take(&b, 1) && b <= 1;
      if (ok) out.boolean(b == 1);
    } else {
      out.push(t);
    }
    if (!ok) {
      out.clear();
      return false;
    }
    out.nodes_.back().flatten_resp2 = (head[1] & 1) != 0;
    out.nodes_.back().pairs_resp2 = (head[1] & 2) != 0;
  }
  if (owed != 0 || at != in.size()) {
    out.clear();
    return false;
  }
  return true;
}

}  // namespace tally::proto
