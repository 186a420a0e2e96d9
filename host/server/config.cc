#include "host/server/config.h"
#include "host/cluster/membership.h"
#include "host/server/notify.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>
#include <functional>
#include <map>
#include <thread>
#include <toml.hpp>

#include "host/offload/engine.h"

namespace tally::server {

Result<uint64_t> parse_memory(std::string_view text) {
  std::string t;
  for (char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  uint64_t number = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), number);
  if (ec != std::errc() || p == t.data()) return Status::invalid("not a memory size: '" + std::string(text) + "'");
  std::string_view unit(p, static_cast<size_t>(t.data() + t.size() - p));
  static const std::map<std::string_view, uint64_t> kUnits = {
      {"", 1},          {"b", 1},          {"k", 1000},          {"kb", 1024},
      {"m", 1000000},   {"mb", 1ull << 20}, {"g", 1000000000ull}, {"gb", 1ull << 30}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return Status::invalid("unknown memory unit in '" + std::string(text) + "'");
  if (number > UINT64_MAX / it->second) return Status::invalid("memory size overflows: '" + std::string(text) + "'");
  return number * it->second;
}

namespace {

// One setter per configuration key; the same table serves the TOML file and the command line.
using Setter = std::function<Status(Config&, std::string_view)>;

Status parse_u64(std::string_view v, uint64_t max, uint64_t& out, std::string_view key) {
  uint64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x > max) {
    return Status::invalid("invalid value '" + std::string(v) + "' for '" + std::string(key) + "'");
  }
  out = x;
  return Status::ok();
}

template <typename T>
Setter number_setter(T Config::*field, uint64_t max, const char* key) {
  return [field, max, key](Config& c, std::string_view v) -> Status {
    uint64_t x = 0;
    TALLY_RETURN_IF_ERROR(parse_u64(v, max, x, key));
    c.*field = static_cast<T>(x);
    return Status::ok();
  };
}

Setter memory_setter(uint64_t Config::*field) {
  return [field](Config& c, std::string_view v) -> Status {
    auto r = parse_memory(v);
    if (!r) return r.status();
    c.*field = *r;
    return Status::ok();
  };
}

Setter string_setter(std::string Config::*field) {
  return [field](Config& c, std::string_view v) -> Status {
    c.*field = std::string(v);
    return Status::ok();
  };
}

Status parse_bool(std::string_view v, bool& out, std::string_view key) {
  if (v == "yes" || v == "true" || v == "1") {
    out = true;
  } else if (v == "no" || v == "false" || v == "0") {
    out = false;
  } else {
    return Status::invalid("invalid boolean '" + std::string(v) + "' for '" + std::string(key) + "'");
  }
  return Status::ok();
}

const std::map<std::string, Setter, std::less<>>& setters() {
  static const std::map<std::string, Setter, std::less<>> kSetters = {
      {"bind", string_setter(&Config::bind)},
      {"port", number_setter(&Config::port, 65535, "port")},
      {"memcached_port", number_setter(&Config::memcached_port, 65535, "memcached_port")},
      {"admin_port", number_setter(&Config::admin_port, 65535, "admin_port")},
      {"admin_bind", string_setter(&Config::admin_bind)},
      {"threads", number_setter(&Config::threads, 256, "threads")},
      {"partitions", number_setter(&Config::partitions, 16384, "partitions")},
      {"io", string_setter(&Config::io)},
      {"maxmemory", memory_setter(&Config::maxmemory_bytes)},
      {"maxmemory_policy",
       [](Config& c, std::string_view v) -> Status {
         auto p = store::parse_policy(v);
         if (!p) return p.status();
         c.maxmemory_policy = *p;
         return Status::ok();
       }},
      {"requirepass", string_setter(&Config::requirepass)},
      {"aclfile", string_setter(&Config::aclfile)},
      {"zone", string_setter(&Config::zone)},
      {"rack", string_setter(&Config::rack)},
      {"tls_port", number_setter(&Config::tls_port, 65535, "tls_port")},
      {"tls_cert_file", string_setter(&Config::tls_cert_file)},
      {"tls_key_file", string_setter(&Config::tls_key_file)},
      {"tls_ca_cert_file", string_setter(&Config::tls_ca_cert_file)},
      {"tls_auth_clients", string_setter(&Config::tls_auth_clients)},
      {"tls_cluster", [](Config& c, std::string_view v) { return parse_bool(v, c.tls_cluster, "tls_cluster"); }},
      {"acllog_max_len", number_setter(&Config::acllog_max_len, 1u << 20, "acllog_max_len")},
      {"auth_fail_burst", number_setter(&Config::auth_fail_burst, 1u << 20, "auth_fail_burst")},
      {"auth_fail_per_sec", number_setter(&Config::auth_fail_per_sec, 1u << 20, "auth_fail_per_sec")},
      {"protected_mode",
       [](Config& c, std::string_view v) { return parse_bool(v, c.protected_mode, "protected_mode"); }},
      {"maxclients", number_setter(&Config::maxclients, 1000000, "maxclients")},
      {"client_output_limit", memory_setter(&Config::client_output_limit_bytes)},
      {"proto_max_bulk_len", memory_setter(&Config::proto_max_bulk_len)},
      {"client_query_buffer_limit", memory_setter(&Config::client_query_buffer_limit_bytes)},
      {"pipeline_inflight_max", number_setter(&Config::pipeline_inflight_max, 1u << 20, "pipeline_inflight_max")},
      {"timeout", number_setter(&Config::timeout_s, 1u << 30, "timeout")},
      {"hz", number_setter(&Config::hz, 500, "hz")},
      {"active_expire_keys_per_tick",
       number_setter(&Config::active_expire_keys_per_tick, 1u << 20, "active_expire_keys_per_tick")},
      {"memcached_item_max", memory_setter(&Config::memcached_item_max_bytes)},
      {"notify_keyspace_events",
       [](Config& c, std::string_view v) -> Status {
         if (!parse_notify_flags(v, c.notify_keyspace_events)) {
           return Status::invalid("invalid notify_keyspace_events '" + std::string(v) + "' (letters of Ag$lshzxeKEtmdn)");
         }
         return Status::ok();
       }},
      {"change_stream", [](Config& c, std::string_view v) { return parse_bool(v, c.change_stream, "change_stream"); }},
      {"change_stream_max_entries",
       number_setter(&Config::change_stream_max_entries, uint64_t{1} << 32, "change_stream_max_entries")},
      {"change_stream_max_bytes", memory_setter(&Config::change_stream_max_bytes)},
      {"change_stream_max_age_ms",
       number_setter(&Config::change_stream_max_age_ms, uint64_t{1} << 42, "change_stream_max_age_ms")},
      {"offload_backends", string_setter(&Config::offload_backends)},
      {"offload_calibration", string_setter(&Config::offload_calibration)},
      {"offload_partition_keys_min",
       number_setter(&Config::offload_partition_keys_min, 1u << 20, "offload_partition_keys_min")},
      {"offload_batch_items", number_setter(&Config::offload_batch_items, 1u << 20, "offload_batch_items")},
      {"offload_batch_bytes", memory_setter(&Config::offload_batch_bytes)},
      {"durability", string_setter(&Config::durability)},
      {"fsync_interval_ms", number_setter(&Config::fsync_interval_ms, 3600000, "fsync_interval_ms")},
      {"dir", string_setter(&Config::dir)},
      {"wal_segment_bytes", memory_setter(&Config::wal_segment_bytes)},
      {"snapshot_log_bytes", memory_setter(&Config::snapshot_log_bytes)},
      {"loglevel", string_setter(&Config::loglevel)},
      {"cluster_enabled",
       [](Config& c, std::string_view v) { return parse_bool(v, c.cluster_enabled, "cluster_enabled"); }},
      {"cluster_announce_ip", string_setter(&Config::cluster_announce_ip)},
      {"peer_port", number_setter(&Config::peer_port, 65535, "peer_port")},
      {"cluster_secret_file", string_setter(&Config::cluster_secret_file)},
      {"cluster_tick_ms", number_setter(&Config::cluster_tick_ms, 10000, "cluster_tick_ms")},
      {"cluster_election_ticks", number_setter(&Config::cluster_election_ticks, 1000, "cluster_election_ticks")},
      {"cluster_log_entries_kept",
       number_setter(&Config::cluster_log_entries_kept, 1u << 24, "cluster_log_entries_kept")},
      {"cluster_parallel_append",
       [](Config& c, std::string_view v) { return parse_bool(v, c.cluster_parallel_append, "cluster_parallel_append"); }},
      {"cluster_forward_memcache",
       [](Config& c, std::string_view v) { return parse_bool(v, c.cluster_forward_memcache, "cluster_forward_memcache"); }},
      {"cluster_forward_resp",
       [](Config& c, std::string_view v) { return parse_bool(v, c.cluster_forward_resp, "cluster_forward_resp"); }},
      {"cluster_forward_timeout_ms",
       number_setter(&Config::cluster_forward_timeout_ms, 600000, "cluster_forward_timeout_ms")},
  };
  return kSetters;
}

std::string toml_scalar_text(const toml::value& v) {
  if (v.is_string()) return v.as_string().str;
  if (v.is_integer()) return std::to_string(v.as_integer());
  if (v.is_boolean()) return v.as_boolean() ? "true" : "false";
  return {};
}

}  // namespace

