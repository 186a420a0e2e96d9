#include "host/server/info.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "host/server/cluster_node.h"
#include "host/server/command_table.h"
#include "host/server/server.h"

namespace tally::server {

namespace {

bool wants(const std::vector<std::string>& sections, const char* name, bool in_default) {
  if (sections.empty()) return in_default;
  for (const auto& s : sections) {
    if (s == name || s == "all" || s == "everything") return true;
    if (s == "default" && in_default) return true;
  }
  return false;
}

void line(std::string& out, const char* key, const std::string& value) {
  out.append(key);
  out.push_back(':');
  out.append(value);
  out.append("\r\n");
}

void line(std::string& out, const char* key, uint64_t value) { line(out, key, std::to_string(value)); }

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2fG", static_cast<double>(b) / (1ull << 30));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(b) / (1ull << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%.2fK", static_cast<double>(b) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(b));
  }
  return buf;
}

}  // namespace

std::string render_info(Server& srv, const std::vector<StoreFigures>& per_shard,
                        const std::vector<std::string>& sections) {
  StoreFigures total;
  for (const auto& f : per_shard) total += f;
  const Config cfg = srv.config_snapshot();
  const uint64_t now_ms = srv.env().wall_ms();
  std::string out;
  if (wants(sections, "server", true)) {
    out.append("# Server\r\n");
    line(out, "redis_version", kRedisCompatVersion);
    line(out, "tally_version", kTallyVersion);
    line(out, "redis_mode", "standalone");
    line(out, "os", "Linux");
    line(out, "arch_bits", uint64_t{64});
    line(out, "multiplexing_api", srv.io_backend());
    line(out, "process_id", static_cast<uint64_t>(getpid()));
    line(out, "tcp_port", srv.port());
    line(out, "memcached_port", srv.memcached_port());
    line(out, "shards", srv.shard_count());
    line(out, "partitions", srv.layout().count());
    line(out, "uptime_in_seconds", (now_ms - srv.start_time_ms()) / 1000);
    line(out, "uptime_in_days", (now_ms - srv.start_time_ms()) / 86400000);
    line(out, "hz", cfg.hz);
    line(out, "executable", "tallyd");
    line(out, "config_file", cfg.config_file);
    out.append("\r\n");
  }
  if (wants(sections, "clients", true)) {
    out.append("# Clients\r\n");
    line(out, "connected_clients", srv.published(&ShardMetrics::connected));
    line(out, "maxclients", cfg.maxclients);
    line(out, "blocked_clients", uint64_t{0});
    out.append("\r\n");
  }
  if (wants(sections, "memory", true)) {
    out.append("# Memory\r\n");
    line(out, "used_memory", total.used_memory_bytes);
    line(out, "used_memory_human", human_bytes(total.used_memory_bytes));
    line(out, "maxmemory", cfg.maxmemory_bytes);
    line(out, "maxmemory_human", human_bytes(cfg.maxmemory_bytes));
    line(out, "maxmemory_policy", store::policy_name(cfg.maxmemory_policy));
    out.append("\r\n");
  }
  if (wants(sections, "persistence", true)) {
    out.append("# Persistence\r\n");
    line(out, "loading", uint64_t{0});
    line(out, "durability", cfg.durability.empty() ? std::string("none") : cfg.durability);
    line(out, "dir", cfg.dir);
    line(out, "rdb_changes_since_last_save", total.log_bytes_since_save);
    line(out, "rdb_bgsave_in_progress", total.bgsave_in_progress > 0 ? uint64_t{1} : uint64_t{0});
    line(out, "rdb_last_save_time", (total.last_save_ms != 0 ? total.last_save_ms : srv.start_time_ms()) / 1000);
    line(out, "rdb_last_bgsave_status", total.last_save_failed > 0 ? std::string("err") : std::string("ok"));
    line(out, "snapshots_written", total.snapshots_written);
    line(out, "aof_enabled", uint64_t{srv.durable() ? 1u : 0u});
    line(out, "loaded_keys", srv.loaded_keys());
    line(out, "loaded_log_records", srv.loaded_records());
    line(out, "load_ms", srv.load_ms());
    line(out, "wal_batches", total.wal_batches);
    line(out, "wal_records", total.wal_records);
    line(out, "wal_bytes", total.wal_bytes);
    line(out, "wal_syncs", total.wal_syncs);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f", total.wal_batches ? static_cast<double>(total.wal_records) / total.wal_batches : 0.0);
    line(out, "wal_records_per_batch", buf);
    std::snprintf(buf, sizeof buf, "%.1f", total.wal_syncs ? total.wal_sync_ns_total / 1000.0 / total.wal_syncs : 0.0);
    line(out, "wal_sync_avg_us", buf);
    line(out, "wal_sync_max_us", total.wal_sync_ns_max / 1000);
    line(out, "wal_failed", total.wal_failed);
    line(out, "wal_failures", total.wal_failures);
    line(out, "wal_last_error", total.wal_last_error);
    line(out, "unavailable_partitions", total.unavailable_partitions);
    out.append("\r\n");
  }
  if (wants(sections, "stats", true)) {
    out.append("# Stats\r\n");
    line(out, "total_connections_received", srv.published(&ShardMetrics::connections_received));
    line(out, "total_commands_processed", srv.published(&ShardMetrics::commands_processed));
    line(out, "total_net_input_bytes", srv.published(&ShardMetrics::net_input_bytes));
    line(out, "rejected_connections", srv.published(&ShardMetrics::connections_rejected));
    line(out, "expired_keys", total.expired_keys);
    line(out, "evicted_keys", total.evicted_keys);
    line(out, "keyspace_hits", total.keyspace_hits);
    line(out, "keyspace_misses", total.keyspace_misses);
    line(out, "total_error_replies", [&] {
      uint64_t n = 0;
      for (uint32_t i = 0; i < srv.shard_count(); ++i) {
        for (const auto& c : srv.shard(i).metrics->per_command) n += c.failed.load() + c.rejected.load();
      }
      return n;
    }());
    line(out, "protocol_errors", srv.published(&ShardMetrics::protocol_errors));
    line(out, "client_output_limit_disconnections", srv.published(&ShardMetrics::output_limit_disconnects));
    line(out, "cross_shard_batches", srv.published(&ShardMetrics::remote_batches));
    const AclCounters& acl = srv.acl().counters();
    line(out, "acl_access_denied_auth", acl.denied_auth.load(std::memory_order_relaxed));
    line(out, "acl_access_denied_cmd", acl.denied_cmd.load(std::memory_order_relaxed));
    line(out, "acl_access_denied_key", acl.denied_key.load(std::memory_order_relaxed));
    line(out, "acl_access_denied_channel", acl.denied_channel.load(std::memory_order_relaxed));
    line(out, "acl_auth_rate_limited", acl.auth_rate_limited.load(std::memory_order_relaxed));
    out.append("\r\n");
  }
  if (wants(sections, "replication", true)) {
    out.append("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
  }
  if (wants(sections, "cluster", true)) {
    out.append(srv.cluster_enabled() ? "# Cluster\r\ncluster_enabled:1\r\n" : "# Cluster\r\ncluster_enabled:0\r\n");
    if (const ClusterNode* cn = srv.cluster_node()) out.append(cn->info_text());
    out.append("\r\n");
  }
  if (wants(sections, "commandstats", false)) {
    out.append("# Commandstats\r\n");
    const auto& table = CommandTable::instance();
    for (const auto& e : table.all()) {
      uint64_t calls = 0, usec = 0, failed = 0, rejected = 0;
      for (uint32_t i = 0; i < srv.shard_count(); ++i) {
        const auto& c = srv.shard(i).metrics->per_command[e.index];
        calls += c.calls.load();
        usec += c.usec.load();
        failed += c.failed.load();
        rejected += c.rejected.load();
      }
      if (calls == 0 && rejected == 0) continue;
      char buf[256];
      std::snprintf(buf, sizeof buf, "cmdstat_%.*s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=%llu,failed_calls=%llu\r\n",
                    static_cast<int>(e.name.size()), e.name.data(), static_cast<unsigned long long>(calls),
                    static_cast<unsigned long long>(usec), calls ? static_cast<double>(usec) / calls : 0.0,
                    static_cast<unsigned long long>(rejected), static_cast<unsigned long long>(failed));
      out.append(buf);
    }
    out.append("\r\n");
  }
  if (wants(sections, "offload", true)) {
    // Per (op, backend) that has seen work: batches, items, input bytes, device-timed busy time,
    // batches moved to the CPU and failures, summed over the shards' engines.
    out.append("# Offload\r\n");
    const offload::Engine& e0 = *srv.shard(0).offload;
    line(out, "offload_backends", e0.backends());
    line(out, "offload_absent", e0.absent().empty() ? std::string("none") : e0.absent());
    line(out, "offload_cost_model", e0.calibrated() ? cfg.offload_calibration : std::string("defaults"));
    line(out, "offload_partition_keys_min", cfg.offload_partition_keys_min);
    for (size_t o = 0; o < kernels::kOpCount; ++o) {
      for (size_t b = 0; b < drivers::kBackendCount; ++b) {
        const auto op = static_cast<kernels::Op>(o);
        const auto backend = static_cast<drivers::Backend>(b);
        const offload::CounterValues t = srv.offload_totals(op, backend);
        if (t.any()) out += offload::info_line(op, backend, t);
      }
    }
    out.append("\r\n");
  }
  if (wants(sections, "keyspace", true)) {
    out.append("# Keyspace\r\n");
    if (total.keys > 0) {
      out.append("db0:keys=" + std::to_string(total.keys) + ",expires=" + std::to_string(total.expires) +
                 ",avg_ttl=0\r\n");
    }
    out.append("\r\n");
  }
  while (out.size() >= 2 && out.compare(out.size() - 2, 2, "\r\n") == 0 &&
         out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0) {
    out.resize(out.size() - 2);
  }
  return out;
}

}  // namespace tally::server
