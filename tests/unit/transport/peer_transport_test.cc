// PeerTransport on loopback, one reactor thread per node, on each reactor backend: thousands of frames
// each way in order and coalesced, a peer that leaves and returns, garbage and lies from raw sockets
// (closed and counted while the good peer keeps working), wrong secrets, a replayed handshake, the
// unknown-group rule, the drop-oldest queue and the handshake timeout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "host/net/reactor.h"
#include "host/transport/handshake.h"
#include "host/transport/peer_transport.h"

namespace tally::transport {
namespace {

using namespace std::chrono_literals;

constexpr char kSecret[] = "a cluster secret for the tests";

uint16_t unused_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Received {
  uint64_t source;
  uint32_t group;
  FrameType type;
  std::string payload;
};

// One node: a reactor on its own thread and a transport on it.
class Node {
 public:
  Node(net::Backend backend, PeerTransportOptions o, uint32_t groups = 1000) : groups_(groups) {
    net::ReactorOptions ro;
    ro.backend = backend;
    ro.ring_entries = 256;
    ro.recv_buffer_count = 256;
    Result<std::unique_ptr<net::Reactor>> r = net::Reactor::create(ro);
    if (!r.is_ok()) return;  // io_uring refused here: the caller skips
    reactor_ = std::move(r.value());
    PeerTransport::Hooks hooks;
    hooks.deliver = [this](const InboundFrame& f) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back(Received{f.source, f.group, f.type, std::string(f.payload)});
    };
    hooks.group_known = [this](uint32_t g) { return g < groups_; };
    Result<std::unique_ptr<PeerTransport>> t = PeerTransport::create(*reactor_, std::move(o), std::move(hooks));
    EXPECT_TRUE(t.is_ok()) << t.status().to_string();
    transport_ = std::move(t.value());
    Result<uint16_t> port = transport_->start();
    EXPECT_TRUE(port.is_ok()) << port.status().to_string();
    thread_ = std::thread([this] { reactor_->run(); });
  }
  ~Node() { shut(); }

  bool ok() const { return reactor_ != nullptr; }

  void shut() {
    if (!thread_.joinable()) return;
    on_loop([this] { transport_->stop(); });
    reactor_->stop();
    thread_.join();
    transport_.reset();
    reactor_.reset();
  }

  template <typename F>
  auto on_loop(F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> done;
    auto fut = done.get_future();
    reactor_->post([&] {
      if constexpr (std::is_void_v<decltype(fn())>) {
        fn();
        done.set_value();
      } else {
        done.set_value(fn());
      }
    });
    EXPECT_EQ(fut.wait_for(10s), std::future_status::ready);
    return fut.get();
  }

  template <typename F>
  bool eventually(F cond, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (on_loop(cond)) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  PeerTransportStats stats() { return on_loop([this] { return transport_->stats(); }); }
  bool ready(uint64_t peer) { return on_loop([this, peer] { return transport_->peer_ready(peer); }); }
  size_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_.size();
  }
  std::vector<Received> take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(got_);
  }
  PeerTransport& transport() { return *transport_; }

 private:
  uint32_t groups_;
  std::unique_ptr<net::Reactor> reactor_;
  std::unique_ptr<PeerTransport> transport_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Received> got_;
};

PeerTransportOptions options(uint64_t self, uint16_t port, std::map<uint64_t, uint16_t> peers,
                             std::string secret = kSecret) {
  PeerTransportOptions o;
  o.node_id = self;
  o.cluster_id = "test-cluster";
  o.secret = std::move(secret);
  o.listen_host = "127.0.0.1";
  o.listen_port = port;
  for (auto [id, p] : peers) o.peers[id] = PeerAddress{"127.0.0.1", p};
  o.frame_bytes_max = 1u << 20;
  o.queue_bytes_max = 16u << 20;
  o.queue_frames_max = 8192;
  o.reconnect_min_ms = 10;
  o.reconnect_max_ms = 100;
  o.connect_timeout_ms = 500;
  return o;
}

std::string seq_payload(uint64_t seq, size_t extra) {
  std::string p(8, '\0');
  std::memcpy(p.data(), &seq, 8);
  p.append(extra, static_cast<char>('a' + seq % 26));
  return p;
}

uint64_t seq_of(const std::string& p) {
  uint64_t s = 0;
  std::memcpy(&s, p.data(), 8);
  return s;
}

