// PeerTransport: a Link per configured peer (its send queue, its dialed connection, its backoff) and a
// Session per connection (decoder, handshake, handshake timer). Sessions are deleted in on_close.
#include "host/transport/peer_transport.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <vector>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/tls.h"

namespace tally::transport {

namespace {

constexpr uint64_t kPumpMs = 2;                 // retry period for queues held back by inflight_bytes_max
constexpr uint32_t kQueueFramesMaxMax = 1u << 16;
constexpr size_t kPeersMax = 1024;
constexpr size_t kFramesPerReadMax = 4096;      // frames verified as one batch; the rest wait for the next

std::string close_payload(CloseReason reason, std::string_view why) {
  std::string p(2, '\0');
  const auto code = static_cast<uint16_t>(reason);
  std::memcpy(p.data(), &code, 2);
  p.append(why.substr(0, kCloseReasonBytesMax));
  return p;
}

}  // namespace

Status validate(const PeerTransportOptions& o) {
  if (o.node_id == 0) return Status::invalid("node_id must be non-zero");
  if (o.peers.size() > kPeersMax) return Status::invalid("too many peers");
  for (const auto& [id, addr] : o.peers) {
    if (id == 0 || id == o.node_id) return Status::invalid("peer ids must be non-zero and not this node's");
    if (addr.host.empty() || addr.port == 0) return Status::invalid("peer " + std::to_string(id) + " needs host:port");
  }
  if (o.frame_bytes_max < kFrameBytesMaxMin || o.frame_bytes_max > kFrameBytesMaxMax) {
    return Status::invalid("peer_frame_bytes_max must lie in [64 KiB, 256 MiB]");
  }
  if (o.queue_frames_max == 0 || o.queue_frames_max > kQueueFramesMaxMax) {
    return Status::invalid("peer_queue_frames_max must lie in [1, 65536]");
  }
  if (o.queue_bytes_max < o.frame_bytes_max) return Status::invalid("peer_queue_bytes_max must be >= peer_frame_bytes_max");
  if (o.inflight_bytes_max == 0) return Status::invalid("peer_inflight_bytes_max must be > 0");
  if (o.connect_timeout_ms == 0 || o.handshake_timeout_ms == 0) return Status::invalid("timeouts must be > 0");
  if (o.reconnect_min_ms == 0 || o.reconnect_min_ms > o.reconnect_max_ms) {
    return Status::invalid("need 0 < peer_reconnect_min_ms <= peer_reconnect_max_ms");
  }
  HandshakeConfig hc;
  hc.self = o.node_id;
  hc.cluster_id = o.cluster_id;
  hc.secret = o.secret;
  hc.is_peer = [](uint64_t) { return false; };
  return validate(hc);
}

// ---- Link and Session -----------------------------------------------------------------------

struct PeerTransport::Link {
  struct Queued {
    FrameType type;
    uint32_t group;
    std::string payload;
  };
  uint64_t id = 0;
  PeerAddress address;
  std::deque<Queued> queue;
  uint64_t queue_bytes = 0;
  Session* dialed = nullptr;  // connecting, handshaking or ready; null between dials
  uint64_t backoff_ms = 0;
  uint64_t redial_timer = 0;
  uint64_t dials = 0;
};

class PeerTransport::Session final : public net::ConnHandler {
 public:
  Session(PeerTransport& t, Handshake::Role role, uint64_t peer, Link* link)
      : t_(t), handshake(t.handshake_config_, role, peer, t.hooks_.random), decoder(kHandshakePayloadBytesMax),
        link(link) {}

  void on_data(net::Conn& c, std::string_view data) override {
    decoder.append(data);
    batch_.clear();
    while (!c.is_closing()) {
      std::optional<Frame> f;
      const FrameFault fault = decoder.next(f);
      if (fault != FrameFault::kNone) {
        t_.deliver_batch(*this, c, batch_);  // the frames before the fault are whole and checked
        t_.count_fault(fault, c.peer());
        c.close_now();
        return;
      }
      if (!f) break;
      if (authed) {
        batch_.push_back(*f);
        if (batch_.size() == kFramesPerReadMax) {
          t_.deliver_batch(*this, c, batch_);
          batch_.clear();
        }
        continue;
      }
      if (!handshake_frame(c, *f)) return;
    }
    if (!c.is_closing()) t_.deliver_batch(*this, c, batch_);
    decoder.compact();
  }

