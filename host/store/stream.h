// Stream values: entries ordered by id (milliseconds-sequence), each a list of field/value pairs, plus
// Redis's stream bookkeeping (last id, entries added, largest deleted id) and consumer groups with
// their pending entries lists. Like the other containers only the Store hands out a mutable
// StreamValue (inside Store::edit_stream), and every mutator here keeps bytes() exact, so the store's
// memory total stays exact.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tally::store {

struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const StreamId&) const = default;
  bool is_zero() const { return ms == 0 && seq == 0; }
  static constexpr StreamId max() { return {UINT64_MAX, UINT64_MAX}; }
  // The next id in order; false at the largest one.
  bool incr(StreamId& out) const;
  bool decr(StreamId& out) const;
  std::string str() const;  // "ms-seq"
};

class StreamValue {
 public:
  using Fields = std::vector<std::string>;  // field, value, field, value, ...
  using Items = std::map<StreamId, Fields>;

  // One delivered, not yet acknowledged entry of a group (Redis's NACK).
  struct Pending {
    std::string consumer;
    uint64_t delivery_ms = 0;
    uint64_t deliveries = 0;
  };
  struct Consumer {
    uint64_t seen_ms = 0;         // last attempted interaction
    uint64_t active_ms = 0;       // last successful one (0: never)
    std::set<StreamId> pending;   // ids of the group's pending entries that are this consumer's
  };
  struct Group {
    StreamId last_id;
    int64_t entries_read = -1;    // the logical read counter; -1 when unknown
    std::map<StreamId, Pending> pel;
    std::map<std::string, Consumer, std::less<>> consumers;
  };
  using Groups = std::map<std::string, Group, std::less<>>;
  static constexpr int64_t kEntriesReadUnknown = -1;

  const Items& items() const { return items_; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  StreamId last_id() const { return last_id_; }
  StreamId max_deleted() const { return max_deleted_; }
  uint64_t entries_added() const { return entries_added_; }
  StreamId first_id() const { return items_.empty() ? StreamId{} : items_.begin()->first; }
  const Groups& groups() const { return groups_; }
  const Group* group(std::string_view name) const {
    auto it = groups_.find(name);
    return it == groups_.end() ? nullptr : &it->second;
  }
  // Heap bytes: entries, groups, pending entries and consumers.
  size_t bytes() const { return bytes_; }

  // ---- entries ----
  // Adds an entry; id must be above last_id(). last_id and entries_added follow it.
  void append(StreamId id, std::span<const std::string_view> fields);
  bool erase(StreamId id);  // XDEL: max_deleted follows the largest id deleted
  // XTRIM: removes the oldest entries while more than maxlen remain (or while older than minid), at
  // most `limit` (0: no limit). Returns how many.
  size_t trim_maxlen(uint64_t maxlen, uint64_t limit);
  size_t trim_minid(StreamId minid, uint64_t limit);
  // Removes the first entry and makes its id the largest deleted one: retention of a stream whose
  // readers must learn that entries are gone (the change stream). false when empty.
  bool pop_front_recorded();
  // XSETID: the bookkeeping as given (the caller checks it against the entries).
  // Loading a snapshot: an entry as saved (ids rising, none above last_id()); false otherwise.
  bool restore_item(StreamId id, std::span<const std::string_view> fields);
  // Bytes that describe the whole value (entries, bookkeeping, groups) and nothing else, so equal
  // streams give equal bytes: what the dataset digest sums.
  void encode_canonical(std::string& out) const;
  void set_ids(StreamId last, uint64_t entries_added, StreamId max_deleted) {
    last_id_ = last;
    entries_added_ = entries_added;
    max_deleted_ = max_deleted;
  }

  // ---- the logical position of an id (Redis's estimate of entries added before it) ----
  // The number of entries ever added up to and including `id`, or kEntriesReadUnknown.
  int64_t estimate_read_counter(StreamId id) const;
  // Whether a deleted (XDEL) entry could lie in [start, end].
  bool range_has_tombstones(StreamId start, StreamId end) const;
  // A group's lag (entries added it has not read); false when it cannot be known. As redis-server 7.0
  // computes it (which can be negative after XSETID lowers the entries added).
  bool lag(const Group& g, int64_t& lag) const;

  // ---- consumer groups ----
  Group* group_mut(std::string_view name) {
    auto it = groups_.find(name);
    return it == groups_.end() ? nullptr : &it->second;
  }
  bool create_group(std::string_view name, StreamId last_id, int64_t entries_read);  // false if there
  bool destroy_group(std::string_view name);
  // The consumer, created when absent (`created` tells).
  Consumer& consumer(Group& g, std::string_view name, bool* created = nullptr);
  // Removes a consumer and its pending entries; returns how many it had. -1 when absent.
  int64_t delete_consumer(Group& g, std::string_view name);
  // The group moved past `id` while delivering it (XREADGROUP >): last_id and the read counter follow.
  void deliver_new(Group& g, StreamId id);
  // `id` becomes pending for consumer `c` (named `name`): a new entry, or one taken from whoever had it.
  void pend(Group& g, StreamId id, std::string_view name, Consumer& c, uint64_t now_ms, uint64_t deliveries);
  bool ack(Group& g, StreamId id);  // false when not pending

 private:
  static size_t item_bytes(const Fields& f);
  static size_t pending_bytes(std::string_view consumer);
  static size_t consumer_bytes(std::string_view name);
  static size_t group_bytes(std::string_view name);
  void drop_item(Items::iterator it);

  Items items_;
  StreamId last_id_;
  StreamId max_deleted_;
  uint64_t entries_added_ = 0;
  Groups groups_;
  size_t bytes_ = 0;
};

}  // namespace tally::store
