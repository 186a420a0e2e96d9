#include "host/server/server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "host/common/log.h"
#include "host/net/tls.h"
#include "host/server/admin_http.h"
#include "host/server/changes.h"
#include "host/server/notify.h"
#include "host/server/commands/util.h"
#include "host/server/command_table.h"
#include "host/server/memcache_session.h"
#include "host/server/session.h"
#include "host/server/client_session.h"
#include "host/server/cluster_node.h"
#include "host/server/recovery.h"
#include "host/server/shard_log.h"
#include "host/server/snapshots.h"

namespace tally::server {

namespace {

// Answers a refused connection once and then ignores it until it closes.
class RefusedHandler final : public net::ConnHandler {
 public:
  void on_data(net::Conn&, std::string_view) override {}
  void on_close(net::Conn&) override {}
};
RefusedHandler g_refused;

bool is_loopback_bind(const std::string& bind) {
  return bind == "127.0.0.1" || bind == "localhost" || bind == "::1" || bind.rfind("127.", 0) == 0;
}

constexpr const char* kProtectedModeText =
    "-DENIED tallyd is running in protected mode because protected mode is enabled and no password is set "
    "for the default user. In this mode connections are only accepted from the loopback interface. To "
    "accept remote clients, set a password with the requirepass option (or CONFIG SET requirepass), or "
    "disable protected mode with --protected-mode no if this network is trusted.\r\n";

}  // namespace

Server::Server(Config cfg, Env& env) : cfg_(std::move(cfg)), env_(env), layout_(cfg_.partitions) {}

Server::~Server() { stop(); }

Config Server::config_snapshot() const {
  std::lock_guard lock(cfg_mu_);
  return cfg_;
}

std::string Server::requirepass() const {
  std::lock_guard lock(cfg_mu_);
  return cfg_.requirepass;
}

void Server::update_config(const std::function<void(Config&)>& fn) {
  std::lock_guard lock(cfg_mu_);
  fn(cfg_);
}

const char* Server::io_backend() const {
  return shards_.empty() ? "none" : shards_[0]->reactor->backend_name();
}

uint64_t Server::published(std::atomic<uint64_t> ShardMetrics::*field) const {
  uint64_t total = 0;
  for (const auto& s : shards_) total += (s->metrics.get()->*field).load(std::memory_order_relaxed);
  return total;
}

void Server::reset_stats() {
  for (auto& s : shards_) {
    for (auto& c : s->metrics->per_command) c.reset();
    s->metrics->commands_processed = 0;
    s->metrics->connections_received = 0;
    s->metrics->protocol_errors = 0;
    s->metrics->remote_batches = 0;
  }
}

void Server::apply_memory_config() {
  const Config c = config_snapshot();
  const uint64_t per_shard = c.maxmemory_bytes == 0 ? 0 : std::max<uint64_t>(1, c.maxmemory_bytes / shard_count());
  for (auto& s : shards_) {
    Shard* sh = s.get();
    sh->reactor->post([sh, per_shard, policy = c.maxmemory_policy] { sh->configure_memory(per_shard, policy); });
  }
}

Status Server::start() {
  TALLY_ASSERT(shards_.empty());
  TALLY_ASSERT(cfg_.threads > 0);
  TALLY_ASSERT(cfg_.partitions >= cfg_.threads);
  start_time_ms_ = env_.wall_ms();
  net::ReactorOptions ro;
  ro.backend = cfg_.io == "uring" ? net::Backend::kUring : cfg_.io == "epoll" ? net::Backend::kEpoll : net::Backend::kAuto;
  ro.max_connections = cfg_.maxclients + 32;
  ro.max_output_bytes = cfg_.client_output_limit_bytes;
  const size_t commands = CommandTable::instance().size();
  slot_to_partition_.resize(kernels::kSlotCount);
  for (uint32_t slot = 0; slot < kernels::kSlotCount; ++slot) slot_to_partition_[slot] = layout_.of_slot(slot);
  // Each shard holds a contiguous block of partitions, so a SCAN step walks several before it hops.
  const uint32_t partitions = layout_.count();
  owner_ = std::make_unique<std::atomic<uint32_t>[]>(partitions);
  paused_ = std::make_unique<std::atomic<bool>[]>(partitions);
  for (uint32_t p = 0; p < partitions; ++p) {
    owner_[p].store(static_cast<uint32_t>(uint64_t{p} * cfg_.threads / partitions), std::memory_order_relaxed);
    paused_[p].store(false, std::memory_order_relaxed);
  }
  for (size_t i = 0; i < cmd::kEncodingParams; ++i) cmd::encoding_threshold(i).store(cfg_.encodings[i]);
  notify_flags().store(cfg_.notify_keyspace_events, std::memory_order_relaxed);
  if (cfg_.tls_port != 0) {
    net::TlsOptions to;
    to.cert_file = cfg_.tls_cert_file;
    to.key_file = cfg_.tls_key_file;
    to.ca_cert_file = cfg_.tls_ca_cert_file;
    to.auth_clients = cfg_.tls_auth_clients;
    auto ctx = net::TlsContext::create(to);
    if (!ctx.is_ok()) return ctx.status();
    tls_ = std::move(ctx).value();
  }
  acl_.set_default_password(cfg_.requirepass);
  acl_.set_login_limit(cfg_.auth_fail_burst, cfg_.auth_fail_per_sec);
  acl_.set_log_max(cfg_.acllog_max_len);
  if (!cfg_.aclfile.empty()) {
    Status st = acl_.load_file(env_, cfg_.aclfile);
    if (!st.is_ok()) return Status::invalid("aclfile: " + st.message());
  }
  change_keys_ = change_stream_keys(layout_);
  change_stream_ = cfg_.change_stream;
  ChangeStreamOptions changes;
  changes.enabled = cfg_.change_stream;
  changes.max_entries = cfg_.change_stream_max_entries;
  changes.max_age_ms = cfg_.change_stream_max_age_ms;
  changes.max_bytes = cfg_.change_stream_max_bytes;
  offload::EngineOptions eo;
  auto backends = offload::parse_backend_list(cfg_.offload_backends);
  if (!backends.is_ok()) return backends.status();
  eo.backends = std::move(backends).value();
  eo.calibration_path = cfg_.offload_calibration;
  eo.slot_to_partition = slot_to_partition_.data();
  eo.batch.items_max = cfg_.offload_batch_items;
  eo.batch.blob_bytes_max = cfg_.offload_batch_bytes;
  for (uint32_t i = 0; i < cfg_.threads; ++i) {
    auto sh = std::make_unique<Shard>();
    sh->id = i;
    sh->server = this;
    sh->clock = &env_.clock();
    auto r = net::Reactor::create(ro);
    if (!r) return r.status();
    sh->reactor = std::move(r.value());
    sh->metrics = std::make_unique<ShardMetrics>(commands);
    sh->rng = Rng(env_.random_seed());
    sh->gather = std::make_unique<store::Store>();
    sh->partitions.resize(partitions);
    for (uint32_t p = 0; p < partitions; ++p) {
      if (shard_of_partition(p) != i) continue;
      store::StoreOptions so;
      so.seed = env_.random_seed();
      auto part = std::make_unique<Partition>(p, layout_.slots(p), so, &sh->memory);
      part->set_change_stream(changes, change_keys_[p]);
      sh->adopt(std::move(part));
    }
    auto engine = offload::Engine::open(eo, env_.clock());
    if (!engine.is_ok()) return Status(engine.status().code(), "offload: " + engine.status().message());
    sh->offload = std::move(engine).value();
    shards_.push_back(std::move(sh));
  }
  const offload::Engine& e0 = *shards_[0]->offload;
  TALLY_LOG_INFO("offload: backends {} (cost model: {})", e0.backends(),
                 e0.calibrated() ? cfg_.offload_calibration : std::string("built-in defaults"));
  // Said once, not per shard: a named backend this machine lacks is a normal case, not an error.
  if (!e0.absent().empty()) TALLY_LOG_WARN("offload: not in use: {}", e0.absent());
  apply_memory_config();
  durability_ = cfg_.durability.empty() ? "none" : cfg_.durability;
  if (durable()) TALLY_RETURN_IF_ERROR(start_durability());
  TALLY_LOG_INFO("tallyd {}: {} shard(s), {} partitions, reactor backend {}", "0.1.0", shards_.size(),
                 layout_.count(), io_backend());
  TALLY_RETURN_IF_ERROR(listen_all());
  if (node_id_.empty()) node_id_ = cluster::make_node_id(env_.random_seed());
  {
    // A one-node cluster: this node serves every slot. Clients are told the bind address, or, when it
    // is a wildcard and nothing is announced, an empty host (the address they already used).
    cluster::NodeRecord self;
    self.id = node_id_;
    self.host = !cfg_.cluster_announce_ip.empty() ? cfg_.cluster_announce_ip
                : (cfg_.bind == "0.0.0.0" || cfg_.bind == "::" || cfg_.bind == "*") ? std::string()
                                                                                    : cfg_.bind;
    self.port = port_;
    self.bus_port = port_ <= 55535 ? static_cast<uint16_t>(port_ + 10000) : 0;
    auto view = std::make_unique<ClusterView>(ClusterView{cluster::SlotMap::single_node(std::move(self)), 0});
    TALLY_RETURN_IF_ERROR(view->map.validate());
    view_.store(view.get(), std::memory_order_release);
    views_.push_back(std::move(view));
  }
  // The admin endpoint listens before any shard serves, so a client that got an answer can scrape.
  if (cfg_.admin_port != 0) {
    admin_ = std::make_unique<AdminHttp>(*this);
    auto port = admin_->start(cfg_.admin_bind, static_cast<uint16_t>(cfg_.admin_port));
    if (!port) return port.status();
    admin_port_ = *port;
  }
  for (auto& s : shards_) {
    Shard* sh = s.get();
    sh->reactor->add_timer(std::max<uint64_t>(1, 1000 / cfg_.hz), [this, sh] { on_tick(*sh); });
    sh->thread = std::thread([sh] {
      std::string name = "tally-shard" + std::to_string(sh->id);
      pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
      sh->reactor->run();
    });
  }
  TALLY_LOG_INFO("Ready to accept connections: resp {}:{} memcached {} admin {}", cfg_.bind, port_,
                 memcached_port_, admin_port_);
  return Status::ok();
}

std::string moved_error(uint32_t slot, std::string_view host, uint16_t port) {
  return "MOVED " + std::to_string(slot) + " " + std::string(host) + ":" + std::to_string(port);
}

std::string moved_error(const ClusterView& view, uint32_t slot) {
  const uint32_t n = view.map.owner(slot);
  if (n == cluster::SlotMap::kUnassigned) return "CLUSTERDOWN Hash slot not served";
  const cluster::NodeRecord& node = view.map.nodes()[n];
  return moved_error(slot, node.host, node.port);
}

offload::CounterValues Server::offload_totals(kernels::Op op, drivers::Backend backend) const {
  offload::CounterValues t;
  for (const auto& sh : shards_) t += sh->offload->scheduler().counters(op, backend);
  return t;
}

void Server::partitions_of_keys(Shard& home, std::span<const std::string_view> keys, std::vector<uint32_t>& out) {
  if (layout_.count() == 1) {
    out.assign(keys.size(), 0);
    return;
  }
  if (keys.size() >= cfg_.offload_partition_keys_min) {
    thread_local std::vector<uint16_t> slots;
    if (home.offload->partition(keys, slots, out).is_ok()) return;
    // Only a key over 64 KiB is refused; hash inline then, like a short command.
  }
  out.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) out[i] = layout_.of_key(keys[i]);
}