// A blocking raw TCP client speaking (or not) the peer protocol by hand.
class Raw {
 public:
  explicit Raw(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  ~Raw() { ::close(fd_); }
  void send(std::string_view d) { ::send(fd_, d.data(), d.size(), MSG_NOSIGNAL); }
  // Reads until `n` bytes arrived; fewer on EOF or timeout.
  std::string read(size_t n) {
    std::string got;
    char buf[4096];
    while (got.size() < n) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      const ssize_t r = ::recv(fd_, buf, std::min(sizeof(buf), n - got.size()), 0);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    return got;
  }
  // True once the node closed the connection (EOF or reset), within 5 s.
  bool closed_by_peer() {
    char buf[4096];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return false;
      const ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r <= 0) return true;
    }
  }

 private:
  int fd_ = -1;
};

class PeerTransportTest : public ::testing::TestWithParam<net::Backend> {};

#define NODE_OR_SKIP(n) \
  if (!(n).ok()) GTEST_SKIP() << "io_uring unavailable on this machine"

TEST_P(PeerTransportTest, ThousandsOfFramesEachWayArriveInOrderAndCoalesced) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  Node a(GetParam(), options(1, p1, {{2, p2}}));
  NODE_OR_SKIP(a);
  Node b(GetParam(), options(2, p2, {{1, p1}}));
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  ASSERT_TRUE(b.eventually([&] { return b.transport().peer_ready(1); }));
  constexpr uint64_t kFrames = 6000;
  constexpr uint64_t kBurst = 500;  // sent in one loop iteration
  for (uint64_t at = 0; at < kFrames; at += kBurst) {
    for (Node* n : {&a, &b}) {
      const uint64_t to = n == &a ? 2 : 1;
      n->on_loop([&, n, to] {
        for (uint64_t s = at; s < at + kBurst; ++s) {
          const FrameType type = s % 10 == 9 ? FrameType::kHeartbeat : FrameType::kRaft;
          const uint32_t group = type == FrameType::kHeartbeat ? kNoGroup : static_cast<uint32_t>(s % 100);
          ASSERT_TRUE(n->transport().send(to, type, group, seq_payload(s, s % 1000)).is_ok());
        }
      });
    }
  }
  ASSERT_TRUE(a.eventually([&] { return a.received() == kFrames; })) << a.received();
  ASSERT_TRUE(b.eventually([&] { return b.received() == kFrames; })) << b.received();
  for (Node* n : {&a, &b}) {
    const std::vector<Received> got = n->take();
    for (uint64_t s = 0; s < kFrames; ++s) {
      ASSERT_EQ(seq_of(got[s].payload), s);
      EXPECT_EQ(got[s].payload, seq_payload(s, s % 1000));
      EXPECT_EQ(got[s].source, n == &a ? 2u : 1u);
      EXPECT_EQ(got[s].type, s % 10 == 9 ? FrameType::kHeartbeat : FrameType::kRaft);
    }
    const PeerTransportStats st = n->stats();
    EXPECT_EQ(st.frames_in, kFrames);
    EXPECT_EQ(st.frames_out, kFrames);
    // Coalesced: a burst sent in one iteration leaves in one write (a few more where output was held).
    EXPECT_LE(st.writes, kFrames / kBurst * 4) << st.writes;
    EXPECT_EQ(st.auth_failures + st.checksum_failures + st.malformed + st.oversize + st.queue_drops, 0u);
    EXPECT_EQ(st.authenticated, 2u);  // its dialed connection and the peer's
  }
}

TEST_P(PeerTransportTest, APeerThatGoesAwayAndComesBackIsReconnected) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  Node a(GetParam(), options(1, p1, {{2, p2}}));
  NODE_OR_SKIP(a);
  auto b = std::make_unique<Node>(GetParam(), options(2, p2, {{1, p1}}));
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 1, seq_payload(0, 10)).is_ok()); });
  ASSERT_TRUE(b->eventually([&] { return b->received() == 1; }));
  b.reset();  // the peer goes away
  ASSERT_TRUE(a.eventually([&] { return !a.transport().peer_ready(2); }));
  // While it is away, frames queue and dials keep failing, with backoff.
  a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 1, seq_payload(1, 10)).is_ok()); });
  ASSERT_TRUE(a.eventually([&] { return a.transport().stats().connect_failures >= 2; }));
  b = std::make_unique<Node>(GetParam(), options(2, p2, {{1, p1}}));
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 1, seq_payload(2, 10)).is_ok()); });
  ASSERT_TRUE(b->eventually([&] { return b->received() == 2; }));
  const std::vector<Received> got = b->take();
  EXPECT_EQ(seq_of(got[0].payload), 1u);  // queued while it was away
  EXPECT_EQ(seq_of(got[1].payload), 2u);
  const PeerTransportStats st = a.stats();
  EXPECT_GE(st.reconnects, 2u);
  EXPECT_EQ(st.authenticated, 4u);  // two dialed, two accepted
}

