// Set and hash values of the keyspace, with an estimate of their heap bytes kept up to date.
// Only the Store mutates them (so its used-memory total stays exact); readers use the const views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

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

}  // namespace tally::store
