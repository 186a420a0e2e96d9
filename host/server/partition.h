// A partition: a fixed, contiguous range of Redis Cluster slots with its own store. It is the unit the
// node replicates, logs, snapshots and moves between shards; every key reaches its data only through
// the partition that owns the key's slot. A shard (one reactor core) holds a set of partitions.
#pragma once

#include <cstdint>
#include <memory>

#include "host/common/assert.h"
#include "host/store/store.h"
#include "kernels/cpu/slot.h"

namespace tally::server {

inline constexpr uint32_t kPartitionsDefault = 256;
inline constexpr uint32_t kPartitionsMax = kernels::kSlotCount;

struct SlotRange {
  uint32_t first = 0;  // inclusive
  uint32_t last = 0;   // inclusive
};

// How the 16384 slots are cut into partitions: `count` (a power of two) equal, contiguous ranges.
class PartitionLayout {
 public:
  explicit PartitionLayout(uint32_t count) : count_(count) {
    TALLY_ASSERT(valid_count(count));
    shift_ = 0;
    while ((kernels::kSlotCount >> shift_) > count) ++shift_;
  }
  static bool valid_count(uint32_t count) {
    return count >= 1 && count <= kPartitionsMax && (count & (count - 1)) == 0;
  }
  uint32_t count() const { return count_; }
  uint32_t of_slot(uint32_t slot) const {
    TALLY_ASSERT(slot < kernels::kSlotCount);
    return slot >> shift_;
  }
  uint32_t of_key(std::string_view key) const { return of_slot(kernels::key_slot(key)); }
  SlotRange slots(uint32_t p) const {
    TALLY_ASSERT(p < count_);
    return {p << shift_, ((p + 1) << shift_) - 1};
  }

 private:
  uint32_t count_;
  uint32_t shift_;
};

class Partition {
 public:
  // `shared` is the holding shard's memory total and LRU clock (re-pointed when the partition moves).
  Partition(uint32_t id, SlotRange slots, store::StoreOptions options, store::StoreShared* shared)
      : id_(id), slots_(slots), store_(std::make_unique<store::Store>(options, shared)) {}

  uint32_t id() const { return id_; }
  SlotRange slots() const { return slots_; }
  store::Store& store() { return *store_; }
  const store::Store& store() const { return *store_; }

 private:
  uint32_t id_;
  SlotRange slots_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace tally::server