TEST_P(PeerTransportTest, GarbageAndLiesAreClosedAndCountedWhileTheGoodPeerWorks) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  Node a(GetParam(), options(1, p1, {{2, p2}}));
  NODE_OR_SKIP(a);
  Node b(GetParam(), options(2, p2, {{1, p1}}));
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  std::atomic<bool> done{false};
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    while (!done.load()) {
      const uint64_t s = sent.load();
      a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 3, seq_payload(s, 100)).is_ok()); });
      sent.store(s + 1);
      std::this_thread::sleep_for(1ms);
    }
  });
  {
    Raw garbage(p2);
    std::mt19937 rng(1);
    std::string junk(4000, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    garbage.send(junk);
    EXPECT_TRUE(garbage.closed_by_peer());
  }
  {
    Raw before_auth(p2);  // a well-formed raft frame with no handshake
    before_auth.send(encode_frame(FrameType::kRaft, 3, 1, 2, "let me in"));
    EXPECT_TRUE(before_auth.closed_by_peer());
  }
  {
    Raw oversize(p2);  // a hello naming more than the handshake bound
    oversize.send(encode_frame(FrameType::kHello, kNoGroup, 1, 2, std::string(kHandshakePayloadBytesMax + 1, 'x')));
    EXPECT_TRUE(oversize.closed_by_peer());
  }
  {
    Raw flipped(p2);
    std::string f = encode_frame(FrameType::kHello, kNoGroup, 1, 2, std::string(40, 'x'));
    f[50] ^= 4;  // a payload byte: the frame CRC fails
    flipped.send(f);
    EXPECT_TRUE(flipped.closed_by_peer());
  }
  const uint64_t before = b.received();
  std::this_thread::sleep_for(50ms);
  done.store(true);
  sender.join();
  ASSERT_TRUE(b.eventually([&] { return b.received() == sent.load(); })) << b.received() << " of " << sent.load();
  EXPECT_GT(b.received(), before);  // the good peer kept going meanwhile
  const PeerTransportStats st = b.stats();
  EXPECT_EQ(st.checksum_failures, 2u);  // the garbage's header, the flipped payload
  EXPECT_EQ(st.malformed, 1u);          // a raft frame before the handshake
  EXPECT_EQ(st.oversize, 1u);
  EXPECT_TRUE(a.ready(2));
}

TEST_P(PeerTransportTest, AWrongSecretIsRefusedAndCountedOnBothSides) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  Node a(GetParam(), options(1, p1, {{2, p2}}));
  NODE_OR_SKIP(a);
  Node b(GetParam(), options(2, p2, {{1, p1}}, "another secret, not the cluster's"));
  ASSERT_TRUE(a.eventually([&] { return a.transport().stats().auth_failures >= 2; }));
  ASSERT_TRUE(b.eventually([&] { return b.transport().stats().auth_failures >= 2; }));
  EXPECT_FALSE(a.ready(2));
  EXPECT_FALSE(b.ready(1));
  a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 1, "never").is_ok()); });
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(b.received(), 0u);
  EXPECT_EQ(a.stats().authenticated + b.stats().authenticated, 0u);
}

TEST_P(PeerTransportTest, AReplayedHandshakeIsRefused) {
  const uint16_t p2 = unused_port();
  Node b(GetParam(), options(2, p2, {{5, unused_port()}}));  // node 5 is this test, by hand
  NODE_OR_SKIP(b);
  HandshakeConfig hc;
  hc.self = 5;
  hc.cluster_id = "test-cluster";
  hc.secret = kSecret;
  hc.is_peer = [](uint64_t n) { return n == 2; };
  std::string hello_bytes, response_bytes;
  {
    // An honest handshake, recorded on the wire.
    Raw honest(p2);
    Handshake d(hc, Handshake::Role::kDialer, 2, openssl_random_fn());
    hello_bytes = encode_frame(FrameType::kHello, kNoGroup, 5, 2, d.start().value().payload);
    honest.send(hello_bytes);
    const std::string challenge = honest.read(kFrameHeaderBytes + kNonceBytes + kProofBytes);
    FrameDecoder dec(kHandshakePayloadBytesMax);
    dec.append(challenge);
    std::optional<Frame> f;
    ASSERT_EQ(dec.next(f), FrameFault::kNone);
    ASSERT_TRUE(f.has_value());
    HandshakeStep step = d.on_frame(*f);
    ASSERT_EQ(step.outcome, HandshakeOutcome::kContinue);
    response_bytes = encode_frame(FrameType::kResponse, kNoGroup, 5, 2, step.out.at(0).payload);
    honest.send(response_bytes);
    EXPECT_EQ(get_header(honest.read(kFrameHeaderBytes).data()).type, FrameType::kAuthOk);
  }
  EXPECT_EQ(b.stats().authenticated, 1u);
  {
    Raw replay(p2);
    replay.send(hello_bytes);
    replay.read(kFrameHeaderBytes + kNonceBytes + kProofBytes);  // a fresh challenge, ignored
    replay.send(response_bytes);
    EXPECT_TRUE(replay.closed_by_peer());
  }
  const PeerTransportStats st = b.stats();
  EXPECT_EQ(st.auth_failures, 1u);
  EXPECT_EQ(st.authenticated, 1u);
}

