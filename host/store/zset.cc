// The sorted set's skip list. Every level's links carry spans, so a search that goes right over a link
// adds its span to the rank; insertion and removal fix the spans of the links they cross.
#include "host/store/zset.h"

#include <malloc.h>

#include <cmath>
#include <cstdlib>
#include <new>

#include "host/common/assert.h"

namespace tally::store {
namespace {

// The index's per-member cost: its node (view, pointer, cached hash, next) in glibc's chunk rounding.
constexpr size_t kIndexNodeBytes = 48;

}  // namespace

ZSetValue::ZSetValue() {
  head_ = new_node(kLevelsMax, {}, 0);
  node_bytes_ = 0;  // the sentinel counts as the value's fixed part (the Store adds it once)
}

ZSetValue::~ZSetValue() {
  Node* n = head_->link[0].next;
  while (n != nullptr) {
    Node* next = n->link[0].next;
    n->~Node();
    std::free(n);
    n = next;
  }
  head_->~Node();
  std::free(head_);
}

ZSetValue::Node* ZSetValue::new_node(int levels, std::string_view member, double score) {
  TALLY_ASSERT(levels >= 1 && levels <= kLevelsMax);
  const size_t bytes = sizeof(Node) + static_cast<size_t>(levels - 1) * sizeof(Link);
  void* mem = std::malloc(bytes);
  TALLY_ASSERT_MSG(mem != nullptr, "out of memory");
  Node* n = new (mem) Node();
  n->score = score;
  n->member.assign(member);
  n->levels = levels;
  for (int i = 1; i < levels; ++i) new (&n->link[i]) Link();
  node_bytes_ += malloc_usable_size(mem) + 8 + string_heap_bytes(member.size()) + kIndexNodeBytes;
  return n;
}

void ZSetValue::free_node(Node* n) {
  const size_t b = malloc_usable_size(n) + 8 + string_heap_bytes(n->member.size()) + kIndexNodeBytes;
  TALLY_ASSERT(node_bytes_ >= b);
  node_bytes_ -= b;
  n->~Node();
  std::free(n);
}

int ZSetValue::random_levels() {
  // xorshift64*; each further level with probability 1/4.
  int levels = 1;
  while (levels < kLevelsMax) {
    seed_ ^= seed_ >> 12;
    seed_ ^= seed_ << 25;
    seed_ ^= seed_ >> 27;
    if (((seed_ * 0x2545F4914F6CDD1DULL) >> 62) != 0) break;
    ++levels;
  }
  return levels;
}

const double* ZSetValue::score(std::string_view member) const {
  auto it = index_.find(member);
  return it == index_.end() ? nullptr : &it->second->score;
}

void ZSetValue::link_in(Node* x) {
  Node* update[kLevelsMax] = {};
  uint64_t rank[kLevelsMax];
  Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    rank[i] = i == levels_ - 1 ? 0 : rank[i + 1];
    while (p->link[i].next != nullptr && before(p->link[i].next, x->score, x->member)) {
      rank[i] += p->link[i].span;
      p = p->link[i].next;
    }
    update[i] = p;
  }
  if (x->levels > levels_) {
    for (int i = levels_; i < x->levels; ++i) {
      rank[i] = 0;
      update[i] = head_;
      head_->link[i].span = size_;
    }
    levels_ = x->levels;
  }
  for (int i = 0; i < x->levels; ++i) {
    x->link[i].next = update[i]->link[i].next;
    update[i]->link[i].next = x;
    x->link[i].span = update[i]->link[i].span - (rank[0] - rank[i]);
    update[i]->link[i].span = rank[0] - rank[i] + 1;
  }
  for (int i = x->levels; i < levels_; ++i) ++update[i]->link[i].span;
  x->prev = update[0] == head_ ? nullptr : update[0];
  if (x->link[0].next != nullptr) {
    x->link[0].next->prev = x;
  } else {
    tail_ = x;
  }
  ++size_;
}

