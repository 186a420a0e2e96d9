// Set, hash and list values of the keyspace, with an estimate of their heap bytes kept up to date.
// Only the Store mutates them (so its used-memory total stays exact); readers use the const views.
// Sorted sets are in zset.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tally::store {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const;
};

// Bytes the allocator really takes for a std::string's heap buffer (0 when it fits the SSO).
size_t string_heap_bytes(size_t len);

class SetValue {
 public:
  using Members = std::unordered_set<std::string, StringHash, std::equal_to<>>;
  const Members& members() const { return members_; }
  size_t size() const { return members_.size(); }
  bool contains(std::string_view m) const { return members_.find(m) != members_.end(); }
  size_t bytes() const { return bytes_; }

 private:
  friend class Store;
  Members members_;
  size_t bytes_ = 0;
};

class HashValue {
 public:
  using Fields = std::unordered_map<std::string, std::string, StringHash, std::equal_to<>>;
  const Fields& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const std::string* find(std::string_view f) const {
    auto it = fields_.find(f);
    return it == fields_.end() ? nullptr : &it->second;
  }
  size_t bytes() const { return bytes_; }

 private:
  friend class Store;
  Fields fields_;
  size_t bytes_ = 0;
};

// A list: a deque of strings (O(1) at both ends and by index). Its mutators keep bytes() exact; the
// Store hands out a mutable ListValue only inside Store::edit_list, which accounts the difference.
class ListValue {
 public:
  using Items = std::deque<std::string>;
  const Items& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::string& at(size_t i) const { return items_[i]; }
  // Heap bytes: the elements, their heap buffers and the deque's blocks.
  size_t bytes() const;

  void push_front(std::string_view v);
  void push_back(std::string_view v);
  std::string pop_front();
  std::string pop_back();
  void set(size_t i, std::string_view v);
  void insert(size_t i, std::string_view v);  // before element i (i == size(): at the end)
  // Removes the elements at ascending positions `at` in one pass.
  void erase_sorted(const std::vector<size_t>& at);
  // Keeps elements [first, last] (inclusive); first > last empties the list.
  void keep(size_t first, size_t last);

 private:
  static size_t item_bytes(size_t len);
  Items items_;
  size_t item_bytes_ = 0;
};

}  // namespace tally::store
