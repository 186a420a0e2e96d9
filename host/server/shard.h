// A shard: one reactor thread and the partitions it holds. A partition's data is touched only by the
// thread of the shard holding it; work for another shard's partitions is a message to that shard.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host/common/clock.h"
#include "host/common/rng.h"
#include "host/net/reactor.h"
#include "host/offload/engine.h"
#include "host/proto/reply_value.h"
#include "host/server/blocking.h"
#include "host/server/metrics.h"
#include "host/server/pubsub.h"
#include "host/server/partition.h"
#include "host/store/store.h"

namespace tally::server {

class Server;
class Session;
class ShardLog;
class ShardReplication;
class ShardSnapshots;

inline constexpr uint32_t kEvictionPartitionsSampled = 4;   // partitions compared per eviction
inline constexpr uint32_t kExpireKeysPerPartitionMax = 64;  // TTL keys examined per partition per tick

// A shard's figures for INFO: its stores and its log, gathered on its thread.
struct StoreFigures {
  uint64_t keys = 0;
  uint64_t expires = 0;
  uint64_t used_memory_bytes = 0;
  uint64_t expired_keys = 0;
  uint64_t evicted_keys = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  // The write-ahead log (zero without durability).
  uint64_t wal_batches = 0;
  uint64_t wal_records = 0;
  uint64_t wal_bytes = 0;
  uint64_t wal_syncs = 0;
  uint64_t wal_sync_ns_total = 0;
  uint64_t wal_sync_ns_max = 0;
  uint64_t wal_failures = 0;
  uint64_t wal_failed = 0;  // shards whose log is failed now
  std::string wal_last_error;
  uint64_t unavailable_partitions = 0;
  // Snapshots (durable shards only): the oldest last save over the shards, whether one runs.
  uint64_t last_save_ms = 0;
  uint64_t snapshots_written = 0;
  uint64_t bgsave_in_progress = 0;
  uint64_t last_save_failed = 0;
  uint64_t log_bytes_since_save = 0;
  StoreFigures& operator+=(const StoreFigures& o);
};

struct Shard {
  uint32_t id = 0;
  Server* server = nullptr;
  const Clock* clock = nullptr;  // the server's Env's, read on every command
  std::unique_ptr<net::Reactor> reactor;
  std::unique_ptr<ShardMetrics> metrics;
  // Batches of this shard's own work (key partitioning, the digest) go through its engine, on this
  // shard's thread only.
  std::unique_ptr<offload::Engine> offload;
  std::thread thread;
  // Sessions living on this shard's reactor, for CLIENT LIST/KILL (touched only on this thread).
  std::vector<Session*> sessions;

  // Partitions by id: non-null for the ones this shard holds.
  std::vector<std::unique_ptr<Partition>> partitions;
  // The ids of the partitions held, ascending.
  std::vector<uint32_t> held;
  // The held partitions' memory total (the limit applies to it) and LRU clock.
  store::StoreShared memory;
  uint64_t maxmemory_bytes = 0;  // this shard's share of maxmemory; 0 = none
  store::EvictionPolicy policy = store::EvictionPolicy::kNoEviction;
  uint64_t evicted_keys = 0;
  Rng rng{0x5a4d};           // eviction sampling across partitions
  uint32_t expire_cursor = 0;  // where the next active-expiry tick starts among `held`
  proto::Reply scratch;      // the reply value of a command run inline (reused, never shrinks)
  // Connections whose next command waits for a partition move to end.
  std::vector<uint64_t> blocked;
  // Sessions waiting in a blocking command (BLPOP, ...) for keys of this shard's partitions.
  BlockingRegistry blocking;
  // Channels and patterns this shard's sessions subscribe to.
  PubSubRegistry pubsub;

  // Durability (null with durability none): the shard's log and its groups' state machine.
  std::unique_ptr<ShardLog> log;
  std::unique_ptr<ShardReplication> replication;
  std::unique_ptr<ShardSnapshots> snapshots;
  std::vector<uint32_t> dirty;       // partitions proposed to since the end of the last iteration
  std::vector<bool> dirty_mark;      // by partition id
  proto::Reply apply_scratch;        // reply value of an entry being applied (reused)
  // Where a multi-key command over several partitions of this shard runs (memory mode): its keys'
  // copies, then the results copied back (CommandEngine::run_gathered). Emptied after each use.
  std::unique_ptr<store::Store> gather;

  ~Shard();
  bool log_failed() const;
  const std::string& log_error_text() const;
  void mark_dirty(uint32_t p);
  // Hands the Readys of the groups proposed to this iteration to the log (its group commit follows).
  void process_dirty_groups();
  // The log failed: writes waiting for it are answered with `error` (their outcome is unknown).
  void fail_waiting_writes(const std::string& error);

  Partition* partition(uint32_t p) { return p < partitions.size() ? partitions[p].get() : nullptr; }
  void adopt(std::unique_ptr<Partition> p);
  std::unique_ptr<Partition> release(uint32_t p);

  // Evicts across the held partitions under the policy until memory is within this shard's share;
  // false when a write must be refused (noeviction, or nothing left to evict).
  bool admit_write(uint64_t now_ms);
  void configure_memory(uint64_t maxmemory, store::EvictionPolicy p);
  // Active expiry: at most `keys_budget` TTL keys examined, spread over the held partitions.
  void expire_tick(uint64_t now_ms, uint32_t keys_budget);
  StoreFigures figures() const;
};

}  // namespace tally::server