Status Server::move_partition(uint32_t p, uint32_t to, std::function<void()> done) {
  if (p >= layout_.count()) return Status::invalid("no partition " + std::to_string(p));
  if (to >= shard_count()) return Status::invalid("no shard " + std::to_string(to));
  // A durable partition's records would be split over two shards' logs, whose order a restart
  // could not tell: moving one needs a snapshot first, which is not built yet.
  if (durable()) return Status::unimplemented("partitions move between shards only without durability");
  bool expected = false;
  if (!move_running_.compare_exchange_strong(expected, true)) return Status::unavailable("another move is running");
  const uint32_t from = shard_of_partition(p);
  if (from == to) {
    move_running_.store(false);
    shard(to).reactor->post(std::move(done));
    return Status::ok();
  }
  // 1. Pause: from here on the engine holds commands for p back. Every shard acknowledges once it
  //    has seen the pause, so whatever it sent for p before is queued at `from` ahead of step 2.
  paused_[p].store(true, std::memory_order_release);
  struct Move {
    std::atomic<uint32_t> acks{0};
    std::function<void()> done;
  };
  auto mv = std::make_shared<Move>();
  mv->done = std::move(done);
  for (uint32_t i = 0; i < shard_count(); ++i) {
    shard(i).reactor->post([this, mv, p, from, to] {
      if (mv->acks.fetch_add(1, std::memory_order_acq_rel) + 1 != shard_count()) return;
      // 2. Release on `from`, 3. adopt on `to`, 4. un-pause and wake the held sessions.
      Shard* src = &shard(from);
      src->reactor->post([this, mv, p, src, to] {
        // Held through a shared_ptr only because posted tasks must be copyable.
        auto part = std::make_shared<std::unique_ptr<Partition>>(src->release(p));
        Shard* dst = &shard(to);
        dst->reactor->post([this, mv, p, dst, part] {
          dst->adopt(std::move(*part));
          owner_[p].store(dst->id, std::memory_order_release);
          paused_[p].store(false, std::memory_order_release);
          move_running_.store(false, std::memory_order_release);
          for (uint32_t i = 0; i < shard_count(); ++i) {
            Shard* s = &shard(i);
            s->reactor->post([s] {
              std::vector<uint64_t> ids;
              ids.swap(s->blocked);
              for (uint64_t id : ids) {
                if (ClientSession* c = ClientSession::lookup(*s, id)) c->resume_processing();
              }
            });
          }
          mv->done();
        });
      });
    });
  }
  return Status::ok();
}

