#include "host/proto/reply_value.h"

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

}  // namespace tally::proto
