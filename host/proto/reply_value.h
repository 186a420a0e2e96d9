// Reply: a command's answer as a value, independent of the wire protocol. Handlers build it; sessions
// encode it (RESP2, RESP3 or memcached); cross-shard fan-out merges values, never wire bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/assert.h"

namespace tally::proto {

class ReplyWriter;

enum class ReplyType : uint8_t {
  kSimple,     // +text
  kError,      // -text (the text carries its own prefix: "ERR ...", "WRONGTYPE ...")
  kInteger,
  kBulk,
  kNull,       // RESP2 $-1
  kNullArray,  // RESP2 *-1
  kArray,      // n elements follow
  kMap,        // n key/value pairs (2n elements) follow
  kSet,        // n elements follow
  kPush,       // n elements follow
  kDouble,
  kBool,
  kVerbatim,   // text shown as txt: in RESP3, a bulk string in RESP2
};

// A flat, preorder list of nodes: a container node is followed by its elements. Strings live in one
// arena, so a reused Reply (clear() keeps capacity) builds a reply without allocating.
class Reply {
 public:
  struct Node {
    ReplyType type = ReplyType::kNull;
    // kArray only: in RESP2 each element (itself an array) is spliced into this one, so
    // [[f1 v1] [f2 v2]] reads as RESP3 pairs and as RESP2's flat f1 v1 f2 v2.
    bool flatten_resp2 = false;
    // kMap only: RESP2 shows it as an array of [key, value] arrays (XREAD's reply), not flat.
    bool pairs_resp2 = false;
    uint32_t len = 0;  // string bytes
    union {
      int64_t integer;
      uint64_t count;   // container elements (pairs for kMap)
      uint64_t offset;  // string start in the arena
      double dbl;
      bool boolean;
    };
    Node() : integer(0) {}
  };

  // Values of one reply above this size are a programmer error (replies are bounded by the data).
  static constexpr uint64_t kStringBytesMax = UINT32_MAX;

  void clear() {
    nodes_.clear();
    arena_.clear();
  }
  bool empty() const { return nodes_.empty(); }
  size_t size() const { return nodes_.size(); }
  const Node& node(size_t i) const {
    TALLY_ASSERT(i < nodes_.size());
    return nodes_[i];
  }
  std::string_view text(size_t i) const {
    const Node& n = node(i);
    return {arena_.data() + n.offset, n.len};
  }
  // True when the first top-level reply is an error.
  bool is_error() const { return !nodes_.empty() && nodes_[0].type == ReplyType::kError; }
  // The index just past the value that starts at node i (its subtree).
  size_t skip(size_t i) const;
  // Number of top-level values (a batch of commands' replies holds one per command).
  size_t top_level_count() const;

  // ---- building (the same calls as ReplyWriter) ----
  void simple(std::string_view s) { push_string(ReplyType::kSimple, s); }
  void ok() { simple("OK"); }
  void error(std::string_view msg) { push_string(ReplyType::kError, msg); }
  void integer(int64_t v) {
    Node& n = push(ReplyType::kInteger);
    n.integer = v;
  }
  void bulk(std::string_view s) { push_string(ReplyType::kBulk, s); }
  void null() { push(ReplyType::kNull); }
  void null_array() { push(ReplyType::kNullArray); }
  void array(size_t n) { push_container(ReplyType::kArray, n); }
  // An array of arrays that RESP2 shows flat (see Node::flatten_resp2).
  void array_flat_in_resp2(size_t n) {
    push_container(ReplyType::kArray, n);
    nodes_.back().flatten_resp2 = true;
  }
  void map(size_t n) { push_container(ReplyType::kMap, n); }
  // A map that RESP2 shows as an array of [key, value] arrays (see Node::pairs_resp2).
  void map_pairs_in_resp2(size_t n) {
    push_container(ReplyType::kMap, n);
    nodes_.back().pairs_resp2 = true;
  }
  void set(size_t n) { push_container(ReplyType::kSet, n); }
  void push(size_t n) { push_container(ReplyType::kPush, n); }
  void dbl(double v) {
    Node& n = push(ReplyType::kDouble);
    n.dbl = v;
  }
  void boolean(bool v) {
    Node& n = push(ReplyType::kBool);
    n.boolean = v;
  }
  void verbatim(std::string_view s) { push_string(ReplyType::kVerbatim, s); }

  // Appends the values in nodes [from, to) of `other` (whole subtrees).
  void append(const Reply& other, size_t from, size_t to);
  void append(const Reply& other) { append(other, 0, other.size()); }
  // Sets the count of the container node at index i (when the count is known only at the end).
  // Drops nodes [n, size()) (their string bytes stay in the arena until clear()).
  void truncate(size_t n) {
    TALLY_ASSERT(n <= nodes_.size());
    nodes_.resize(n);
  }
  void set_count(size_t i, uint64_t count) {
    TALLY_ASSERT(i < nodes_.size());
    nodes_[i].count = count;
  }

  // A compact binary image of the whole reply (any number of top-level values), for replies that
  // cross to another node (a forwarded command's answer). decode() takes an image from a peer that
  // may lie: it checks every length, type and count, and false leaves `out` cleared.
  void encode(std::string& out) const;
  static bool decode(std::string_view in, Reply& out);

  // Encodes nodes [from, to) as RESP (2 or 3, as the writer speaks).
  void write_resp(ReplyWriter& w, size_t from, size_t to) const;
  void write_resp(ReplyWriter& w) const { write_resp(w, 0, size()); }

 private:
  Node& push(ReplyType t) {
    nodes_.emplace_back();
    nodes_.back().type = t;
    return nodes_.back();
  }
  void push_string(ReplyType t, std::string_view s) {
    TALLY_ASSERT(s.size() <= kStringBytesMax);
    Node& n = push(t);
    n.offset = arena_.size();
    n.len = static_cast<uint32_t>(s.size());
    arena_.append(s);
  }
  void push_container(ReplyType t, size_t count) {
    Node& n = push(t);
    n.count = count;
  }
  size_t write_one(ReplyWriter& w, size_t i) const;

  std::vector<Node> nodes_;
  std::string arena_;
};

}  // namespace tally::proto
