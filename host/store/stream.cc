#include "host/store/stream.h"

#include <algorithm>

#include "host/common/assert.h"
#include "host/store/containers.h"

namespace tally::store {
namespace {

// Estimates for libstdc++'s red-black tree nodes (four words of links and colour) and their payloads,
// rounded as the allocator rounds them.
constexpr size_t kTreeNodeBytes = 32;
size_t chunk(size_t n) { return std::max<size_t>(32, (n + 8 + 15) & ~size_t{15}); }

}  // namespace

bool StreamId::incr(StreamId& out) const {
  out = *this;
  if (seq != UINT64_MAX) {
    ++out.seq;
    return true;
  }
  if (ms == UINT64_MAX) return false;
  ++out.ms;
  out.seq = 0;
  return true;
}

bool StreamId::decr(StreamId& out) const {
  out = *this;
  if (seq != 0) {
    --out.seq;
    return true;
  }
  if (ms == 0) return false;
  --out.ms;
  out.seq = UINT64_MAX;
  return true;
}

std::string StreamId::str() const { return std::to_string(ms) + "-" + std::to_string(seq); }

size_t StreamValue::item_bytes(const Fields& f) {
  size_t n = chunk(kTreeNodeBytes + sizeof(StreamId) + sizeof(Fields));
  if (!f.empty()) n += chunk(f.capacity() * sizeof(std::string));
  for (const std::string& s : f) n += string_heap_bytes(s.size());
  return n;
}

size_t StreamValue::pending_bytes(std::string_view consumer) {
  // The group's PEL node and the consumer's set node.
  return chunk(kTreeNodeBytes + sizeof(StreamId) + sizeof(Pending)) + string_heap_bytes(consumer.size()) +
         chunk(kTreeNodeBytes + sizeof(StreamId));
}

size_t StreamValue::consumer_bytes(std::string_view name) {
  return chunk(kTreeNodeBytes + sizeof(std::string) + sizeof(Consumer)) + string_heap_bytes(name.size());
}

size_t StreamValue::group_bytes(std::string_view name) {
  return chunk(kTreeNodeBytes + sizeof(std::string) + sizeof(Group)) + string_heap_bytes(name.size());
}

void StreamValue::append(StreamId id, std::span<const std::string_view> fields) {
  TALLY_ASSERT(id > last_id_ && (items_.empty() || id > items_.rbegin()->first));
  Fields f;
  f.reserve(fields.size());
  for (std::string_view s : fields) f.emplace_back(s);
  bytes_ += item_bytes(f);
  items_.emplace_hint(items_.end(), id, std::move(f));
  last_id_ = id;
  ++entries_added_;
}

void StreamValue::drop_item(Items::iterator it) {
  bytes_ -= item_bytes(it->second);
  items_.erase(it);
}

bool StreamValue::restore_item(StreamId id, std::span<const std::string_view> fields) {
  if (id > last_id_ || (!items_.empty() && id <= items_.rbegin()->first)) return false;
  Fields f;
  f.reserve(fields.size());
  for (std::string_view s : fields) f.emplace_back(s);
  bytes_ += item_bytes(f);
  items_.emplace_hint(items_.end(), id, std::move(f));
  return true;
}

namespace {
void put64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
void put_id(std::string& out, StreamId id) {
  put64(out, id.ms);
  put64(out, id.seq);
}
void put_str(std::string& out, std::string_view s) {
  put64(out, s.size());
  out.append(s);
}
}  // namespace

void StreamValue::encode_canonical(std::string& out) const {
  put_id(out, last_id_);
  put_id(out, max_deleted_);
  put64(out, entries_added_);
  put64(out, items_.size());
  for (const auto& [id, f] : items_) {
    put_id(out, id);
    put64(out, f.size());
    for (const std::string& s : f) put_str(out, s);
  }
  put64(out, groups_.size());
  for (const auto& [name, g] : groups_) {
    put_str(out, name);
    put_id(out, g.last_id);
    put64(out, static_cast<uint64_t>(g.entries_read));
    put64(out, g.pel.size());
    for (const auto& [id, p] : g.pel) {
      put_id(out, id);
      put_str(out, p.consumer);
      put64(out, p.delivery_ms);
      put64(out, p.deliveries);
    }
    put64(out, g.consumers.size());
    for (const auto& [cname, c] : g.consumers) {
      put_str(out, cname);
      put64(out, c.seen_ms);
      put64(out, c.active_ms);
    }
  }
}

bool StreamValue::erase(StreamId id) {
  auto it = items_.find(id);
  if (it == items_.end()) return false;
  drop_item(it);
  if (id > max_deleted_) max_deleted_ = id;
  return true;
}

size_t StreamValue::trim_maxlen(uint64_t maxlen, uint64_t limit) {
  size_t n = 0;
  while (items_.size() > maxlen && (limit == 0 || n < limit)) {
    drop_item(items_.begin());
    ++n;
  }
  return n;
}

size_t StreamValue::trim_minid(StreamId minid, uint64_t limit) {
  size_t n = 0;
  while (!items_.empty() && items_.begin()->first < minid && (limit == 0 || n < limit)) {
    drop_item(items_.begin());
    ++n;
  }
  return n;
}

bool StreamValue::pop_front_recorded() {
  if (items_.empty()) return false;
  const StreamId id = items_.begin()->first;
  drop_item(items_.begin());
  if (id > max_deleted_) max_deleted_ = id;
  return true;
}

int64_t StreamValue::estimate_read_counter(StreamId id) const {
  if (entries_added_ == 0) return 0;
  if (items_.empty() && id <= last_id_) return static_cast<int64_t>(entries_added_);
  if (id == last_id_) return static_cast<int64_t>(entries_added_);
  if (id > last_id_) return kEntriesReadUnknown;
  const StreamId first = first_id();
  if (max_deleted_.is_zero() || max_deleted_ < first) {
    const int64_t before_first = static_cast<int64_t>(entries_added_ - items_.size());
    if (id < first) return before_first;
    if (id == first) return before_first + 1;
  }
  return kEntriesReadUnknown;
}

bool StreamValue::range_has_tombstones(StreamId start, StreamId end) const {
  if (items_.empty() || max_deleted_.is_zero()) return false;
  if (max_deleted_ < first_id()) return false;
  return start <= max_deleted_ && max_deleted_ <= end;
}

bool StreamValue::lag(const Group& g, int64_t& lag) const {
  if (entries_added_ == 0) {
    lag = 0;
    return true;
  }
  if (g.entries_read != kEntriesReadUnknown && !range_has_tombstones(g.last_id, StreamId::max())) {
    lag = static_cast<int64_t>(entries_added_) - g.entries_read;
    return true;
  }
  const int64_t read = estimate_read_counter(g.last_id);
  if (read == kEntriesReadUnknown) return false;
  lag = static_cast<int64_t>(entries_added_) - read;
  return true;
}

bool StreamValue::create_group(std::string_view name, StreamId last_id, int64_t entries_read) {
  if (groups_.find(name) != groups_.end()) return false;
  Group& g = groups_[std::string(name)];
  g.last_id = last_id;
  g.entries_read = entries_read;
  bytes_ += group_bytes(name);
  return true;
}

bool StreamValue::destroy_group(std::string_view name) {
  auto it = groups_.find(name);
  if (it == groups_.end()) return false;
  Group& g = it->second;
  for (const auto& [id, p] : g.pel) bytes_ -= pending_bytes(p.consumer);
  for (const auto& [cname, c] : g.consumers) bytes_ -= consumer_bytes(cname);
  bytes_ -= group_bytes(name);
  groups_.erase(it);
  return true;
}

StreamValue::Consumer& StreamValue::consumer(Group& g, std::string_view name, bool* created) {
  auto it = g.consumers.find(name);
  if (created != nullptr) *created = it == g.consumers.end();
  if (it != g.consumers.end()) return it->second;
  bytes_ += consumer_bytes(name);
  return g.consumers.emplace(std::string(name), Consumer{}).first->second;
}

int64_t StreamValue::delete_consumer(Group& g, std::string_view name) {
  auto it = g.consumers.find(name);
  if (it == g.consumers.end()) return -1;
  const int64_t n = static_cast<int64_t>(it->second.pending.size());
  for (StreamId id : it->second.pending) {
    auto p = g.pel.find(id);
    TALLY_ASSERT(p != g.pel.end());
    bytes_ -= pending_bytes(p->second.consumer);
    g.pel.erase(p);
  }
  bytes_ -= consumer_bytes(name);
  g.consumers.erase(it);
  return n;
}

void StreamValue::deliver_new(Group& g, StreamId id) {
  if (id <= g.last_id) return;
  if (g.entries_read != kEntriesReadUnknown && !range_has_tombstones(id, StreamId::max())) {
    ++g.entries_read;
  } else if (entries_added_ != 0) {
    g.entries_read = estimate_read_counter(id);
  }
  g.last_id = id;
}

void StreamValue::pend(Group& g, StreamId id, std::string_view name, Consumer& c, uint64_t now_ms,
                       uint64_t deliveries) {
  auto it = g.pel.find(id);
  if (it == g.pel.end()) {
    it = g.pel.emplace(id, Pending{std::string(name), 0, 0}).first;
    bytes_ += pending_bytes(name);
  } else if (it->second.consumer != name) {
    auto old = g.consumers.find(it->second.consumer);
    TALLY_ASSERT(old != g.consumers.end());
    old->second.pending.erase(id);
    bytes_ -= pending_bytes(it->second.consumer);
    it->second.consumer = std::string(name);
    bytes_ += pending_bytes(name);
  }
  c.pending.insert(id);
  it->second.delivery_ms = now_ms;
  it->second.deliveries = deliveries;
}

bool StreamValue::ack(Group& g, StreamId id) {
  auto it = g.pel.find(id);
  if (it == g.pel.end()) return false;
  auto c = g.consumers.find(it->second.consumer);
  TALLY_ASSERT(c != g.consumers.end());
  c->second.pending.erase(id);
  bytes_ -= pending_bytes(it->second.consumer);
  g.pel.erase(it);
  return true;
}

}  // namespace tally::store