  void on_close(net::Conn& c) override { t_.on_session_closed(*this); }  // deletes this

  uint64_t peer() const { return handshake.peer(); }

  PeerTransport& t_;
  Handshake handshake;
  FrameDecoder decoder;
  Link* link;              // dialed sessions only
  uint64_t conn_id = 0;    // 0 until connected
  uint64_t timer = 0;      // the handshake timeout
  bool authed = false;

 private:
  // One frame before authentication; false once the connection is closing.
  bool handshake_frame(net::Conn& c, const Frame& f) {
    if (t_.verifier_.verify(t_.hooks_.checksum, std::span<const Frame>(&f, 1)) != 1) {
      t_.count_fault(FrameFault::kChecksum, c.peer());
      c.close_now();
      return false;
    }
    if (f.header.type == FrameType::kClose) {
      t_.stats_.closes_received++;
      TALLY_LOG_WARN("transport: {} closed the handshake with node {}", c.peer(), t_.options_.node_id);
      c.close_now();
      return false;
    }
    HandshakeStep step = handshake.on_frame(f);
    if (step.outcome == HandshakeOutcome::kMalformed) {
      t_.stats_.malformed++;
      TALLY_LOG_WARN("transport: handshake with {}: {}", c.peer(), step.why);
      c.close_now();
      return false;
    }
    if (step.outcome == HandshakeOutcome::kRefused) {
      t_.stats_.auth_failures++;
      TALLY_LOG_WARN("transport: refused {}: {}", c.peer(), step.why);
      t_.refuse(*this, c, CloseReason::kAuthFailed, "authentication failed");
      return false;
    }
    for (const HandshakeFrame& out : step.out) {
      c.out().append(encode_frame(out.type, kNoGroup, t_.options_.node_id, handshake.peer(), out.payload));
    }
    if (step.outcome == HandshakeOutcome::kDone) {
      authed = true;
      decoder.set_payload_bytes_max(t_.options_.frame_bytes_max);
      t_.on_authenticated(*this);
    }
    return !c.is_closing();
  }

