#include "host/server/store_glue.h"

namespace tally::server {

StoreFigures store_figures(const store::Store& s) {
  StoreFigures f;
  f.keys = s.size();
  f.expires = s.keys_with_expire();
  f.used_memory_bytes = s.used_memory_bytes();
  f.expired_keys = s.stats().expired_keys;
  f.evicted_keys = s.stats().evicted_keys;
  f.keyspace_hits = s.stats().keyspace_hits;
  f.keyspace_misses = s.stats().keyspace_misses;
  return f;
}

bool store_admit_write(store::Store& s, uint64_t now_ms) { return s.evict_for_write(now_ms).is_ok(); }

void store_configure(store::Store& s, uint64_t maxmemory_bytes, EvictionPolicy policy) {
  s.set_maxmemory(maxmemory_bytes);
  s.set_policy(policy);
}

void store_tick(store::Store& s, uint64_t now_ms, uint32_t keys_budget) { s.active_expire(now_ms, keys_budget); }

}  // namespace tally::server