Status Server::listen_all() {
  const bool protect = cfg_.protected_mode && acl_.default_open() && !is_loopback_bind(cfg_.bind);
  for (auto& s : shards_) {
    Shard* sh = s.get();
    auto accept_resp = [this, sh, protect](net::Conn& c) -> net::ConnHandler* {
      if (published(&ShardMetrics::connected) >= cfg_.maxclients) {
        CommandCounters::bump(sh->metrics->connections_rejected);
        c.out().append("-ERR max number of clients reached\r\n");
        c.close_after_flush();
        return &g_refused;
      }
      if (protect && !c.peer_is_loopback() && acl_.default_open()) {
        CommandCounters::bump(sh->metrics->connections_rejected);
        c.out().append(kProtectedModeText);
        c.close_after_flush();
        return &g_refused;
      }
      return new Session(*this, *sh, c);
    };
    // Port 0 asks the first shard for a free port; the others then share it.
    auto port = sh->reactor->listen(cfg_.bind, port_ != 0 ? port_ : cfg_.port, accept_resp);
    if (!port) return Status(port.status().code(), "listen on " + cfg_.bind + ":" + std::to_string(cfg_.port) +
                                                       ": " + port.status().message());
    port_ = *port;
    if (tls_ != nullptr) {
      // The TLS listener serves the same sessions; its connections read and write through a filter.
      // Protected mode does not apply when clients must show a certificate.
      const bool protect_tls = protect && cfg_.tls_auth_clients == "no";
      auto accept_tls = [this, accept_resp, protect_tls](net::Conn& c) -> net::ConnHandler* {
        c.set_filter(tls_->new_filter());
        if (protect_tls && !c.peer_is_loopback() && acl_.default_open()) {
          c.close_now();  // nothing readable can be sent before the handshake
          return &g_refused;
        }
        return accept_resp(c);
      };
      auto tport = sh->reactor->listen(cfg_.bind, tls_port_ != 0 ? tls_port_ : cfg_.tls_port, accept_tls);
      if (!tport) {
        return Status(tport.status().code(), "listen on " + cfg_.bind + ":" + std::to_string(cfg_.tls_port) +
                                                 " (tls): " + tport.status().message());
      }
      tls_port_ = *tport;
    }
    if (cfg_.memcached_port != 0) {
      auto accept_mc = [this, sh](net::Conn& c) -> net::ConnHandler* {
        if (published(&ShardMetrics::connected) >= cfg_.maxclients) {
          CommandCounters::bump(sh->metrics->connections_rejected);
          c.out().append("SERVER_ERROR max number of clients reached\r\n");
          c.close_after_flush();
          return &g_refused;
        }
        return new MemcacheSession(*this, *sh, c);
      };
      auto mport = sh->reactor->listen(cfg_.bind, memcached_port_ != 0 ? memcached_port_ : static_cast<uint16_t>(cfg_.memcached_port),
                                       accept_mc);
      if (!mport) {
        return Status(mport.status().code(), "listen on " + cfg_.bind + ":" + std::to_string(cfg_.memcached_port) +
                                                 " (memcached): " + mport.status().message());
      }
      memcached_port_ = *mport;
    }
  }
  return Status::ok();
}