  std::vector<Frame> batch_;
};

// ---- PeerTransport --------------------------------------------------------------------------

Result<std::unique_ptr<PeerTransport>> PeerTransport::create(net::Reactor& reactor, PeerTransportOptions options,
                                                             Hooks hooks, bool own_end_of_iteration) {
  TALLY_RETURN_IF_ERROR(validate(options));
  if (hooks.deliver == nullptr || hooks.group_known == nullptr) {
    return Status::invalid("deliver and group_known are required");
  }
  if (hooks.checksum == nullptr) hooks.checksum = cpu_checksum_fn();
  if (hooks.random == nullptr) hooks.random = openssl_random_fn();
  std::unique_ptr<PeerTransport> t(new PeerTransport(reactor, std::move(options), std::move(hooks)));
  uint8_t seed[8];
  if (!t->hooks_.random(seed, sizeof(seed))) return Status::unavailable("no random bytes");
  std::memcpy(&t->jitter_state_, seed, sizeof(seed));
  if (own_end_of_iteration) {
    PeerTransport* raw = t.get();
    reactor.set_end_of_iteration([raw] { raw->flush(); });
    t->own_end_of_iteration_ = true;
  }
  return t;
}

PeerTransport::PeerTransport(net::Reactor& reactor, PeerTransportOptions options, Hooks hooks)
    : reactor_(reactor), options_(std::move(options)), hooks_(std::move(hooks)) {
  handshake_config_.self = options_.node_id;
  handshake_config_.cluster_id = options_.cluster_id;
  handshake_config_.secret = options_.secret;
  handshake_config_.is_peer = [this](uint64_t node) { return links_.count(node) == 1; };
  for (const auto& [id, addr] : options_.peers) {
    auto link = std::make_unique<Link>();
    link->id = id;
    link->address = addr;
    link->backoff_ms = options_.reconnect_min_ms;
    links_.emplace(id, std::move(link));
  }
  TALLY_ASSERT(links_.size() == options_.peers.size());
}

PeerTransport::~PeerTransport() {
  if (own_end_of_iteration_) reactor_.set_end_of_iteration(nullptr);
  if (pump_timer_ != 0) reactor_.cancel_timer(pump_timer_);
  for (auto& [id, link] : links_) {
    if (link->redial_timer != 0) reactor_.cancel_timer(link->redial_timer);
  }
  for (auto& [s, owned] : sessions_) {
    if (s->timer != 0) reactor_.cancel_timer(s->timer);
  }
}

Result<uint16_t> PeerTransport::start() {
  TALLY_ASSERT(!started_);
  started_ = true;
  Result<uint16_t> port = reactor_.listen(options_.listen_host, options_.listen_port,
                                          [this](net::Conn& c) { return accept(c); });
  if (!port.is_ok()) return port.status();
  for (auto& [id, link] : links_) dial(*link);
  return port;
}

uint64_t PeerTransport::next_jitter() {
  // splitmix64: the jitter needs spread, not secrecy.
  uint64_t z = (jitter_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void PeerTransport::dial(Link& link) {
  TALLY_ASSERT(link.dialed == nullptr && !stopped_);
  stats_.dials++;
  if (link.dials++ > 0) stats_.reconnects++;
  auto owned = std::make_unique<Session>(*this, Handshake::Role::kDialer, link.id, &link);
  Session* s = owned.get();
  sessions_.emplace(s, std::move(owned));
  link.dialed = s;
  reactor_.connect(link.address.host, link.address.port, s,
                   [this, s, &link](Result<net::Conn*> c) { on_dialed(link, s, std::move(c)); },
                   options_.connect_timeout_ms);
}

void PeerTransport::on_dialed(Link& link, Session* s, Result<net::Conn*> conn) {
  TALLY_ASSERT(link.dialed == s && sessions_.count(s) == 1);
  if (!conn.is_ok()) {
    stats_.connect_failures++;
    link.dialed = nullptr;
    sessions_.erase(s);
    schedule_redial(link);
    return;
  }
  net::Conn& c = *conn.value();
  s->conn_id = c.id();
  if (options_.tls_dial != nullptr) c.set_filter(options_.tls_dial->new_filter());
  if (stopped_) {
    c.close_now();  // on_close cleans up
    return;
  }
  Result<HandshakeFrame> hello = s->handshake.start();
  if (!hello.is_ok()) {
    TALLY_LOG_WARN("transport: cannot start a handshake with node {}: {}", link.id, hello.status().to_string());
    c.close_now();
    return;
  }
  c.out().append(encode_frame(hello.value().type, kNoGroup, options_.node_id, link.id, hello.value().payload));
  s->timer = reactor_.add_timer(options_.handshake_timeout_ms, [this, s] {
    reactor_.cancel_timer(s->timer);  // once
    s->timer = 0;
    if (s->authed) return;
    stats_.handshake_timeouts++;
    if (net::Conn* c = reactor_.find(s->conn_id)) c->close_now();
  });
}

net::ConnHandler* PeerTransport::accept(net::Conn& c) {
  if (stopped_) return nullptr;
  if (options_.tls_accept != nullptr) c.set_filter(options_.tls_accept->new_filter());
  auto owned = std::make_unique<Session>(*this, Handshake::Role::kAcceptor, 0, nullptr);
  Session* s = owned.get();
  sessions_.emplace(s, std::move(owned));
  s->conn_id = c.id();
  s->timer = reactor_.add_timer(options_.handshake_timeout_ms, [this, s] {
    reactor_.cancel_timer(s->timer);
    s->timer = 0;
    if (s->authed) return;
    stats_.handshake_timeouts++;
    if (net::Conn* c = reactor_.find(s->conn_id)) c->close_now();
  });
  return s;
}

void PeerTransport::schedule_redial(Link& link) {
  if (stopped_ || link.redial_timer != 0) return;
  const uint64_t d = link.backoff_ms;
  TALLY_ASSERT(d >= 1 && d <= options_.reconnect_max_ms);
  const uint64_t wait = std::max<uint64_t>(1, d / 2 + next_jitter() % (d - d / 2 + 1));  // uniform in [d/2, d]
  link.backoff_ms = std::min(d * 2, options_.reconnect_max_ms);
  link.redial_timer = reactor_.add_timer(wait, [this, &link] {
    reactor_.cancel_timer(link.redial_timer);  // once
    link.redial_timer = 0;
    if (!stopped_ && link.dialed == nullptr) dial(link);
  });
}

void PeerTransport::on_authenticated(Session& s) {
  TALLY_ASSERT(s.authed);
  stats_.authenticated++;
  if (s.timer != 0) {
    reactor_.cancel_timer(s.timer);
    s.timer = 0;
  }
  if (s.link != nullptr) {
    s.link->backoff_ms = options_.reconnect_min_ms;  // its queue goes out at the end of this iteration
    return;
  }
  // The newest connection from a peer wins; the older one is told why and closed.
  Session*& slot = inbound_[s.peer()];
  if (slot != nullptr && slot != &s) {
    if (net::Conn* old = reactor_.find(slot->conn_id)) refuse(*slot, *old, CloseReason::kReplaced, "replaced");
  }
  slot = &s;
}

void PeerTransport::on_session_closed(Session& s) {
  if (s.timer != 0) reactor_.cancel_timer(s.timer);
  if (s.link != nullptr) {
    Link& link = *s.link;
    if (link.dialed == &s) link.dialed = nullptr;
    schedule_redial(link);
  } else if (s.authed) {
    auto it = inbound_.find(s.peer());
    if (it != inbound_.end() && it->second == &s) inbound_.erase(it);
  }
  const size_t erased = sessions_.erase(&s);  // deletes s
  TALLY_ASSERT(erased == 1);
}

void PeerTransport::refuse(Session& s, net::Conn& c, CloseReason reason, std::string_view why) {
  // A close frame needs an addressee: a hello refused before its sender was accepted gets none.
  if (s.peer() != 0) {
    c.out().append(encode_frame(FrameType::kClose, kNoGroup, options_.node_id, s.peer(), close_payload(reason, why)));
  }
  c.close_after_flush();
}

void PeerTransport::count_fault(FrameFault fault, const std::string& from) {
  switch (fault) {
    case FrameFault::kMalformed: stats_.malformed++; break;
    case FrameFault::kChecksum: stats_.checksum_failures++; break;
    case FrameFault::kOversize: stats_.oversize++; break;
    case FrameFault::kNone: TALLY_UNREACHABLE();
  }
  TALLY_LOG_WARN("transport: closing the connection from {}: {} frame", from, frame_fault_name(fault));
}

void PeerTransport::deliver_batch(Session& s, net::Conn& conn, std::span<const Frame> frames) {
  if (frames.empty()) return;
  TALLY_ASSERT(s.authed && conn.id() == s.conn_id && !conn.is_closing());
  net::Conn* c = &conn;
  const size_t good = verifier_.verify(hooks_.checksum, frames);
  stats_.checksum_fallbacks = sealer_.fallbacks() + verifier_.fallbacks();
  for (size_t i = 0; i < good; ++i) {
    const FrameHeader& h = frames[i].header;
    if (is_handshake_type(h.type) || h.source != s.peer() || h.destination != options_.node_id) {
      stats_.malformed++;
      TALLY_LOG_WARN("transport: closing the connection from {}: {} frame from {} to {} after auth", c->peer(),
                     frame_type_name(h.type), h.source, h.destination);
      c->close_now();
      return;
    }
    if (h.type == FrameType::kClose) {
      stats_.closes_received++;
      c->close_now();
      return;
    }
    if (h.type == FrameType::kRaft && !hooks_.group_known(h.group)) {
      stats_.unknown_group++;
      TALLY_LOG_WARN("transport: node {} sent a frame for group {}, which this node does not hold", s.peer(), h.group);
      refuse(s, *c, CloseReason::kUnknownGroup, "unknown group " + std::to_string(h.group));
      return;
    }
    stats_.frames_in++;
    stats_.bytes_in += kFrameHeaderBytes + h.payload_bytes;
    hooks_.deliver(InboundFrame{h.source, h.group, h.type, frames[i].payload});
    if (c->is_closing()) return;  // the owner stopped the transport
  }
  if (good < frames.size()) {
    count_fault(FrameFault::kChecksum, c->peer());
    c->close_now();
  }
}

Status PeerTransport::send(uint64_t peer, FrameType type, uint32_t group, std::string_view payload) {
  if (stopped_) return Status::unavailable("transport stopped");
  auto it = links_.find(peer);
  if (it == links_.end()) return Status::not_found("no peer " + std::to_string(peer));
  const bool raft = type == FrameType::kRaft && group != kNoGroup;
  const bool node_level = (type == FrameType::kHeartbeat || type == FrameType::kPublish ||
                           type == FrameType::kForward || type == FrameType::kForwardReply) &&
                          group == kNoGroup;
  if (!raft && !node_level) return Status::invalid("send takes raft frames of a group or node-level frames");
  if (payload.size() > options_.frame_bytes_max) return Status::invalid("frame larger than peer_frame_bytes_max");
  Link& link = *it->second;
  // The oldest frames make room: Raft tolerates loss, and newer messages carry newer state.
  while (!link.queue.empty() && (link.queue.size() + 1 > options_.queue_frames_max ||
                                 link.queue_bytes + payload.size() > options_.queue_bytes_max)) {
    link.queue_bytes -= link.queue.front().payload.size();
    link.queue.pop_front();
    stats_.queue_drops++;
  }
  link.queue.push_back(Link::Queued{type, group, std::string(payload)});
  link.queue_bytes += payload.size();
  TALLY_ASSERT(link.queue.size() <= options_.queue_frames_max && link.queue_bytes <= options_.queue_bytes_max);
  return Status::ok();
}

void PeerTransport::write_queue(Link& link) {
  Session* s = link.dialed;
  if (s == nullptr || !s->authed || link.queue.empty()) return;
  net::Conn* c = reactor_.find(s->conn_id);
  if (c == nullptr || c->is_closing()) return;
  size_t frames = 0;
  while (!link.queue.empty() && c->pending_output_bytes() < options_.inflight_bytes_max) {
    Link::Queued& q = link.queue.front();
    sealer_.add(append_unsealed_frame(c->out(), q.type, q.group, options_.node_id, link.id, q.payload));
    stats_.frames_out++;
    stats_.bytes_out += kFrameHeaderBytes + q.payload.size();
    link.queue_bytes -= q.payload.size();
    link.queue.pop_front();
    ++frames;
  }
  if (frames == 0) return;
  sealer_.seal(hooks_.checksum, c->out());
  stats_.checksum_fallbacks = sealer_.fallbacks() + verifier_.fallbacks();
  stats_.writes++;
  c->mark_output();
}

void PeerTransport::flush() {
  bool held = false;
  for (auto& [id, link] : links_) {
    write_queue(*link);
    if (!link->queue.empty() && peer_ready(id)) held = true;  // held back by inflight_bytes_max
  }
  if (held) {
    arm_pump();
  } else if (pump_timer_ != 0) {
    reactor_.cancel_timer(pump_timer_);
    pump_timer_ = 0;
  }
}

void PeerTransport::arm_pump() {
  // The reactor says nothing when a connection's output drains, so a held queue is retried on a timer
  // that exists only while some queue is held.
  if (pump_timer_ == 0) pump_timer_ = reactor_.add_timer(kPumpMs, [this] { flush(); });
}

void PeerTransport::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (pump_timer_ != 0) reactor_.cancel_timer(pump_timer_);
  pump_timer_ = 0;
  for (auto& [id, link] : links_) {
    if (link->redial_timer != 0) reactor_.cancel_timer(link->redial_timer);
    link->redial_timer = 0;
  }
  for (auto& [s, owned] : sessions_) {
    if (s->conn_id == 0) continue;  // still connecting: closed when the connect completes
    net::Conn* c = reactor_.find(s->conn_id);
    if (c == nullptr) continue;
    if (s->authed) {
      refuse(*s, *c, CloseReason::kShutdown, "shutting down");
    } else {
      c->close_now();
    }
  }
}

bool PeerTransport::peer_ready(uint64_t peer) const {
  auto it = links_.find(peer);
  if (it == links_.end()) return false;
  const Session* s = it->second->dialed;
  return s != nullptr && s->authed;
}

size_t PeerTransport::queued_frames(uint64_t peer) const {
  auto it = links_.find(peer);
  return it == links_.end() ? 0 : it->second->queue.size();
}

}  // namespace tally::transport
