#include "host/server/admin_http.h"

#include <boost/asio.hpp>
#include <cstdio>

#include "host/common/log.h"
#include "host/server/cluster_node.h"
#include "host/server/command_table.h"
#include "host/server/server.h"

namespace tally::server {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// Requests larger than this are refused: the endpoint only serves GET.
constexpr size_t kRequestBytesMax = 8192;

void counter(std::string& out, const char* name, const char* help, uint64_t v, const char* type = "counter") {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

}  // namespace

std::string render_metrics(Server& srv) {
  std::string out;
  counter(out, "tally_connected_clients", "Client connections open now.", srv.published(&ShardMetrics::connected),
          "gauge");
  counter(out, "tally_connections_received_total", "Client connections accepted.",
          srv.published(&ShardMetrics::connections_received));
  counter(out, "tally_connections_rejected_total", "Connections refused (maxclients, protected mode).",
          srv.published(&ShardMetrics::connections_rejected));
  counter(out, "tally_commands_processed_total", "Commands executed.", srv.published(&ShardMetrics::commands_processed));
  counter(out, "tally_protocol_errors_total", "Connections closed for protocol errors.",
          srv.published(&ShardMetrics::protocol_errors));
  counter(out, "tally_cross_shard_batches_total", "Command batches sent to another shard.",
          srv.published(&ShardMetrics::remote_batches));
  {
    const AclCounters& acl = srv.acl().counters();
    out += "# HELP tally_acl_denied_total Commands and logins the ACL refused, by reason.\n"
           "# TYPE tally_acl_denied_total counter\n";
    const std::pair<const char*, uint64_t> reasons[] = {
        {"auth", acl.denied_auth.load(std::memory_order_relaxed)},
        {"command", acl.denied_cmd.load(std::memory_order_relaxed)},
        {"key", acl.denied_key.load(std::memory_order_relaxed)},
        {"channel", acl.denied_channel.load(std::memory_order_relaxed)}};
    for (const auto& [reason, n] : reasons) {
      out += "tally_acl_denied_total{reason=\"" + std::string(reason) + "\"} " + std::to_string(n) + "\n";
    }
    counter(out, "tally_auth_rate_limited_total", "Logins refused because their address failed too many.",
            acl.auth_rate_limited.load(std::memory_order_relaxed));
  }
  counter(out, "tally_used_memory_bytes", "Memory the keyspace uses, as accounted.",
          srv.published(&ShardMetrics::used_memory_bytes), "gauge");
  counter(out, "tally_keys", "Keys stored.", srv.published(&ShardMetrics::keys), "gauge");
  counter(out, "tally_keys_with_expiry", "Keys with a TTL.", srv.published(&ShardMetrics::expires), "gauge");
  counter(out, "tally_expired_keys_total", "Keys removed by expiry.", srv.published(&ShardMetrics::expired_keys));
  counter(out, "tally_evicted_keys_total", "Keys evicted under maxmemory.", srv.published(&ShardMetrics::evicted_keys));
  counter(out, "tally_keyspace_hits_total", "Lookups that found a key.", srv.published(&ShardMetrics::keyspace_hits));
  counter(out, "tally_keyspace_misses_total", "Lookups that found no key.",
          srv.published(&ShardMetrics::keyspace_misses));
  counter(out, "tally_maxmemory_bytes", "Configured memory limit (0: none).", srv.config_snapshot().maxmemory_bytes,
          "gauge");
  // Offload engine: one series per (op, backend) that has seen work.
  struct OffloadSeries {
    const char* name;
    const char* help;
    uint64_t offload::CounterValues::*field;
  };
  static constexpr OffloadSeries kOffloadSeries[] = {
      {"tally_offload_batches_total", "Offload batches completed, per op and backend.", &offload::CounterValues::batches},
      {"tally_offload_items_total", "Offload batch items completed.", &offload::CounterValues::items},
      {"tally_offload_bytes_total", "Offload batch input bytes.", &offload::CounterValues::bytes},
      {"tally_offload_busy_ns_total", "Device-timed busy time of offload batches (untimed small CPU batches add 0).",
       &offload::CounterValues::busy_ns},
      {"tally_offload_fallbacks_total", "Batches meant for a backend that ran on the CPU instead.",
       &offload::CounterValues::fallbacks},
      {"tally_offload_failures_total", "Offload batches a backend failed or refused.", &offload::CounterValues::failures},
  };
  for (const OffloadSeries& series : kOffloadSeries) {
    std::string rows;
    for (size_t o = 0; o < kernels::kOpCount; ++o) {
      for (size_t b = 0; b < drivers::kBackendCount; ++b) {
        const auto t = srv.offload_totals(static_cast<kernels::Op>(o), static_cast<drivers::Backend>(b));
        if (!t.any()) continue;
        rows += std::string(series.name) + "{op=\"" + kernels::op_name(static_cast<kernels::Op>(o)) + "\",backend=\"" +
                drivers::backend_name(static_cast<drivers::Backend>(b)) + "\"} " + std::to_string(t.*series.field) + "\n";
      }
    }
    if (rows.empty()) continue;
    out += std::string("# HELP ") + series.name + " " + series.help + "\n# TYPE " + series.name + " counter\n" + rows;
  }
  if (const ClusterNode* cn = srv.cluster_node()) {
    const ClusterNode::PeerFigures& pf = cn->peer_figures();
    auto c = [&out](const char* name, const char* help, const std::atomic<uint64_t>& v) {
      counter(out, name, help, v.load(std::memory_order_relaxed));
    };
    c("tally_peer_frames_in_total", "Checked frames delivered from authenticated peers.", pf.frames_in);
    c("tally_peer_frames_out_total", "Frames written to peers.", pf.frames_out);
    c("tally_peer_auth_failures_total", "Peer connections refused by the handshake (wrong secret, replays).",
      pf.auth_failures);
    c("tally_peer_checksum_failures_total", "Peer connections closed for a frame that failed its checksum.",
      pf.checksum_failures);
    c("tally_peer_malformed_total", "Peer connections closed for a malformed frame.", pf.malformed);
    c("tally_peer_oversize_total", "Peer connections closed for a frame over the size bound.", pf.oversize);
    c("tally_peer_unknown_group_total", "Peer connections closed for a frame naming a group this node lacks.",
      pf.unknown_group);
    c("tally_peer_queue_drops_total", "Frames dropped from a full per-peer send queue.", pf.queue_drops);
    c("tally_peer_reconnects_total", "Dials to a peer after its first.", pf.reconnects);
    counter(out, "tally_raft_messages_in_total", "Raft messages received from peers.", cn->messages_in());
    counter(out, "tally_raft_messages_out_total", "Raft messages sent to peers.", cn->messages_out());
  }
  out += "# HELP tally_reactor_backend The event loop backend in use.\n# TYPE tally_reactor_backend gauge\n";
  out += "tally_reactor_backend{backend=\"";
  out += srv.io_backend();
  out += "\"} 1\n";

  out += "# HELP tally_command_duration_seconds Command execution time.\n";
  out += "# TYPE tally_command_duration_seconds histogram\n";
  std::string calls_text = "# HELP tally_command_calls_total Calls per command.\n# TYPE tally_command_calls_total counter\n";
  std::string errors_text =
      "# HELP tally_command_errors_total Calls per command that answered an error.\n# TYPE tally_command_errors_total counter\n";
  for (const auto& e : CommandTable::instance().all()) {
    uint64_t calls = 0, usec = 0, failed = 0;
    uint64_t buckets[kLatencyBuckets + 1] = {};
    for (uint32_t i = 0; i < srv.shard_count(); ++i) {
      const auto& c = srv.shard(i).metrics->per_command[e.index];
      calls += c.calls.load(std::memory_order_relaxed);
      usec += c.usec.load(std::memory_order_relaxed);
      failed += c.failed.load(std::memory_order_relaxed);
      for (size_t b = 0; b <= kLatencyBuckets; ++b) buckets[b] += c.buckets[b].load(std::memory_order_relaxed);
    }
    if (calls == 0) continue;
    std::string label = "cmd=\"" + std::string(e.name) + "\"";
    calls_text += "tally_command_calls_total{" + label + "} " + std::to_string(calls) + "\n";
    errors_text += "tally_command_errors_total{" + label + "} " + std::to_string(failed) + "\n";
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBuckets; ++b) {
      cumulative += buckets[b];
      char le[32];
      std::snprintf(le, sizeof le, "%g", static_cast<double>(latency_bucket_bound_us(b)) / 1e6);
      out += "tally_command_duration_seconds_bucket{" + label + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += buckets[kLatencyBuckets];
    out += "tally_command_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(usec) / 1e6);
    out += "tally_command_duration_seconds_sum{" + label + "} " + sum + "\n";
    out += "tally_command_duration_seconds_count{" + label + "} " + std::to_string(calls) + "\n";
  }
  out += calls_text;
  out += errors_text;
  return out;
}

struct Server::AdminHttp::Impl {
  explicit Impl(Server& s) : server(s), acceptor(io) {}
  Server& server;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec) return;
      serve(std::move(sock));
      accept();
    });
  }

  void serve(tcp::socket sock) {
    auto s = std::make_shared<tcp::socket>(std::move(sock));
    auto buf = std::make_shared<asio::streambuf>(kRequestBytesMax);
    asio::async_read_until(*s, *buf, "\r\n\r\n", [this, s, buf](boost::system::error_code ec, size_t) {
      if (ec) return;
      std::istream in(buf.get());
      std::string method, path;
      in >> method >> path;
      std::string status = "200 OK", body, type = "text/plain; version=0.0.4";
      if (method != "GET") {
        status = "405 Method Not Allowed";
        body = "only GET\n";
      } else if (path == "/metrics") {
        body = render_metrics(server);
      } else if (path == "/health" || path == "/") {
        body = "ok\n";
      } else {
        status = "404 Not Found";
        body = "not found\n";
      }
      auto resp = std::make_shared<std::string>("HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                                                "\r\nContent-Length: " + std::to_string(body.size()) +
                                                "\r\nConnection: close\r\n\r\n" + body);
      asio::async_write(*s, asio::buffer(*resp), [s, resp](boost::system::error_code, size_t) {
        boost::system::error_code ignore;
        s->shutdown(tcp::socket::shutdown_both, ignore);
      });
    });
  }
};

Server::AdminHttp::AdminHttp(Server& server) : impl_(std::make_unique<Impl>(server)) {}

Server::AdminHttp::~AdminHttp() { stop(); }

Result<uint16_t> Server::AdminHttp::start(const std::string& bind, uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(bind == "localhost" ? "127.0.0.1" : bind, ec);
  if (ec) return Status::invalid("admin bind address '" + bind + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(64, ec);
  if (ec) return Status::io_error("admin listen on " + bind + ":" + std::to_string(port) + ": " + ec.message());
  uint16_t actual = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "tally-admin");
    impl_->io.run();
  });
  return actual;
}

void Server::AdminHttp::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace tally::server