Status load_config_file(const std::string& path, Config& cfg) {
  toml::value data;
  try {
    data = toml::parse(path);
  } catch (const std::exception& e) {
    return Status::invalid("cannot read config file '" + path + "': " + e.what());
  }
  if (!data.is_table()) return Status::invalid("config file '" + path + "' is not a TOML table");
  for (const auto& [key, value] : data.as_table()) {
    auto it = setters().find(key);
    if (it == setters().end()) return Status::invalid("unknown config key '" + key + "' in " + path);
    if (value.is_integer() && value.as_integer() < 0) {
      return Status::invalid("config key '" + key + "' must not be negative");
    }
    std::string text = toml_scalar_text(value);
    if (text.empty() && !value.is_string()) {
      return Status::invalid("config key '" + key + "' must be a string, integer or boolean");
    }
    TALLY_RETURN_IF_ERROR(it->second(cfg, text));
  }
  cfg.config_file = path;
  return Status::ok();
}

std::string usage_text() {
  return "usage: tallyd [--config FILE] [--bind ADDR] [--port N] [--memcached-port N (port+4832; 0 disables)]\n"
         "              [--admin-port N (port+2742; 0 disables)] [--threads N] [--io uring|epoll|auto]\n"
         "              [--maxmemory BYTES] [--maxmemory-policy POLICY] [--requirepass PASS]\n"
         "              [--aclfile FILE] [--auth-fail-burst N] [--auth-fail-per-sec N]\n"
         "              [--tls-port N --tls-cert-file F --tls-key-file F [--tls-ca-cert-file F]\n"
         "               [--tls-auth-clients yes|no|optional]] [--tls-cluster yes|no]\n"
         "              [--zone NAME] [--rack NAME (failure domains for replica placement)]\n"
         "              [--protected-mode yes|no] [--maxclients N] [--loglevel LEVEL] [--hz N]\n"
         "              [--offload-backends cpu,cuda,fpga_sim|auto] [--offload-calibration FILE]\n"
         "              [--dir PATH] [--durability none|fsync|interval] [--fsync-interval-ms N]\n"
         "              [--cluster-enabled yes|no] [--cluster-announce-ip ADDR]\n"
         "              [--change-stream yes|no] [--change-stream-max-entries N] [--change-stream-max-age-ms N]\n"
         "              [--change-stream-max-bytes BYTES]\n"
         "              [--peer-port N --cluster-secret-file FILE (a cluster member)]\n"
         "Every key of the config file can be given as --key-with-dashes VALUE.\n";
}

