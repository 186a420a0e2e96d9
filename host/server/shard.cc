#include "host/server/shard.h"

#include <algorithm>

#include "host/server/cluster_node.h"
#include "host/server/notify.h"
#include "host/server/server.h"
#include "host/server/shard_log.h"
#include "host/server/snapshots.h"

namespace tally::server {

StoreFigures& StoreFigures::operator+=(const StoreFigures& o) {
  keys += o.keys;
  expires += o.expires;
  used_memory_bytes += o.used_memory_bytes;
  expired_keys += o.expired_keys;
  evicted_keys += o.evicted_keys;
  keyspace_hits += o.keyspace_hits;
  keyspace_misses += o.keyspace_misses;
  wal_batches += o.wal_batches;
  wal_records += o.wal_records;
  wal_bytes += o.wal_bytes;
  wal_syncs += o.wal_syncs;
  wal_sync_ns_total += o.wal_sync_ns_total;
  wal_sync_ns_max = std::max(wal_sync_ns_max, o.wal_sync_ns_max);
  wal_failures += o.wal_failures;
  wal_failed += o.wal_failed;
  if (!o.wal_last_error.empty()) wal_last_error = o.wal_last_error;
  unavailable_partitions += o.unavailable_partitions;
  last_save_ms = last_save_ms == 0 ? o.last_save_ms : (o.last_save_ms == 0 ? last_save_ms : std::min(last_save_ms, o.last_save_ms));
  snapshots_written += o.snapshots_written;
  bgsave_in_progress += o.bgsave_in_progress;
  last_save_failed += o.last_save_failed;
  log_bytes_since_save += o.log_bytes_since_save;
  return *this;
}

Shard::~Shard() {
  // The reactor first: joining its file thread runs whatever file work is still queued, which may
  // reference the log and the snapshots below.
  reactor.reset();
}

bool Shard::log_failed() const { return log != nullptr && log->failed(); }

const std::string& Shard::log_error_text() const {
  static const std::string kNone;
  return log != nullptr ? log->error_text() : kNone;
}

void Shard::mark_dirty(uint32_t p) {
  if (dirty_mark.size() < partitions.size()) dirty_mark.resize(partitions.size(), false);
  if (dirty_mark[p]) return;
  dirty_mark[p] = true;
  dirty.push_back(p);
}

void Shard::process_dirty_groups() {
  // A group's Ready may complete inline and mark more partitions: walk until the list is stable.
  for (size_t i = 0; i < dirty.size(); ++i) {
    const uint32_t p = dirty[i];
    dirty_mark[p] = false;
    if (Partition* part = partition(p); part != nullptr && part->group() != nullptr) {
      part->propose_batch(*this);
      part->group()->process();
      if (ClusterNode* cn = server->cluster_node()) {
        cn->note_leader(p, part->group()->leader(), part->group()->term());
        if (part->has_waiting_writes() && !part->group()->is_leader()) part->leadership_lost(*this);
      }
    }
  }
  dirty.clear();
}

void Shard::fail_waiting_writes(const std::string& error) {
  for (uint32_t id : held) partitions[id]->fail_waiting(*this, error);
}

void Shard::adopt(std::unique_ptr<Partition> p) {
  TALLY_ASSERT(p != nullptr && p->id() < partitions.size());
  TALLY_ASSERT(partitions[p->id()] == nullptr);
  const uint32_t id = p->id();
  p->store().rebind_shared(&memory);
  p->store().set_policy(policy);
  // Keys the store drops on its own are logged deletions, so a restart (or a replica) agrees.
  Partition* part = p.get();
  p->store().set_expiry_observer([this, part](std::string_view key) {
    part->log_deletion(*this, key);
    notify_event(*this, kNotifyExpired, "expired", key);
  });
  partitions[id] = std::move(p);
  held.insert(std::lower_bound(held.begin(), held.end(), id), id);
}

std::unique_ptr<Partition> Shard::release(uint32_t p) {
  TALLY_ASSERT(p < partitions.size() && partitions[p] != nullptr);
  held.erase(std::lower_bound(held.begin(), held.end(), p));
  blocking.wake_all();  // waiters on its keys register again where it goes
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
    Partition* best_part = nullptr;
    store::Entry* best = nullptr;
    uint64_t best_score = 0;
    for (uint32_t k = 0; k < kEvictionPartitionsSampled; ++k) {
      uint64_t at = rng.uniform(memory.used_bytes);
      Partition* pick = nullptr;
      for (uint32_t id : held) {
        const uint64_t used = partitions[id]->store().used_memory_bytes();
        if (at < used) {
          pick = partitions[id].get();
          break;
        }
        at -= used;
      }
      if (pick == nullptr) continue;
      uint64_t score = 0;
      store::Entry* e = pick->store().peek_victim(now_ms, score);
      if (e != nullptr && (best == nullptr || score > best_score)) {
        best = e;
        best_part = pick;
        best_score = score;
      }
    }
    if (best == nullptr) break;
    // Logged, so a restart (and a replica) drops it too.
    best_part->log_deletion(*this, best->key());
    notify_event(*this, kNotifyEvicted, "evicted", best->key());
    best_part->store().erase(best);
    best_part->store().count_eviction();
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
    Partition& part = *partitions[held[expire_cursor]];
    // A replica that does not lead its group deletes only what its leader logged, so every replica
    // agrees on what expired.
    if (part.group() != nullptr && !part.group()->is_leader()) continue;
    store::Store& s = part.store();
    if (s.keys_with_expire() == 0) continue;
    const uint32_t share = std::min(left, kExpireKeysPerPartitionMax);
    if (part.replicated()) {
      // The leader of a replicated partition logs the deletions; applying them removes the keys.
      s.collect_expired(now_ms, share, [this, &part](std::string_view key) { part.log_deletion(*this, key); });
    } else {
      s.active_expire(now_ms, share);
    }
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
  for (uint32_t id : held) f.unavailable_partitions += partitions[id]->unavailable().empty() ? 0 : 1;
  if (log != nullptr) {
    const wal::LogStats& w = log->log().stats();
    f.wal_batches = w.batches;
    f.wal_records = w.records;
    f.wal_bytes = w.bytes;
    f.wal_syncs = w.syncs;
    f.wal_sync_ns_total = w.sync_ns_total;
    f.wal_sync_ns_max = w.sync_ns_max;
    f.wal_failures = log->failures();
    f.wal_failed = log->failed() ? 1 : 0;
    f.wal_last_error = log->error_text();
    f.log_bytes_since_save = log->bytes_since_snapshot();
  }
  if (snapshots != nullptr) {
    f.last_save_ms = snapshots->last_save_ms();
    f.snapshots_written = snapshots->snapshots_written();
    f.bgsave_in_progress = snapshots->running() ? 1 : 0;
    f.last_save_failed = snapshots->last_status().is_ok() ? 0 : 1;
  }
  return f;
}

}  // namespace tally::server