void ZSetValue::unlink(Node* x) {
  Node* update[kLevelsMax] = {};
  Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && p->link[i].next != x && before(p->link[i].next, x->score, x->member)) {
      p = p->link[i].next;
    }
    update[i] = p;
  }
  TALLY_ASSERT(update[0]->link[0].next == x);
  for (int i = 0; i < levels_; ++i) {
    if (update[i]->link[i].next == x) {
      update[i]->link[i].span += x->link[i].span - 1;
      update[i]->link[i].next = x->link[i].next;
    } else {
      --update[i]->link[i].span;
    }
  }
  if (x->link[0].next != nullptr) {
    x->link[0].next->prev = x->prev;
  } else {
    tail_ = x->prev;
  }
  while (levels_ > 1 && head_->link[levels_ - 1].next == nullptr) --levels_;
  --size_;
}

bool ZSetValue::put(std::string_view member, double score) {
  TALLY_ASSERT(!std::isnan(score));
  auto it = index_.find(member);
  if (it != index_.end()) {
    Node* n = it->second;
    if (n->score == score) return false;
    // Stays in place when the order does not change; otherwise out and back in.
    const Node* next = n->link[0].next;
    if ((n->prev == nullptr || n->prev->score < score || (n->prev->score == score && n->prev->member < n->member)) &&
        (next == nullptr || score < next->score || (score == next->score && n->member < next->member))) {
      n->score = score;
      return false;
    }
    unlink(n);
    n->score = score;
    link_in(n);
    return false;
  }
  Node* n = new_node(random_levels(), member, score);
  link_in(n);
  index_.emplace(std::string_view(n->member), n);
  return true;
}

bool ZSetValue::remove(std::string_view member) {
  auto it = index_.find(member);
  if (it == index_.end()) return false;
  Node* n = it->second;
  index_.erase(it);
  unlink(n);
  free_node(n);
  return true;
}

uint64_t ZSetValue::rank_of(const Node* x) const {
  uint64_t r = 0;
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr &&
           (p->link[i].next == x || before(p->link[i].next, x->score, x->member))) {
      r += p->link[i].span;
      p = p->link[i].next;
      if (p == x) return r - 1;
    }
  }
  TALLY_UNREACHABLE();
}

uint64_t ZSetValue::rank(std::string_view member) const {
  auto it = index_.find(member);
  TALLY_ASSERT(it != index_.end());
  return rank_of(it->second);
}

const ZSetValue::Node* ZSetValue::at_rank(uint64_t r) const {
  TALLY_ASSERT(r < size_);
  const uint64_t want = r + 1;
  uint64_t passed = 0;
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && passed + p->link[i].span <= want) {
      passed += p->link[i].span;
      p = p->link[i].next;
    }
    if (passed == want) return p;
  }
  TALLY_UNREACHABLE();
}

const ZSetValue::Node* ZSetValue::first_from(const ScoreBound& min) const {
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && !within_min(min, p->link[i].next->score)) p = p->link[i].next;
  }
  return p->link[0].next;
}

const ZSetValue::Node* ZSetValue::last_to(const ScoreBound& max) const {
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && within_max(max, p->link[i].next->score)) p = p->link[i].next;
  }
  return p == head_ ? nullptr : p;
}

bool ZSetValue::within_min(const LexBound& min, std::string_view m) {
  switch (min.kind) {
    case LexBound::kMin: return true;
    case LexBound::kMax: return false;
    case LexBound::kInclusive: return m >= min.value;
    case LexBound::kExclusive: return m > min.value;
  }
  TALLY_UNREACHABLE();
}

bool ZSetValue::within_max(const LexBound& max, std::string_view m) {
  switch (max.kind) {
    case LexBound::kMin: return false;
    case LexBound::kMax: return true;
    case LexBound::kInclusive: return m <= max.value;
    case LexBound::kExclusive: return m < max.value;
  }
  TALLY_UNREACHABLE();
}

// Lex ranges assume equal scores (as Redis): the walk compares members only.
const ZSetValue::Node* ZSetValue::first_from(const LexBound& min) const {
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && !within_min(min, p->link[i].next->member)) p = p->link[i].next;
  }
  return p->link[0].next;
}

const ZSetValue::Node* ZSetValue::last_to(const LexBound& max) const {
  const Node* p = head_;
  for (int i = levels_ - 1; i >= 0; --i) {
    while (p->link[i].next != nullptr && within_max(max, p->link[i].next->member)) p = p->link[i].next;
  }
  return p == head_ ? nullptr : p;
}

}  // namespace tally::store
