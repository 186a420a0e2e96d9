// Sorted set values: members ordered by (score, member bytes), with a member index. The order is a
// skip list whose links carry spans (how many elements each link passes), so lookups by score or by
// member, rank and position are O(log n) and ranges walk the bottom level. Like the other containers,
// only the Store mutates a ZSetValue (inside Store::edit_zset), which keeps its memory total exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "host/store/containers.h"

namespace tally::store {

// One end of a score range: ZRANGEBYSCORE's "1.5", "(1.5", "-inf", "+inf".
struct ScoreBound {
  double value = 0;
  bool exclusive = false;
};

// One end of a lexicographic range: ZRANGEBYLEX's "[a", "(a", "-", "+".
struct LexBound {
  enum Kind : uint8_t { kInclusive, kExclusive, kMin, kMax } kind = kMin;
  std::string_view value;
};

class ZSetValue {
 public:
  static constexpr int kLevelsMax = 32;

  struct Node;
  struct Link {
    Node* next = nullptr;
    uint64_t span = 0;  // elements this link passes over (1 to the neighbour)
  };
  struct Node {
    double score = 0;
    Node* prev = nullptr;  // bottom level, toward the lowest; nullptr at the first element
    std::string member;
    int levels = 0;
    Link link[1];  // `levels` of them (allocated past the struct)

    const Node* next() const { return link[0].next; }
  };
  using Index = std::unordered_map<std::string_view, Node*, StringHash, std::equal_to<>>;

  ZSetValue();
  ~ZSetValue();
  ZSetValue(const ZSetValue&) = delete;
  ZSetValue& operator=(const ZSetValue&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Index& index() const { return index_; }
  // The member's score, or nullptr.
  const double* score(std::string_view member) const;
  // 0-based rank in ascending order (the member must be present).
  uint64_t rank(std::string_view member) const;
  // The element at 0-based ascending rank r (< size()).
  const Node* at_rank(uint64_t r) const;
  const Node* first() const { return head_->link[0].next; }
  const Node* last() const { return tail_; }
  // The first element within `min` (score >= / > min), or nullptr; the last within `max`.
  const Node* first_from(const ScoreBound& min) const;
  const Node* last_to(const ScoreBound& max) const;
  const Node* first_from(const LexBound& min) const;
  const Node* last_to(const LexBound& max) const;
  // 0-based rank of an element of this set.
  uint64_t rank_of(const Node* n) const;
  static bool within_min(const ScoreBound& min, double score) {
    return min.exclusive ? score > min.value : score >= min.value;
  }
  static bool within_max(const ScoreBound& max, double score) {
    return max.exclusive ? score < max.value : score <= max.value;
  }
  static bool within_min(const LexBound& min, std::string_view m);
  static bool within_max(const LexBound& max, std::string_view m);
  // Heap bytes: nodes, member buffers and the index.
  size_t bytes() const { return node_bytes_ + index_.bucket_count() * sizeof(void*); }

  // Adds a member or changes its score (not NaN). Returns true when the member is new.
  bool put(std::string_view member, double score);
  // Removes a member; false when absent.
  bool remove(std::string_view member);

 private:
  Node* new_node(int levels, std::string_view member, double score);
  void free_node(Node* n);
  int random_levels();
  void link_in(Node* n);
  void unlink(Node* n);
  static bool before(const Node* n, double score, std::string_view member) {
    return n->score < score || (n->score == score && n->member < member);
  }

  Node* head_;  // a sentinel with kLevelsMax links
  Node* tail_ = nullptr;
  int levels_ = 1;
  size_t size_ = 0;
  uint64_t seed_ = 0x2545F4914F6CDD1DULL;  // level draws (the shape does not affect any reply)
  size_t node_bytes_ = 0;
  Index index_;
};

}  // namespace tally::store