Status parse_command_line(const std::vector<std::string>& args, Config& cfg) {
  // The file comes first so flags override it, wherever --config stands.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h") return Status::not_found(usage_text());
    if (args[i] == "--config" || args[i].rfind("--config=", 0) == 0) {
      std::string path;
      if (args[i] == "--config") {
        if (i + 1 >= args.size()) return Status::invalid("--config needs a file name");
        path = args[i + 1];
      } else {
        path = args[i].substr(9);
      }
      TALLY_RETURN_IF_ERROR(load_config_file(path, cfg));
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) return Status::invalid("unexpected argument '" + a + "'\n" + usage_text());
    std::string name = a.substr(2);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    if (name == "config") {
      if (!has_value) ++i;
      continue;
    }
    std::replace(name.begin(), name.end(), '-', '_');
    auto it = setters().find(name);
    if (it == setters().end()) return Status::invalid("unknown option '" + a + "'\n" + usage_text());
    if (!has_value) {
      if (i + 1 >= args.size()) return Status::invalid("option '" + a + "' needs a value");
      value = args[++i];
    }
    TALLY_RETURN_IF_ERROR(it->second(cfg, value));
  }
  return Status::ok();
}

Status validate(Config& cfg) {
  if (cfg.io != "auto" && cfg.io != "uring" && cfg.io != "epoll") {
    return Status::invalid("io must be auto, uring or epoll, not '" + cfg.io + "'");
  }
  if (cfg.threads == 0) cfg.threads = std::max(1u, std::thread::hardware_concurrency());
  if (cfg.partitions == 0 || (cfg.partitions & (cfg.partitions - 1)) != 0) {
    return Status::invalid("partitions must be a power of two between 1 and 16384");
  }
  if (cfg.partitions < cfg.threads) {
    return Status::invalid("partitions (" + std::to_string(cfg.partitions) + ") must be at least threads (" +
                           std::to_string(cfg.threads) + ")");
  }
  if (cfg.hz == 0) return Status::invalid("hz must be at least 1");
  if (cfg.maxclients == 0) return Status::invalid("maxclients must be at least 1");
  if (cfg.proto_max_bulk_len < 1024) return Status::invalid("proto_max_bulk_len must be at least 1kb");
  // The store holds values up to 512 MB (as Redis does), and snapshots record nothing larger.
  if (cfg.proto_max_bulk_len > (uint64_t{512} << 20)) return Status::invalid("proto_max_bulk_len must be at most 512mb");
  auto follow = [&cfg](int32_t& field, int32_t offset) {
    if (field >= 0) return;
    const int32_t p = cfg.port == 0 ? 0 : static_cast<int32_t>(cfg.port) + offset;
    field = p > 65535 ? 0 : p;
  };
  follow(cfg.memcached_port, kMemcachedPortOffset);
  follow(cfg.admin_port, kAdminPortOffset);
  if (cfg.memcached_port != 0 && cfg.memcached_port == cfg.port) {
    return Status::invalid("port and memcached_port must differ");
  }
  if (cfg.admin_port != 0 && (cfg.admin_port == cfg.port || cfg.admin_port == cfg.memcached_port)) {
    return Status::invalid("admin_port must differ from port and memcached_port");
  }
  if (cfg.tls_port != 0) {
    if (cfg.tls_port == cfg.port || static_cast<int32_t>(cfg.tls_port) == cfg.memcached_port ||
        static_cast<int32_t>(cfg.tls_port) == cfg.admin_port) {
      return Status::invalid("tls_port must differ from port, memcached_port and admin_port");
    }
    if (cfg.tls_cert_file.empty() || cfg.tls_key_file.empty()) {
      return Status::invalid("tls_port needs tls_cert_file and tls_key_file");
    }
    if (cfg.tls_auth_clients != "yes" && cfg.tls_auth_clients != "no" && cfg.tls_auth_clients != "optional") {
      return Status::invalid("tls_auth_clients must be yes, no or optional, not '" + cfg.tls_auth_clients + "'");
    }
    if (cfg.tls_auth_clients != "no" && cfg.tls_ca_cert_file.empty()) {
      return Status::invalid("tls_auth_clients " + cfg.tls_auth_clients + " needs tls_ca_cert_file");
    }
  }
  for (const std::string* label : {&cfg.zone, &cfg.rack}) {
    if (!label->empty() && !cluster::valid_label(*label)) {
      return Status::invalid("zone and rack are 1 to 64 letters, digits, '.', '_' or '-', not '" + *label + "'");
    }
  }
  if (cfg.tls_cluster && (cfg.tls_cert_file.empty() || cfg.tls_key_file.empty() || cfg.tls_ca_cert_file.empty())) {
    return Status::invalid("tls_cluster needs tls_cert_file, tls_key_file and tls_ca_cert_file");
  }
  if (auto backends = offload::parse_backend_list(cfg.offload_backends); !backends.is_ok()) return backends.status();
  if (cfg.offload_partition_keys_min == 0) return Status::invalid("offload_partition_keys_min must be at least 1");
  if (cfg.offload_batch_items == 0) return Status::invalid("offload_batch_items must be at least 1");
  if (cfg.offload_batch_bytes < offload::kEngineBatchBytesMin || cfg.offload_batch_bytes > offload::kBatcherBlobBytesMax) {
    return Status::invalid("offload_batch_bytes must be between 64kb and 256mb");
  }
  if (cfg.durability.empty()) cfg.durability = cfg.dir.empty() ? "none" : "fsync";
  if (cfg.durability != "none" && cfg.durability != "fsync" && cfg.durability != "interval") {
    return Status::invalid("durability must be none, fsync or interval, not '" + cfg.durability + "'");
  }
  if (cfg.durability != "none" && cfg.dir.empty()) {
    return Status::invalid("durability " + cfg.durability + " needs a data directory (--dir PATH)");
  }
  if (cfg.fsync_interval_ms == 0) return Status::invalid("fsync_interval_ms must be at least 1");
  if (cfg.wal_segment_bytes < (uint64_t{64} << 10) || cfg.wal_segment_bytes > (uint64_t{4} << 30)) {
    return Status::invalid("wal_segment_bytes must be between 64kb and 4gb");
  }
  if (cfg.peer_port != 0) {
    if (!cfg.cluster_enabled) return Status::invalid("peer_port needs cluster_enabled");
    if (cfg.dir.empty()) return Status::invalid("a cluster member (peer_port) needs a data directory (--dir PATH)");
    if (cfg.cluster_secret_file.empty()) return Status::invalid("a cluster member (peer_port) needs cluster_secret_file");
    if (cfg.maxmemory_policy != store::EvictionPolicy::kNoEviction) {
      // An eviction removes a key on the leader outside the log; replicas would apply the entries
      // in flight to a different store. Until evictions are logged before they take effect, members
      // refuse writes at the limit instead (OOM).
      return Status::invalid("a cluster member (peer_port) needs maxmemory_policy noeviction for now");
    }
    if (cfg.peer_port == cfg.port || cfg.peer_port == cfg.memcached_port || cfg.peer_port == cfg.admin_port) {
      return Status::invalid("peer_port must differ from the other ports");
    }
  }
  if (cfg.cluster_tick_ms == 0) return Status::invalid("cluster_tick_ms must be at least 1");
  if (cfg.cluster_election_ticks < 2) return Status::invalid("cluster_election_ticks must be at least 2");
  if (cfg.cluster_log_entries_kept < 16) return Status::invalid("cluster_log_entries_kept must be at least 16");
  if (cfg.cluster_forward_timeout_ms < 10) return Status::invalid("cluster_forward_timeout_ms must be at least 10");
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"};
  if (std::none_of(std::begin(kLevels), std::end(kLevels), [&](const char* l) { return cfg.loglevel == l; })) {
    return Status::invalid("unknown loglevel '" + cfg.loglevel + "'");
  }
  return Status::ok();
}

}  // namespace tally::server
