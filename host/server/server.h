// tallyd's server: one shard per core, each a reactor thread that owns a Store and the slots mapped to it.
// Commands for another shard's keys travel as messages to that shard's reactor, never through locks.
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

#include "host/common/status.h"
#include "host/net/reactor.h"
#include "host/offload/engine.h"
#include "host/server/config.h"
#include "host/server/metrics.h"
#include "host/store/store.h"
#include "kernels/cpu/slot.h"

namespace tally::server {

class Server;
class Session;

struct Shard {
  uint32_t id = 0;
  Server* server = nullptr;
  std::unique_ptr<net::Reactor> reactor;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<ShardMetrics> metrics;
  // Batches of this shard's own work (key partitioning, the digest) go through its engine, on this
  // shard's thread only.
  std::unique_ptr<offload::Engine> offload;
  std::thread thread;
  // Sessions living on this shard's reactor, for CLIENT LIST/KILL (touched only on this thread).
  std::vector<Session*> sessions;
};

class Server {
 public:
  explicit Server(Config cfg);
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
  void update_config(const std::function<void(Config&)>& fn);
  // CONFIG RESETSTAT: zeroes every shard's counters.
  void reset_stats();
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }
  Shard& shard(uint32_t i) { return *shards_[i]; }
  uint32_t shard_of_slot(uint32_t slot) const { return slot % shard_count(); }
  uint32_t shard_of_key(std::string_view key) const { return shard_of_slot(kernels::key_slot(key)); }
  // The shard of each key, into out (resized). From offload_partition_keys_min keys on, the keys go
  // to `home`'s offload engine as partition batches; fewer are hashed inline. Runs on home's thread.
  void shards_of_keys(Shard& home, std::span<const std::string_view> keys, std::vector<uint32_t>& out);
  uint16_t port() const { return port_; }
  uint16_t memcached_port() const { return memcached_port_; }
  uint16_t admin_port() const { return admin_port_; }
  const char* io_backend() const;
  uint64_t start_time_ms() const { return start_time_ms_; }
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

  Config cfg_;
  std::vector<uint32_t> slot_to_shard_;  // kSlotCount entries, the offload engines' slot map
  mutable std::mutex cfg_mu_;  // guards the fields CONFIG SET changes
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
