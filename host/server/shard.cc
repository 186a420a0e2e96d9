#include "host/server/shard.h"

#include <algorithm>

namespace tally::server {

StoreFigures& StoreFigures::operator+=(const StoreFigures& o) {
  keys += o.keys;
  expires += o.expires;
  used_memory_bytes += o.used_memory_bytes;
  expired_keys += o.expired_keys;
  evicted_keys += o.evicted_keys;
  keyspace_hits += o.keyspace_hits;
  keyspace_misses += o.keyspace_misses;
  return *this;
}

void Shard::adopt(std::unique_ptr<Partition> p) {
  TALLY_ASSERT(p != nullptr && p->id() < partitions.size());
  TALLY_ASSERT(partitions[p->id()] == nullptr);
  const uint32_t id = p->id();
  p->store().rebind_shared(&memory);
  p->store().set_policy(policy);
  partitions[id] = std::move(p);
  held.insert(std::lower_bound(held.begin(), held.end(), id), id);
}

std::unique_ptr<Partition> Shard::release(uint32_t p) {
  TALLY_ASSERT(p < partitions.size() && partitions[p] != nullptr);
  held.erase(std::lower_bound(held.begin(), held.end(), p));
  return std::move(partitions[p]);
}

void Shard::configure_memory(uint64_t maxmemory, store::EvictionPolicy p) {
  maxmemory_bytes = maxmemory;
  policy = p;
  for (uint32_t id : held) partitions[id]->store().set_policy(p);
}

bool Shard::admit_write(uint64_t now_ms) {
  if (maxmemory_bytes == 0 || memory.used_bytes <= maxmemory_bytes) return true;
  if (policy == store::EvictionPolicy::kNoEviction || held.empty()) return false;
  uint32_t rounds = 0;
  for (; rounds < store::Store::kEvictionRoundsMax && memory.used_bytes > maxmemory_bytes; ++rounds) {
    // The best victim of a few partitions, picked in proportion to their memory.
    store::Store* best_store = nullptr;
    store::Entry* best = nullptr;
    uint64_t best_score = 0;
    for (uint32_t k = 0; k < kEvictionPartitionsSampled; ++k) {
      uint64_t at = rng.uniform(memory.used_bytes);
      store::Store* st = nullptr;
      for (uint32_t id : held) {
        store::Store& s = partitions[id]->store();
        if (at < s.used_memory_bytes()) {
          st = &s;
          break;
        }
        at -= s.used_memory_bytes();
      }
      if (st == nullptr) continue;
      uint64_t score = 0;
      store::Entry* e = st->peek_victim(now_ms, score);
      if (e != nullptr && (best == nullptr || score > best_score)) {
        best = e;
        best_store = st;
        best_score = score;
      }
    }
    if (best == nullptr) break;
    best_store->erase(best);
    best_store->count_eviction();
    ++evicted_keys;
  }
  // Out of rounds with memory still high: let this write through, the next one evicts more.
  return memory.used_bytes <= maxmemory_bytes || rounds == store::Store::kEvictionRoundsMax;
}

void Shard::expire_tick(uint64_t now_ms, uint32_t keys_budget) {
  const uint32_t n = static_cast<uint32_t>(held.size());
  uint32_t left = keys_budget;
  // Round-robin from where the last tick stopped, so every partition's TTL keys get their turn.
  for (uint32_t visited = 0; visited < n && left > 0; ++visited) {
    expire_cursor = (expire_cursor + 1) % n;
    store::Store& s = partitions[held[expire_cursor]]->store();
    if (s.keys_with_expire() == 0) continue;
    const uint32_t share = std::min(left, kExpireKeysPerPartitionMax);
    s.active_expire(now_ms, share);
    left -= share;
  }
}

StoreFigures Shard::figures() const {
  StoreFigures f;
  for (uint32_t id : held) {
    const store::Store& s = partitions[id]->store();
    f.keys += s.size();
    f.expires += s.keys_with_expire();
    f.expired_keys += s.stats().expired_keys;
    f.evicted_keys += s.stats().evicted_keys;
    f.keyspace_hits += s.stats().keyspace_hits;
    f.keyspace_misses += s.stats().keyspace_misses;
  }
  f.used_memory_bytes = memory.used_bytes;
  return f;
}

}  // namespace tally::server
