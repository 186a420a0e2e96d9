// tallyd's configuration: defaults, the TOML file, then command-line overrides, validated once at start-up.
// Unknown keys are errors naming the key, so a typo never silently falls back to a default.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"
#include "host/store/store.h"

namespace tally::server {

using store::EvictionPolicy;
// "100", "100kb", "64mb", "1gb" (Redis's units: k=1000, kb=1024, ...) -> bytes.
Result<uint64_t> parse_memory(std::string_view text);

inline constexpr int32_t kMemcachedPortOffset = 4832;  // 6379 -> 11211
inline constexpr int32_t kAdminPortOffset = 2742;      // 6379 -> 9121

// Redis's encoding thresholds (hash-max-listpack-entries, ...): client libraries and test tools set
// them; tallyd has one layout per type at every size, so they are kept and reported, and change nothing.
enum class Encoding : uint8_t {
  kHashEntries, kHashValue, kSetIntsetEntries, kSetEntries, kSetValue, kZsetEntries, kZsetValue,
  kListSize, kListCompressDepth, kStreamNodeBytes, kStreamNodeEntries, kCount,
};

struct Config {
  std::array<int64_t, static_cast<size_t>(Encoding::kCount)> encodings = {512, 64, 512, 128, 64, 128, 64, -2, 0, 4096, 100};
  std::string bind = "127.0.0.1";
  uint16_t port = 6379;
  // The memcached and admin (metrics) listeners follow the client port unless set: port + 4832 and
  // port + 2742 (11211 and 9121 for 6379), so instances on one host need only their own --port. -1:
  // follow (validate() resolves it; past 65535, or with port 0, the listener is off); 0: off.
  int32_t memcached_port = -1;
  int32_t admin_port = -1;
  std::string admin_bind = "127.0.0.1";
  uint32_t threads = 0;             // 0: one per core
  // Partitions the 16384 slots are cut into (a power of two). With a data directory it is recorded
  // there at first start, and a later start with another count is refused.
  uint32_t partitions = 256;
  std::string io = "auto";          // auto | uring | epoll
  uint64_t maxmemory_bytes = 0;     // 0: no limit
  EvictionPolicy maxmemory_policy = EvictionPolicy::kNoEviction;
  std::string requirepass;          // empty: no password (the default user's, acl.h)
  std::string aclfile;              // ACL users, loaded at start and by ACL LOAD, written by ACL SAVE
  uint32_t acllog_max_len = 128;
  // Failed logins per client address: a burst, then this many a second (0 burst: no limit).
  uint32_t auth_fail_burst = 20;
  uint32_t auth_fail_per_sec = 2;
  bool protected_mode = true;
  // TLS for clients (docs/tls.md): a second RESP listener on tls_port (0: none) with these PEM files;
  // tls_auth_clients yes (a client certificate signed by tls_ca_cert_file is required), optional or no.
  uint16_t tls_port = 0;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_cert_file;
  std::string tls_auth_clients = "yes";
  // Mutual TLS between cluster members on the peer port, with the same certificate, key and CA.
  bool tls_cluster = false;
  uint32_t maxclients = 10000;
  uint64_t client_output_limit_bytes = 64ull << 20;
  uint64_t proto_max_bulk_len = 512ull << 20;
  uint64_t client_query_buffer_limit_bytes = 1ull << 30;
  uint32_t pipeline_inflight_max = 1024;  // commands queued per connection before reading pauses
  uint32_t timeout_s = 0;           // idle client timeout; 0: never
  uint32_t hz = 10;                 // background ticks per second (active expiry)
  uint32_t active_expire_keys_per_tick = 200;
  uint64_t memcached_item_max_bytes = 1ull << 20;
  // The change stream of committed writes per partition (docs/change-stream.md): off unless asked for;
  // retention per partition by entries and (0: none) by age.
  bool change_stream = false;
  uint32_t notify_keyspace_events = 0;  // notify.h flags; "" (none) unless set
  uint64_t change_stream_max_entries = 10000;
  uint64_t change_stream_max_bytes = 0;
  uint64_t change_stream_max_age_ms = 0;
  // Offload engine (one per shard): backends to offer batches to (cpu is always used; "auto" is every
  // backend built in), the calibration file `tally-bench calibrate` writes (empty: built-in model), and
  // the key count from which a multi-key command's keys are partitioned as one batch, and the bounds of
  // each batch.
  std::string offload_backends = "cpu";
  std::string offload_calibration;
  uint32_t offload_partition_keys_min = 16;
  uint32_t offload_batch_items = 4096;          // items per batch the server builds, at most
  uint64_t offload_batch_bytes = 1ull << 20;    // blob bytes per batch, at most (64kb..256mb)
  // Durability (docs/wal-format.md): none (memory only), fsync (acknowledge after fdatasync) or
  // interval (acknowledge after the write, fdatasync every fsync_interval_ms). A dir alone means fsync.
  std::string durability;           // empty: "fsync" when dir is set, else "none"
  uint32_t fsync_interval_ms = 1000;
  std::string dir;                  // data directory: the log, snapshots, NODE
  uint64_t wal_segment_bytes = 64ull << 20;
  // A background snapshot of every partition starts once a shard's log grew by this much since the
  // last one (0: only SAVE/BGSAVE).
  uint64_t snapshot_log_bytes = 256ull << 20;
  // Cluster mode: RESP clients get Redis Cluster's rules (CROSSSLOT across slots, -MOVED) and
  // commands (CLUSTER SLOTS, SHARDS, NODES…). The host clients are told (empty: the bind address, or
  // the address they used when bind is a wildcard).
  bool cluster_enabled = false;
  std::string cluster_announce_ip;
  // A member of a multi-node cluster (docs/cluster.md): peers reach it on peer_port (0: not a member,
  // a one-node cluster), authenticated with the secret in cluster_secret_file (16+ bytes). Members
  // need cluster_enabled and a dir. Raft ticks every cluster_tick_ms; a follower that hears nothing
  // from its leader for cluster_election_ticks ticks (randomised up to twice that) campaigns.
  uint16_t peer_port = 0;
  std::string cluster_secret_file;
  // This node's failure domains: `tallyctl cluster create` reads them, and placement spreads each
  // partition's replicas over zones, then racks (empty: none).
  std::string zone;
  std::string rack;
  uint32_t cluster_tick_ms = 50;
  uint32_t cluster_election_ticks = 10;
  // Entries each group keeps in memory behind its applied index for replicas that lag; one further
  // behind is sent a snapshot of the partition instead.
  uint32_t cluster_log_entries_kept = 8192;
  // Clients that cannot follow -MOVED are served by forwarding their commands to the partition's
  // leader inside the cluster: memcached clients (on by default) and, when cluster_forward_resp is
  // on, RESP clients too (instead of -MOVED). A forward unanswered after cluster_forward_timeout_ms
  // is answered TRYAGAIN (a write's outcome unknown).
  // A leader sends its appends while its own log write is in flight (true), or after it (false: one
  // disk write after the other, for comparison).
  bool cluster_parallel_append = true;
  bool cluster_forward_memcache = true;
  bool cluster_forward_resp = false;
  uint32_t cluster_forward_timeout_ms = 5000;
  std::string loglevel = "info";
  std::string config_file;          // where this came from, for INFO
};

// Loads `path` over the defaults. Unknown keys and wrong types are errors.
Status load_config_file(const std::string& path, Config& cfg);

// Applies argv (after the program name) over cfg: --config FILE is read first, then the other flags.
// Returns kNotFound with the usage text when --help is given.
Status parse_command_line(const std::vector<std::string>& args, Config& cfg);

std::string usage_text();

// Checks ranges and combinations; called after all sources are applied.
Status validate(Config& cfg);

}  // namespace tally::server