TEST_P(PeerTransportTest, AFrameForAnUnknownGroupClosesTheConnection) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  Node a(GetParam(), options(1, p1, {{2, p2}}));
  NODE_OR_SKIP(a);
  Node b(GetParam(), options(2, p2, {{1, p1}}), /*groups=*/10);
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  a.on_loop([&] {
    ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 9, seq_payload(0, 0)).is_ok());
    ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 10, seq_payload(1, 0)).is_ok());  // not held by b
  });
  ASSERT_TRUE(b.eventually([&] { return b.transport().stats().unknown_group == 1; }));
  // The sender hears why, reconnects, and frames for held groups flow again.
  ASSERT_TRUE(a.eventually([&] { return a.transport().stats().closes_received == 1; }));
  ASSERT_TRUE(a.eventually([&] { return a.transport().peer_ready(2); }));
  a.on_loop([&] { ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 0, seq_payload(2, 0)).is_ok()); });
  ASSERT_TRUE(b.eventually([&] { return b.received() == 2; }));
  const std::vector<Received> got = b.take();
  EXPECT_EQ(got[0].group, 9u);
  EXPECT_EQ(got[1].group, 0u);  // group 10's frame never reached the owner
  EXPECT_EQ(seq_of(got[1].payload), 2u);
}

TEST_P(PeerTransportTest, AFullQueueDropsItsOldestFrames) {
  const uint16_t p1 = unused_port(), p2 = unused_port();
  PeerTransportOptions o = options(1, p1, {{2, p2}});
  o.queue_frames_max = 4;
  Node a(GetParam(), o);
  NODE_OR_SKIP(a);
  a.on_loop([&] {
    for (uint64_t s = 0; s < 10; ++s) {
      ASSERT_TRUE(a.transport().send(2, FrameType::kRaft, 1, seq_payload(s, 0)).is_ok());
    }
    EXPECT_FALSE(a.transport().send(2, FrameType::kRaft, 1, std::string((1u << 20) + 1, 'x')).is_ok());
    EXPECT_FALSE(a.transport().send(2, FrameType::kRaft, kNoGroup, "x").is_ok());
    EXPECT_FALSE(a.transport().send(9, FrameType::kRaft, 1, "x").is_ok());
  });
  EXPECT_EQ(a.on_loop([&] { return a.transport().queued_frames(2); }), 4u);
  EXPECT_EQ(a.stats().queue_drops, 6u);
  Node b(GetParam(), options(2, p2, {{1, p1}}));
  ASSERT_TRUE(b.eventually([&] { return b.received() == 4; }));
  const std::vector<Received> got = b.take();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(seq_of(got[i].payload), 6 + i);  // the newest four
}

TEST_P(PeerTransportTest, ASilentConnectionTimesOutOfTheHandshake) {
  const uint16_t p2 = unused_port();
  PeerTransportOptions o = options(2, p2, {{1, unused_port()}});
  o.handshake_timeout_ms = 150;
  Node b(GetParam(), o);
  NODE_OR_SKIP(b);
  Raw silent(p2);
  EXPECT_TRUE(silent.closed_by_peer());
  EXPECT_TRUE(b.eventually([&] { return b.transport().stats().handshake_timeouts >= 1; }));
}

TEST(PeerTransportOptions, AreValidated) {
  EXPECT_TRUE(validate(options(1, 1, {{2, 2}})).is_ok());
  PeerTransportOptions o = options(1, 1, {{2, 2}});
  o.frame_bytes_max = 1000;
  EXPECT_FALSE(validate(o).is_ok());
  o = options(1, 1, {{1, 2}});
  EXPECT_FALSE(validate(o).is_ok());
  o = options(1, 1, {{2, 2}}, "short");
  EXPECT_FALSE(validate(o).is_ok());
  o = options(1, 1, {{2, 2}});
  o.queue_bytes_max = o.frame_bytes_max - 1;
  EXPECT_FALSE(validate(o).is_ok());
  o = options(1, 1, {{2, 2}});
  o.reconnect_min_ms = 500;
  o.reconnect_max_ms = 100;
  EXPECT_FALSE(validate(o).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, PeerTransportTest, ::testing::Values(net::Backend::kUring, net::Backend::kEpoll),
                         [](const ::testing::TestParamInfo<net::Backend>& info) {
                           return std::string(info.param == net::Backend::kUring ? "uring" : "epoll");
                         });

}  // namespace
}  // namespace tally::transport
