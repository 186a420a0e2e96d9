// tallyd's server: one shard per core, each a reactor thread holding a set of partitions (slot ranges
// with their own stores). Commands for another shard's partitions travel as messages to that shard's
// reactor, never through locks. Clocks, files and randomness come from an Env.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"
#include "host/net/reactor.h"
#include "host/offload/engine.h"
#include "host/server/acl.h"
#include "host/server/config.h"
#include "host/server/metrics.h"
#include "host/server/partition.h"
#include "host/server/shard.h"
#include "host/cluster/slot_map.h"
#include "kernels/cpu/slot.h"

namespace tally::net {
class TlsContext;
}

namespace tally::server {

class Session;
class ClusterNode;

// The slot map as this node sees it, and which of its nodes this one is. Replaced whole, never
// changed in place: a view stays valid (and is kept) until the server is destroyed.
struct ClusterView {
  cluster::SlotMap map;
  uint32_t self = cluster::SlotMap::kUnassigned;
};

// "MOVED <slot> <host>:<port>": the slot is served by the node at host:port.
std::string moved_error(uint32_t slot, std::string_view host, uint16_t port);
// The same for a slot another node of the view serves (CLUSTERDOWN when none does).
std::string moved_error(const ClusterView& view, uint32_t slot);

// Proposals a partition's group holds before they are applied; past it writes get BUSY.
inline constexpr uint64_t kUncommittedEntriesMax = 1u << 18;

class Server {
 public:
  // `env` (the real one in tallyd) must outlive the server.
  Server(Config cfg, Env& env);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Creates the shards and listeners; threads start serving at once.
  Status start();
  // Blocks until SIGINT/SIGTERM (or SHUTDOWN, which raises SIGTERM), then stops every shard.
  void wait_for_shutdown();
  // Stops the shards and joins their threads; idempotent.
  void stop();

  // Start-up configuration. Fields that CONFIG SET changes are read through config_snapshot() or
  // requirepass(); the others never change after start().
  const Config& config() const { return cfg_; }
  Config config_snapshot() const;
  std::string requirepass() const;
  // ACL users (acl.h): requirepass is the default user's password; --aclfile loads the rest.
  AclRegistry& acl() { return acl_; }
  void update_config(const std::function<void(Config&)>& fn);
  // CONFIG RESETSTAT: zeroes every shard's counters.
  void reset_stats();
  Env& env() const { return env_; }
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }
  Shard& shard(uint32_t i) { return *shards_[i]; }
  const PartitionLayout& layout() const { return layout_; }
  // The change stream (changes.h): on or off, and each partition's key.
  bool change_stream() const { return change_stream_; }
  const std::vector<std::string>& change_keys() const { return change_keys_; }
  // The shard holding partition p (it changes only when a partition moves).
  uint32_t shard_of_partition(uint32_t p) const { return owner_[p].load(std::memory_order_acquire); }
  uint32_t partition_of_key(std::string_view key) const { return layout_.of_key(key); }
  // The partition of each key, into out (resized). From offload_partition_keys_min keys on, the keys
  // go to `home`'s offload engine as partition batches; fewer are hashed inline. Runs on home's thread.
  void partitions_of_keys(Shard& home, std::span<const std::string_view> keys, std::vector<uint32_t>& out);
  // Hands partition p to shard `to` behind a pause (see docs/server.md); `done` runs on `to`'s thread
  // once it serves there. One move at a time; refused with durability (not built yet).
  Status move_partition(uint32_t p, uint32_t to, std::function<void()> done);
  // While a partition moves, the engine holds back commands for it (and keyspace-wide ones): the
  // session stops and waits on its shard's `blocked` list until the move ends.
  bool partition_paused(uint32_t p) const { return paused_[p].load(std::memory_order_acquire); }
  bool moves_in_progress() const { return move_running_.load(std::memory_order_acquire); }
  uint16_t port() const { return port_; }
  uint16_t memcached_port() const { return memcached_port_; }
  uint16_t admin_port() const { return admin_port_; }
  const char* io_backend() const;
  uint64_t start_time_ms() const { return start_time_ms_; }
  bool durable() const { return durability_ != "none"; }
  // This node's id: kept in the data directory's NODE file, new at each start in memory mode.
  const std::string& node_id() const { return node_id_; }
  // Cluster mode (cluster_enabled): Redis Cluster's rules and commands for RESP clients.
  bool cluster_enabled() const { return cfg_.cluster_enabled; }
  // The current slot map; valid after start(). Today a one-node map serving every slot.
  const ClusterView& cluster_view() const { return *view_.load(std::memory_order_acquire); }
  // A member of a multi-node cluster (peer_port set): its membership, transport and leaders; null on
  // a node that is not one.
  ClusterNode* cluster_node() const { return cluster_node_.get(); }
  // What the last start found in the data directory (INFO persistence).
  uint64_t loaded_keys() const { return loaded_keys_; }
  uint64_t loaded_records() const { return loaded_records_; }
  uint64_t load_ms() const { return load_ms_; }
  uint64_t next_client_id() { return next_client_id_.fetch_add(1, std::memory_order_relaxed); }