void Server::on_tick(Shard& s) {
  const uint64_t now_ms = env_.wall_ms();
  s.expire_tick(now_ms, cfg_.active_expire_keys_per_tick);
  // A failed log is retried here (the interval mode's syncs have their own timer).
  if (s.log != nullptr && s.log->failed()) s.log->tick(now_ms, UINT64_MAX);
  if (s.log != nullptr) s.log->retry_installs();
  // A log grown by snapshot_log_bytes since the last snapshots gets new ones, so it can be truncated.
  if (s.log != nullptr && cfg_.snapshot_log_bytes != 0 && !s.snapshots->running() &&
      (s.log->bytes_since_snapshot() >= cfg_.snapshot_log_bytes || s.log->snapshot_wanted())) {
    s.snapshots->start([](Status) {});
  }
  if (const uint32_t timeout_s = config_snapshot().timeout_s; timeout_s != 0) {
    // Idle clients go; the close itself happens off this loop over the session list.
    for (Session* x : s.sessions) {
      if (now_ms - x->last_active_ms() > uint64_t{timeout_s} * 1000) {
        Shard* sh = &s;
        uint64_t id = x->conn().id();
        s.reactor->post([sh, id] {
          if (net::Conn* c = sh->reactor->find(id)) c->close_now();
        });
      }
    }
  }
  const StoreFigures f = s.figures();
  ShardMetrics& m = *s.metrics;
  m.keys.store(f.keys, std::memory_order_relaxed);
  m.expires.store(f.expires, std::memory_order_relaxed);
  m.used_memory_bytes.store(f.used_memory_bytes, std::memory_order_relaxed);
  m.expired_keys.store(f.expired_keys, std::memory_order_relaxed);
  m.evicted_keys.store(f.evicted_keys, std::memory_order_relaxed);
  m.keyspace_hits.store(f.keyspace_hits, std::memory_order_relaxed);
  m.keyspace_misses.store(f.keyspace_misses, std::memory_order_relaxed);
}

