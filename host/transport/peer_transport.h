// The TCP peer transport: listens on the peer port, dials every configured peer (reconnecting with
// capped, jittered backoff), authenticates each connection, and moves checked frames between the
// owner and its peers over one reactor. Frames to one peer queued in one loop iteration leave in one
// write. docs/peer-protocol.md is the contract.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "host/common/status.h"
#include "host/net/reactor.h"
#include "host/transport/frame.h"
#include "host/transport/frame_checksum.h"
#include "host/transport/handshake.h"

namespace tally::net {
class TlsContext;
}

namespace tally::transport {

struct PeerAddress {
  std::string host;
  uint16_t port = 0;
};

struct PeerTransportOptions {
  uint64_t node_id = 0;
  std::string cluster_id = "tally";
  std::string secret;                      // the cluster secret, >= 16 bytes
  std::string listen_host = "0.0.0.0";
  uint16_t listen_port = 0;                // 0: the kernel picks (tests)
  std::map<uint64_t, PeerAddress> peers;   // every other node
  uint32_t frame_bytes_max = 64u << 20;    // payload bound, kFrameBytesMaxMin..kFrameBytesMaxMax
  uint32_t queue_frames_max = 4096;        // per peer
  uint64_t queue_bytes_max = 64u << 20;    // per peer, payload bytes; >= frame_bytes_max
  uint64_t inflight_bytes_max = 4u << 20;  // output handed to a connection, not yet taken by the kernel
  uint64_t connect_timeout_ms = 1000;
  uint64_t reconnect_min_ms = 50;
  uint64_t reconnect_max_ms = 2000;
  uint64_t handshake_timeout_ms = 5000;
  // Mutual TLS between members (null: plaintext): accepted connections use `tls_accept` (a server
  // context that requires a client certificate), dialed ones `tls_dial` (a client context showing this
  // node's certificate and checking the peer's). The HMAC handshake runs inside TLS either way.
  std::shared_ptr<net::TlsContext> tls_accept, tls_dial;
};

Status validate(const PeerTransportOptions& o);

struct PeerTransportStats {
  uint64_t frames_in = 0;         // data frames delivered to the owner
  uint64_t frames_out = 0;        // data frames handed to a connection
  uint64_t bytes_in = 0;          // their frame bytes, headers included
  uint64_t bytes_out = 0;
  uint64_t auth_failures = 0;
  uint64_t checksum_failures = 0;
  uint64_t unknown_group = 0;
  uint64_t oversize = 0;
  uint64_t malformed = 0;
  uint64_t handshake_timeouts = 0;
  uint64_t dials = 0;
  uint64_t reconnects = 0;        // dials after the first to a peer
  uint64_t connect_failures = 0;
  uint64_t queue_drops = 0;       // frames dropped, oldest first, from a full send queue
  uint64_t authenticated = 0;     // connections that completed a handshake
  uint64_t closes_received = 0;   // close frames from peers
  uint64_t writes = 0;            // batches of frames appended to a connection (one per peer per iteration)
  uint64_t checksum_fallbacks = 0;
};

// A checked frame from an authenticated peer; payload valid only during the call.
struct InboundFrame {
  uint64_t source = 0;
  uint32_t group = kNoGroup;
  FrameType type = FrameType::kRaft;
  std::string_view payload;
};

using DeliverFn = std::function<void(const InboundFrame&)>;
using GroupKnownFn = std::function<bool(uint32_t group)>;  // does this node hold that group?

// Thread-safety: everything on the reactor's thread (create and start may also run before run()).
// Destroy it after the reactor's run() returned.
class PeerTransport {
 public:
  struct Hooks {
    DeliverFn deliver;               // required
    GroupKnownFn group_known;        // required: raft frames for other groups close the connection
    ChecksumFn checksum;             // default: kernels/cpu
    RandomFn random;                 // default: OpenSSL RAND_bytes (nonces, backoff jitter seed)
  };

  // With own_end_of_iteration the transport installs flush() as the reactor's end-of-iteration hook;
  // otherwise the owner calls flush() from its own hook (tallyd: after the log's group commit).
  static Result<std::unique_ptr<PeerTransport>> create(net::Reactor& reactor, PeerTransportOptions options,
                                                       Hooks hooks, bool own_end_of_iteration = true);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Listens on the peer port and dials every peer; returns the bound port.
  Result<uint16_t> start();
  // Queues a raft frame (group != kNoGroup) or a heartbeat frame (group == kNoGroup) to a peer. A full
  // queue drops its oldest frames (counted); never blocks. Errors: unknown peer, wrong type, too large.
  Status send(uint64_t peer, FrameType type, uint32_t group, std::string_view payload);
  // Writes every peer's queued frames into its connection (one write each); the end-of-iteration hook.
  void flush();
  // Closes every connection (with a close frame where authenticated) and stops dialing.
  void stop();

  bool peer_ready(uint64_t peer) const;     // its dialed connection is authenticated
  size_t queued_frames(uint64_t peer) const;
  const PeerTransportStats& stats() const { return stats_; }
  uint64_t node_id() const { return options_.node_id; }

 private:
  class Session;
  struct Link;

  PeerTransport(net::Reactor& reactor, PeerTransportOptions options, Hooks hooks);

  void dial(Link& link);
  void schedule_redial(Link& link);
  void on_dialed(Link& link, Session* session, Result<net::Conn*> conn);
  void on_authenticated(Session& s);
  void on_session_closed(Session& s);
  void write_queue(Link& link);
  void arm_pump();
  void deliver_batch(Session& s, net::Conn& conn, std::span<const Frame> frames);
  void count_fault(FrameFault fault, const std::string& from);
  void refuse(Session& s, net::Conn& c, CloseReason reason, std::string_view why);
  uint64_t next_jitter();
  net::ConnHandler* accept(net::Conn& c);

  net::Reactor& reactor_;
  PeerTransportOptions options_;
  Hooks hooks_;
  HandshakeConfig handshake_config_;
  PeerTransportStats stats_;
  std::map<uint64_t, std::unique_ptr<Link>> links_;
  std::map<Session*, std::unique_ptr<Session>> sessions_;
  std::map<uint64_t, Session*> inbound_;  // the newest authenticated accepted session per peer
  FrameSealer sealer_;
  FrameVerifier verifier_;
  uint64_t pump_timer_ = 0;  // re-flushes links held back by inflight_bytes_max; 0 when none are
  uint64_t jitter_state_ = 0;
  bool own_end_of_iteration_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace tally::transport