  // Runs fn on every shard's thread and hands the results, in shard order, to done on `home`'s thread.
  // `alive` is checked on home's thread before done runs (the requester may have gone away).
  template <typename T>
  void fan_out(uint32_t home, std::function<T(Shard&)> fn, std::function<bool()> alive,
               std::function<void(std::vector<T>&)> done);

  // Asks every shard to apply a new memory limit and policy (CONFIG SET).
  void apply_memory_config();
  // Sum of published per-shard figures (eventually consistent; for metrics).
  uint64_t published(std::atomic<uint64_t> ShardMetrics::*field) const;

  void request_shutdown();

  // The offload counters of one (op, backend) summed over the shards' schedulers (single-writer
  // atomics, so any thread may read them).
  offload::CounterValues offload_totals(kernels::Op op, drivers::Backend backend) const;

 private:
  void on_tick(Shard& s);
  Status listen_all();
  // With a data directory: the NODE file, snapshots and logs read back, each partition given its
  // replica group and each shard its log.
  Status start_durability();

  Config cfg_;
  Env& env_;
  PartitionLayout layout_;
  std::vector<std::string> change_keys_;  // each partition's change stream key
  bool change_stream_ = false;
  std::unique_ptr<std::atomic<uint32_t>[]> owner_;  // shard of each partition
  std::unique_ptr<std::atomic<bool>[]> paused_;     // partitions being moved
  std::atomic<bool> move_running_{false};
  std::string durability_ = "none";
  std::string node_id_;
  std::atomic<const ClusterView*> view_{nullptr};
  std::vector<std::unique_ptr<ClusterView>> views_;  // every view handed out, the current one last
  std::unique_ptr<ClusterNode> cluster_node_;
  uint64_t loaded_keys_ = 0;
  uint64_t loaded_records_ = 0;
  uint64_t load_ms_ = 0;
  std::vector<uint32_t> slot_to_partition_;  // kSlotCount entries, the offload engines' slot map
  mutable std::mutex cfg_mu_;  // guards the fields CONFIG SET changes
  AclRegistry acl_;
  std::shared_ptr<net::TlsContext> tls_;  // set when tls_port is
  uint16_t tls_port_ = 0;
  std::vector<std::unique_ptr<Shard>> shards_;
  uint16_t port_ = 0;
  uint16_t memcached_port_ = 0;
  uint16_t admin_port_ = 0;
  uint64_t start_time_ms_ = 0;
  std::atomic<uint64_t> next_client_id_{1};
  std::atomic<bool> stopped_{false};
  class AdminHttp;
  std::unique_ptr<AdminHttp> admin_;
};

template <typename T>
void Server::fan_out(uint32_t home, std::function<T(Shard&)> fn, std::function<bool()> alive,
                     std::function<void(std::vector<T>&)> done) {
  struct State {
    std::vector<T> results;
    uint32_t remaining;
    std::function<bool()> alive;
    std::function<void(std::vector<T>&)> done;
  };
  auto st = std::make_shared<State>();
  st->results.resize(shard_count());
  st->remaining = shard_count();
  st->alive = std::move(alive);
  st->done = std::move(done);
  auto finish_one = [st](uint32_t i, T value) {
    st->results[i] = std::move(value);
    if (--st->remaining == 0 && st->alive()) st->done(st->results);
  };
  // Captured as a pointer: the tasks outlive this call and must name the shard, not a local.
  Shard* const h = &shard(home);
  for (uint32_t i = 0; i < shard_count(); ++i) {
    if (i == home) continue;
    shard(i).reactor->post([this, i, h, fn, finish_one]() mutable {
      T value = fn(shard(i));
      h->reactor->post([i, finish_one, v = std::move(value)]() mutable { finish_one(i, std::move(v)); });
    });
  }
  // The home shard's part runs last and inline; remaining only reaches zero on home's thread.
  finish_one(home, fn(*h));
}

}  // namespace tally::server