Status Server::start_durability() {
  const uint64_t t0 = env_.monotonic_ns();
  auto id = check_node_file(env_, cfg_.dir, layout_.count());
  if (!id.is_ok()) return id.status();
  node_id_ = std::move(id).value();
  std::vector<store::Store*> stores(layout_.count(), nullptr);
  for (auto& sh : shards_) {
    for (uint32_t p : sh->held) stores[p] = &sh->partitions[p]->store();
  }
  NodeStart ns;
  TALLY_RETURN_IF_ERROR(recover_node(env_, cfg_.dir, stores, ns));
  for (const std::string& note : ns.notes) TALLY_LOG_WARN("recovery: {}", note);
  for (const auto& [dir, records] : ns.log_dirs) {
    if (dir >= shard_count() && records > 0) {
      return Status::invalid("the data directory's log was written by " + std::to_string(dir + 1) +
                             "+ shards; start with --threads " + std::to_string(dir + 1) +
                             " (a log per shard is read back only by the same shard count)");
    }
  }
  const Durability mode = parse_durability(durability_);
  const raft::ConfState conf{{1}, {}};
  if (cfg_.peer_port != 0) {
    cluster_node_ = std::make_unique<ClusterNode>(*this);
    TALLY_RETURN_IF_ERROR(cluster_node_->start());
  }
  const cluster::Membership* members = cluster_node_ ? cluster_node_->membership() : nullptr;
  for (auto& sh : shards_) {
    auto log = ShardLog::open(env_, *sh, wal_dir(cfg_.dir, sh->id), ns.next_seq, mode, cfg_.wal_segment_bytes);
    if (!log.is_ok()) return Status(log.status().code(), "shard " + std::to_string(sh->id) + ": " + log.status().message());
    sh->log = std::move(log).value();
    // The segments already there: deleted once snapshots cover them.
    if (auto it = ns.logs.find(sh->id); it != ns.logs.end()) {
      sh->log->log().adopt(it->second);
      sh->log->note_recovered(it->second.bytes, it->second.segments);
    }
    sh->replication = std::make_unique<ShardReplication>(*sh);
    sh->snapshots = std::make_unique<ShardSnapshots>(env_, *sh, cfg_.dir);
    Shard* shp = sh.get();
    if (cluster_node_ && sh->id == 0) {
      // Shard 0 carries the peer transport: what the groups sent this iteration leaves after the log's batch.
      ClusterNode* cn = cluster_node_.get();
      sh->reactor->set_end_of_iteration([shp, cn] {
        shp->log->end_of_iteration();
        cn->flush();
      });
    } else {
      sh->reactor->set_end_of_iteration([shp] { shp->log->end_of_iteration(); });
    }
    const wal::BadRecord* hidden = nullptr;  // a damaged header in this shard's log: whose record it was is unknown
    if (auto it = ns.logs.find(sh->id); it != ns.logs.end() && it->second.unknown_group) hidden = &*it->second.unknown_group;
    for (uint32_t p : sh->held) {
      Partition& part = *sh->partitions[p];
      PartitionStart& ps = ns.partitions[p];
      if (hidden != nullptr && ps.unavailable.empty()) {
        ps.unavailable = "corrupt log record (" + hidden->what + ", its partition unknown) in " + hidden->file +
                         " at offset " + std::to_string(hidden->offset);
      }
      part.set_request_base(env_.random_seed() | 1);
      if (!ps.unavailable.empty()) {
        TALLY_LOG_ERROR("partition {} (slots {}-{}) is unavailable: {}", p, part.slots().first, part.slots().last,
                        ps.unavailable);
        part.set_unavailable(ps.unavailable);
        continue;
      }
      if (cluster_node_) {
        // A member: the partition's group spans its replicas, once the cluster is formed.
        if (members == nullptr) {
          part.set_unavailable("the cluster is not formed yet (tallyctl cluster create)");
        } else if (members->holds(p)) {
          TALLY_RETURN_IF_ERROR(cluster_node_->create_group(*sh, part, ps));
        } else {
          part.set_unavailable(kNotHeld);
        }
        continue;
      }
      auto storage = group::make_storage(ps, conf);
      if (!storage.is_ok()) {
        return Status(storage.status().code(), "partition " + std::to_string(p) + ": " + storage.status().message());
      }
      group::GroupOptions go;
      go.raft.id = 1;
      go.raft.voters = {1};
      go.raft.applied = ps.snapshot_index;
      go.raft.max_uncommitted_entries = kUncommittedEntriesMax;
      auto g = group::ReplicaGroup::create(p, go, std::move(storage).value(), sh->log->group_log(), *sh->replication,
                                           *sh->replication);
      if (!g.is_ok()) return Status(g.status().code(), "partition " + std::to_string(p) + ": " + g.status().message());
      part.set_group(std::move(g).value());
      // Replays what the log holds beyond the snapshot once the shard runs (its first iterations).
      sh->mark_dirty(p);
    }
    if (mode == Durability::kInterval) {
      sh->reactor->add_timer(cfg_.fsync_interval_ms, [shp, this] { shp->log->tick(env_.wall_ms(), 0); });
    }
  }
  loaded_keys_ = ns.keys_loaded;
  loaded_records_ = ns.records;
  load_ms_ = (env_.monotonic_ns() - t0) / 1000000;
  TALLY_LOG_INFO("durability {}: {} keys from {} snapshots, {} log records ({} bytes) read in {} ms", durability_,
                 ns.keys_loaded, ns.snapshots_loaded, ns.records, ns.bytes, load_ms_);
  return Status::ok();
}

void Server::request_shutdown() { ::kill(::getpid(), SIGTERM); }

void Server::wait_for_shutdown() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  TALLY_LOG_INFO("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
}

void Server::stop() {
  if (stopped_.exchange(true)) return;
  if (admin_) admin_->stop();
  for (auto& s : shards_) s->reactor->stop();
  for (auto& s : shards_) {
    if (s->thread.joinable()) s->thread.join();
  }
  // The peer transport lives on shard 0's reactor: it goes while that reactor is still there.
  cluster_node_.reset();
  TALLY_LOG_INFO("tallyd stopped");
}

}  // namespace tally::server
