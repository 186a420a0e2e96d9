// The few things the server asks of a shard's Store, in one place: figures for INFO and metrics,
// memory admission before writes, configuration, and the background tick.
#pragma once

#include <cstdint>

#include "host/server/config.h"
#include "host/store/store.h"

namespace tally::server {

struct StoreFigures {
  uint64_t keys = 0;
  uint64_t expires = 0;
  uint64_t used_memory_bytes = 0;
  uint64_t expired_keys = 0;
  uint64_t evicted_keys = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
};

StoreFigures store_figures(const store::Store& s);
// Evicts under the configured policy until there is room; false when a write must be refused (OOM).
bool store_admit_write(store::Store& s, uint64_t now_ms);
void store_configure(store::Store& s, uint64_t maxmemory_bytes, EvictionPolicy policy);
// Active expiry, bounded by `keys_budget` keys examined.
void store_tick(store::Store& s, uint64_t now_ms, uint32_t keys_budget);

}  // namespace tally::server
