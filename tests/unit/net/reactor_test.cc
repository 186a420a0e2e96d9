// Reactor behaviour on every backend: echo, large pipelined transfers, output limits, closes from
// callbacks, cross-thread posts, timers, connection limits, SO_REUSEPORT and stop().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "host/net/reactor.h"

namespace tally::net {
namespace {

using namespace std::chrono_literals;

constexpr int kClientTimeoutMs = 10000;

// ---- a blocking test client ----------------------------------------------------------------

class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0);
    if (rcvbuf_bytes > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    EXPECT_TRUE(connected_) << std::strerror(errno);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // False when the peer reset the connection.
  bool send_all(std::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Reads exactly n bytes; returns fewer on EOF, reset or timeout.
  std::string recv_exact(size_t n) {
    std::string got;
    got.resize(n);
    size_t done = 0;
    while (done < n && wait_readable()) {
      const ssize_t r = ::recv(fd_, got.data() + done, n - done, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      done += static_cast<size_t>(r);
    }
    got.resize(done);
    return got;
  }

  // True when the server closed the connection (EOF or reset) within the timeout; counts bytes before it.
  bool wait_closed(size_t* bytes_before = nullptr) {
    char buf[4096];
    size_t total = 0;
    bool closed = false;
    while (wait_readable()) {
      const ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        closed = true;
        break;
      }
      total += static_cast<size_t>(r);
    }
    if (bytes_before != nullptr) *bytes_before = total;
    return closed;
  }

  int fd() const { return fd_; }

 private:
  bool wait_readable() {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, kClientTimeoutMs) == 1;
  }

  int fd_ = -1;
  bool connected_ = false;
};

std::string pattern(size_t bytes, uint32_t seed) {
  std::string s(bytes, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < bytes; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// ---- handlers ------------------------------------------------------------------------------

class EchoHandler : public ConnHandler {
 public:
  void on_data(Conn& c, std::string_view data) override { c.out().append(data); }
  void on_close(Conn& c) override { closed.fetch_add(1); }
  std::atomic<int> closed{0};
};

// ---- fixture: one backend variant per parameter ----------------------------------------------

struct Variant {
  Backend backend;
  bool multishot;
  const char* name;
};

class ReactorTest : public ::testing::TestWithParam<Variant> {
 protected:
  ReactorOptions options() const {
    ReactorOptions o;
    o.backend = GetParam().backend;
    o.uring_multishot = GetParam().multishot;
    o.ring_entries = 256;
    o.recv_buffer_count = 256;
    return o;
  }

  // Creates a reactor for this variant; skips the test where io_uring is refused (containers with seccomp).
  std::unique_ptr<Reactor> make(ReactorOptions o) {
    Result<std::unique_ptr<Reactor>> r = Reactor::create(o);
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().to_string();
      return nullptr;
    }
    std::unique_ptr<Reactor> reactor = std::move(r.value());
    EXPECT_STREQ(reactor->backend_name(), GetParam().backend == Backend::kEpoll ? "epoll" : "io_uring");
    return reactor;
  }

  // Starts run() on its own thread.
  void start(Reactor* r) {
    threads_.emplace_back([r] { r->run(); });
  }

  void stop_all(const std::vector<Reactor*>& rs) {
    for (Reactor* r : rs) r->stop();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  void TearDown() override {
    ASSERT_TRUE(threads_.empty()) << "a test left a reactor running";
  }

  // Runs fn on the reactor's thread and waits for its result.
  template <typename F>
  static auto on_loop(Reactor* r, F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> done;
    auto fut = done.get_future();
    r->post([&] {
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

  // Polls cond on the reactor's thread until it holds (or 10 s pass).
  template <typename F>
  static bool eventually(Reactor* r, F cond) {
    for (int i = 0; i < 1000; ++i) {
      if (on_loop(r, cond)) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::vector<std::thread> threads_;
};

#define MAKE_OR_SKIP(var, opts)                                              \
  std::unique_ptr<Reactor> var = make(opts);                                 \
  if (var == nullptr) GTEST_SKIP() << "io_uring unavailable on this machine"

TEST_P(ReactorTest, EchoManyClients) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(port.is_ok()) << port.status().to_string();
  start(r.get());
  constexpr int kClients = 48;
  constexpr int kRounds = 12;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<Client>(port.value()));
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> sent;
    for (int i = 0; i < kClients; ++i) {
      sent.push_back(pattern(1 + (i * 37 + round * 1013) % 5000, i * 100 + round));
      ASSERT_TRUE(clients[i]->send_all(sent.back()));
    }
    for (int i = 0; i < kClients; ++i) ASSERT_EQ(clients[i]->recv_exact(sent[i].size()), sent[i]);
  }
  EXPECT_EQ(on_loop(r.get(), [&] { return r->connection_count(); }), size_t{kClients});
  clients.clear();
  EXPECT_TRUE(eventually(r.get(), [&] { return r->connection_count() == 0; }));
  EXPECT_EQ(echo.closed.load(), kClients);
  stop_all({r.get()});
  EXPECT_EQ(r->stats().accepted, uint64_t{kClients});
}

TEST_P(ReactorTest, PipelinedLargeTransferBothWays) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  constexpr size_t kBytes = 10u << 20;
  const std::string data = pattern(kBytes, 7);
  Client client(port.value(), 64 * 1024);
  // The whole request goes out before any reply is read, so the server's sends must stop
  // part-way (full socket buffers) and resume on their own.
  std::thread writer([&] {
    for (size_t off = 0; off < kBytes; off += 100000) {
      ASSERT_TRUE(client.send_all(std::string_view(data).substr(off, 100000)));
    }
  });
  writer.join();
  const std::string got = client.recv_exact(kBytes);
  ASSERT_EQ(got.size(), kBytes);
  EXPECT_TRUE(got == data);
  stop_all({r.get()});
  const ReactorStats st = r->stats();
  EXPECT_EQ(st.bytes_received, kBytes);
  EXPECT_EQ(st.bytes_sent, kBytes);
  EXPECT_GT(st.partial_sends, 0u);
  EXPECT_EQ(st.closed_output_limit, 0u);
}

// A connection that answers every byte with 256 KiB and never gets read.
class FloodHandler : public ConnHandler {
 public:
  void on_data(Conn& c, std::string_view data) override {
    for (size_t i = 0; i < data.size(); ++i) c.out().append(256 * 1024, 'f');
  }
  void on_close(Conn& c) override { closed.store(true); }
  std::atomic<bool> closed{false};
};

TEST_P(ReactorTest, ClientThatStopsReadingIsDisconnected) {
  ReactorOptions o = options();
  o.max_output_bytes = 1u << 20;
  MAKE_OR_SKIP(r, o);
  FloodHandler flood;
  EchoHandler echo;
  Result<uint16_t> flood_port = r->listen("127.0.0.1", 0, [&](Conn&) { return &flood; });
  Result<uint16_t> echo_port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(flood_port.is_ok() && echo_port.is_ok());
  start(r.get());
  Client slow(flood_port.value(), 16 * 1024);
  Client fine(echo_port.value());
  bool disconnected = false;
  for (int i = 0; i < 400 && !disconnected; ++i) {
    if (!slow.send_all("x")) break;  // reset by the server
    const std::string msg = "ping " + std::to_string(i);
    ASSERT_TRUE(fine.send_all(msg));
    ASSERT_EQ(fine.recv_exact(msg.size()), msg);
    disconnected = flood.closed.load();
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_TRUE(eventually(r.get(), [&] { return flood.closed.load(); }));
  // The well-behaved client is unaffected.
  ASSERT_TRUE(fine.send_all("still here"));
  EXPECT_EQ(fine.recv_exact(10), "still here");
  stop_all({r.get()});
  EXPECT_EQ(r->stats().closed_output_limit, 1u);
  EXPECT_EQ(echo.closed.load(), 1);  // by stop()
}

// One heap object per connection that deletes itself in on_close, as servers do.
class ScriptHandler : public ConnHandler {
 public:
  explicit ScriptHandler(std::atomic<int>* closes) : closes_(closes) {}
  void on_data(Conn& c, std::string_view data) override {
    EXPECT_FALSE(closed_) << "on_data after close";
    if (data.starts_with("quit")) {
      c.out().append("bye\n");
      c.close_after_flush();
    } else if (data.starts_with("kill")) {
      c.close_now();
      c.out().append("never sent");  // dropped: the connection is closing
      c.close_now();                 // idempotent
      c.close_after_flush();
    } else {
      c.out().append(data);
    }
  }
  void on_close(Conn& c) override {
    closed_ = true;
    closes_->fetch_add(1);
    delete this;
  }

 private:
  std::atomic<int>* closes_;
  bool closed_ = false;
};

TEST_P(ReactorTest, CloseFromInsideOnData) {
  MAKE_OR_SKIP(r, options());
  std::atomic<int> closes{0};
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return new ScriptHandler(&closes); });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  Client polite(port.value());
  Client rude(port.value());
  ASSERT_TRUE(polite.send_all("hello"));
  ASSERT_EQ(polite.recv_exact(5), "hello");
  ASSERT_TRUE(polite.send_all("quit\n"));
  EXPECT_EQ(polite.recv_exact(4), "bye\n");
  EXPECT_TRUE(polite.wait_closed());
  ASSERT_TRUE(rude.send_all("kill and some trailing bytes in the same packet"));
  size_t bytes = 99;
  EXPECT_TRUE(rude.wait_closed(&bytes));
  EXPECT_EQ(bytes, 0u);
  EXPECT_TRUE(eventually(r.get(), [&] { return closes.load() == 2 && r->connection_count() == 0; }));
  stop_all({r.get()});
  EXPECT_EQ(closes.load(), 2);
}

TEST_P(ReactorTest, OutputFromPostedTaskAndFind) {
  MAKE_OR_SKIP(r, options());
  std::atomic<uint64_t> conn_id{0};
  class Remember : public ConnHandler {
   public:
    explicit Remember(std::atomic<uint64_t>* id) : id_(id) {}
    void on_data(Conn& c, std::string_view) override { id_->store(c.id()); }
    void on_close(Conn&) override {}
    std::atomic<uint64_t>* id_;
  } remember(&conn_id);
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &remember; });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  Client client(port.value());
  ASSERT_TRUE(client.send_all("who am i"));
  for (int i = 0; i < 1000 && conn_id.load() == 0; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_NE(conn_id.load(), 0u);
  // A reply produced later, outside on_data, goes out once marked.
  r->post([&] {
    Conn* c = r->find(conn_id.load());
    ASSERT_NE(c, nullptr);
    c->out().append("later");
    c->mark_output();
  });
  EXPECT_EQ(client.recv_exact(5), "later");
  client.close();
  EXPECT_TRUE(eventually(r.get(), [&] { return r->find(conn_id.load()) == nullptr; }));
  stop_all({r.get()});
}

TEST_P(ReactorTest, PostFromFourThreadsKeepsPerThreadOrder) {
  MAKE_OR_SKIP(r, options());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<int>> seen(kThreads);  // touched only on the reactor's thread
  int before_run = 0;
  r->post([&] { before_run++; });  // queued before run(): still runs
  start(r.get());
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) r->post([&seen, t, i] { seen[t].push_back(i); });
    });
  }
  for (std::thread& p : posters) p.join();
  // Everything posted before this point runs before this task (FIFO across one thread's posts).
  on_loop(r.get(), [] {});
  stop_all({r.get()});
  EXPECT_EQ(before_run, 1);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), size_t{kPerThread}) << "thread " << t;
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i) << "thread " << t;
  }
}

TEST_P(ReactorTest, TimersFireAndCancel) {
  MAKE_OR_SKIP(r, options());
  int fast_fires = 0;
  int cancelled_fires = 0;
  int slow_fires = 0;
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point fifth;
  start(r.get());
  uint64_t fast_id = 0;  // outlives the task below: the callbacks read it later
  on_loop(r.get(), [&] {
    started = std::chrono::steady_clock::now();
    fast_id = r->add_timer(3, [&] {
      if (++fast_fires == 5) {
        fifth = std::chrono::steady_clock::now();
        r->cancel_timer(fast_id);  // cancels itself from its own callback
      }
    });
    const uint64_t doomed = r->add_timer(1, [&] { cancelled_fires++; });
    r->cancel_timer(doomed);
    r->cancel_timer(doomed);  // twice is harmless
    r->cancel_timer(999999);  // unknown id is harmless
    r->add_timer(40, [&, doomed] {
      slow_fires++;
      r->cancel_timer(doomed);  // long gone: harmless
    });
  });
  // Waits on conditions, not fixed sleeps: the loaded CI machine may stall the loop for a while.
  EXPECT_TRUE(eventually(r.get(), [&] { return fast_fires == 5 && slow_fires >= 2; }));
  std::this_thread::sleep_for(30ms);  // ten more periods of the cancelled timer
  const auto [fast_seen, slow_seen, elapsed] = on_loop(r.get(), [&] {
    return std::make_tuple(fast_fires, slow_fires, std::chrono::steady_clock::now() - started);
  });
  stop_all({r.get()});
  EXPECT_EQ(fast_seen, 5);
  EXPECT_EQ(cancelled_fires, 0);
  EXPECT_GE(slow_seen, 2);
  EXPECT_LE(slow_seen, elapsed / 40ms + 1);  // never faster than its period
  EXPECT_GE(fifth - started, 15ms);  // five periods of 3 ms
}

TEST_P(ReactorTest, MaxConnectionsEnforced) {
  ReactorOptions o = options();
  o.max_connections = 3;
  MAKE_OR_SKIP(r, o);
  EchoHandler echo;
  std::atomic<int> refused_asks{0};
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  Result<uint16_t> refusing = r->listen("127.0.0.1", 0, [&](Conn&) -> ConnHandler* {
    refused_asks.fetch_add(1);
    return nullptr;
  });
  ASSERT_TRUE(port.is_ok() && refusing.is_ok());
  start(r.get());
  std::vector<std::unique_ptr<Client>> kept;
  for (int i = 0; i < 3; ++i) {
    kept.push_back(std::make_unique<Client>(port.value()));
    ASSERT_TRUE(kept.back()->send_all("ok"));
    ASSERT_EQ(kept.back()->recv_exact(2), "ok");
  }
  Client extra1(port.value());
  Client extra2(port.value());
  extra1.send_all("no");
  EXPECT_TRUE(extra1.wait_closed());
  EXPECT_TRUE(extra2.wait_closed());
  EXPECT_EQ(on_loop(r.get(), [&] { return r->connection_count(); }), 3u);
  // A slot frees when a client leaves.
  kept[0]->close();
  EXPECT_TRUE(eventually(r.get(), [&] { return r->connection_count() == 2; }));
  Client again(port.value());
  ASSERT_TRUE(again.send_all("back"));
  EXPECT_EQ(again.recv_exact(4), "back");
  // An AcceptFn that returns nullptr refuses the connection; no on_close for it.
  kept.pop_back();
  EXPECT_TRUE(eventually(r.get(), [&] { return r->connection_count() == 2; }));
  Client unwanted(refusing.value());
  EXPECT_TRUE(unwanted.wait_closed());
  EXPECT_EQ(refused_asks.load(), 1);
  stop_all({r.get()});
  EXPECT_EQ(r->stats().refused, 3u);
  EXPECT_EQ(echo.closed.load(), 4);  // 2 by clients leaving, 2 by stop()
}

TEST_P(ReactorTest, ListenOnPortZeroAndConnInfo) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  std::string peer;
  bool loopback = false;
  uint16_t local_port = 0;
  uint64_t first_id = 0;
  Result<uint16_t> a = r->listen("127.0.0.1", 0, [&](Conn& c) {
    peer = c.peer();
    loopback = c.peer_is_loopback();
    local_port = c.local_port();
    first_id = c.id();
    return &echo;
  });
  Result<uint16_t> b = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_NE(a.value(), 0);
  EXPECT_NE(b.value(), 0);
  EXPECT_NE(a.value(), b.value());
  Result<uint16_t> bad = r->listen("not-an-address.invalid", 0, [&](Conn&) { return &echo; });
  EXPECT_FALSE(bad.is_ok());
  start(r.get());
  Client client(a.value());
  ASSERT_TRUE(client.send_all("hi"));
  ASSERT_EQ(client.recv_exact(2), "hi");
  stop_all({r.get()});
  EXPECT_TRUE(peer.starts_with("127.0.0.1:")) << peer;
  EXPECT_TRUE(loopback);
  EXPECT_EQ(local_port, a.value());
  EXPECT_GT(first_id, 0u);
}

TEST_P(ReactorTest, ReusePortTwoReactorsBothServe) {
  MAKE_OR_SKIP(r1, options());
  MAKE_OR_SKIP(r2, options());
  EchoHandler echo1;
  EchoHandler echo2;
  std::atomic<int> accepted1{0};
  std::atomic<int> accepted2{0};
  Result<uint16_t> p1 = r1->listen("127.0.0.1", 0, [&](Conn&) {
    accepted1.fetch_add(1);
    return &echo1;
  });
  ASSERT_TRUE(p1.is_ok());
  Result<uint16_t> p2 = r2->listen("127.0.0.1", p1.value(), [&](Conn&) {
    accepted2.fetch_add(1);
    return &echo2;
  });
  ASSERT_TRUE(p2.is_ok()) << p2.status().to_string();
  EXPECT_EQ(p1.value(), p2.value());
  start(r1.get());
  start(r2.get());
  constexpr int kClients = 40;
  for (int i = 0; i < kClients; ++i) {
    Client c(p1.value());
    const std::string msg = "client " + std::to_string(i);
    ASSERT_TRUE(c.send_all(msg));
    ASSERT_EQ(c.recv_exact(msg.size()), msg);
  }
  stop_all({r1.get(), r2.get()});
  EXPECT_EQ(accepted1.load() + accepted2.load(), kClients);
  EXPECT_GT(accepted1.load(), 0);
  EXPECT_GT(accepted2.load(), 0);
}

TEST_P(ReactorTest, StopFromAnotherThreadReturnsRun) {
  MAKE_OR_SKIP(r, options());
  r->stop();
  r->run();  // stop() before run(): returns at once
  EchoHandler echo;
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(port.is_ok());
  std::promise<void> returned;
  std::thread loop([&] {
    r->run();
    returned.set_value();
  });
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(port.value()));
    ASSERT_TRUE(clients.back()->send_all("x"));
    ASSERT_EQ(clients.back()->recv_exact(1), "x");
  }
  r->stop();
  EXPECT_EQ(returned.get_future().wait_for(5s), std::future_status::ready);
  loop.join();
  EXPECT_EQ(echo.closed.load(), 3);  // run() closed every connection before returning
  EXPECT_EQ(r->connection_count(), 0u);
  for (auto& c : clients) EXPECT_TRUE(c->wait_closed());
}

TEST_P(ReactorTest, PauseReadingHoldsDataUntilResume) {
  // gap 0: "data" may reach the reactor before the pause takes effect in the kernel (io_uring holds it);
  // gap 30 ms: it arrives after, and stays in the socket.
  for (int gap_ms : {0, 30}) {
    SCOPED_TRACE(gap_ms);
    MAKE_OR_SKIP(r, options());
    class Pausing : public ConnHandler {
     public:
      explicit Pausing(Reactor* r) : r_(r) {}
      void on_data(Conn& c, std::string_view data) override {
        if (paused_once && !resumed) data_while_paused = true;
        received.append(data);
        if (received.starts_with("pause") && !paused_once) {
          paused_once = true;
          paused_at = std::chrono::steady_clock::now();
          c.pause_reading();
          const uint64_t id = c.id();
          timer = r_->add_timer(150, [this, id] {
            r_->cancel_timer(timer);
            resumed = true;
            if (Conn* conn = r_->find(id)) {
              conn->resume_reading();
              maybe_reply(*conn);  // "pausedata" may have come in one piece
              conn->mark_output();
            }
          });
        }
        if (resumed) maybe_reply(c);
      }
      void maybe_reply(Conn& c) {
        if (received.size() < expected_bytes || replied) return;
        replied = true;
        delivered_at = std::chrono::steady_clock::now();
        c.out().append(received);
      }
      void on_close(Conn&) override {}
      Reactor* r_;
      std::string received;
      bool paused_once = false;
      bool resumed = false;
      bool replied = false;
      bool data_while_paused = false;
      size_t expected_bytes = 0;
      uint64_t timer = 0;
      std::chrono::steady_clock::time_point paused_at;
      std::chrono::steady_clock::time_point delivered_at;
    } handler(r.get());
    Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &handler; });
    ASSERT_TRUE(port.is_ok());
    start(r.get());
    Client client(port.value());
    // Without a gap, many tiny segments follow at once, so some land in the reactor before the
    // kernel stops receiving for it (io_uring holds those and must deliver them on resume).
    const std::string tail = gap_ms == 0 ? pattern(200, 9) : std::string("data");
    handler.expected_bytes = 5 + tail.size();
    ASSERT_TRUE(client.send_all("pause"));
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    for (char ch : tail) ASSERT_TRUE(client.send_all(std::string_view(&ch, 1)));
    EXPECT_EQ(client.recv_exact(5 + tail.size()), "pause" + tail);
    stop_all({r.get()});
    EXPECT_FALSE(handler.data_while_paused);
    EXPECT_GE(handler.delivered_at - handler.paused_at, 140ms);
  }
}

TEST_P(ReactorTest, ResumingFromACompletionKeepsByteOrder) {
  // A server's replies complete when its log write does: the handler pauses on every chunk and
  // resumes from a file write's completion, which io_uring reaps among the connection's own recv
  // completions. Bytes that arrive then must queue behind those held during the pause.
  MAKE_OR_SKIP(r, options());
  char path[] = "/tmp/tally-reactor-order-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  class Handler : public ConnHandler {
   public:
    Handler(Reactor* r, int fd) : r_(r), fd_(fd) {}
    void on_data(Conn& c, std::string_view data) override {
      received.append(data);
      if (paused_) return;  // delivered while paused would be a bug of its own; order catches it
      if (!writing_) {
        // A synced write completes on a worker, at any point among this connection's recv completions.
        writing_ = true;
        const uint64_t id = c.id();
        r_->file_write(fd_, 0, "x", true, [this, id](int) {
          writing_ = false;
          if (!paused_) return;
          paused_ = false;
          if (Conn* conn = r_->find(id)) conn->resume_reading();
        });
        return;
      }
      paused_ = true;
      pauses++;
      c.pause_reading();
    }
    void on_close(Conn&) override {}
    Reactor* r_;
    int fd_;
    bool paused_ = false;
    bool writing_ = false;
    std::string received;
    uint64_t pauses = 0;
  } handler(r.get(), fd);
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &handler; });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  const std::string request = pattern(24u << 20, 11);
  Client client(port.value());
  std::thread sender([&] { EXPECT_TRUE(client.send_all(request)); });
  const bool all = eventually(r.get(), [&] { return handler.received.size() >= request.size(); });
  sender.join();
  stop_all({r.get()});
  EXPECT_TRUE(all) << handler.received.size() << " of " << request.size() << " bytes";
  EXPECT_GT(handler.pauses, 10u);
  ASSERT_EQ(handler.received.size(), request.size());
  size_t first_diff = 0;
  while (first_diff < request.size() && handler.received[first_diff] == request[first_diff]) ++first_diff;
  EXPECT_EQ(first_diff, request.size()) << "bytes out of order from offset " << first_diff;
  ::close(fd);
  ::unlink(path);
}

TEST_P(ReactorTest, HalfClosedPeerStillGetsItsReplies) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  Client client(port.value(), 64 * 1024);
  // Large enough that the echo cannot all sit in socket buffers: output is pending when the FIN arrives.
  const std::string request = pattern(8u << 20, 3);
  ASSERT_TRUE(client.send_all(request));
  ASSERT_EQ(::shutdown(client.fd(), SHUT_WR), 0);
  const std::string got = client.recv_exact(request.size());
  EXPECT_EQ(got.size(), request.size());
  EXPECT_TRUE(got == request);  // not EXPECT_EQ: a failure would print 8 MB
  EXPECT_TRUE(client.wait_closed());  // then the server closes its side
  EXPECT_TRUE(eventually(r.get(), [&] { return echo.closed.load() == 1; }));
  stop_all({r.get()});
}

TEST_P(ReactorTest, ListensOnIpv6Loopback) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  std::string peer;
  bool loopback = false;
  Result<uint16_t> port = r->listen("::1", 0, [&](Conn& c) {
    peer = c.peer();
    loopback = c.peer_is_loopback();
    return &echo;
  });
  if (!port.is_ok()) GTEST_SKIP() << "no IPv6 here: " << port.status().to_string();
  start(r.get());
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons(port.value());
  addr.sin6_addr = in6addr_loopback;
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::send(fd, "v6", 2, MSG_NOSIGNAL), 2);
  char buf[2] = {};
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, kClientTimeoutMs), 1);
  EXPECT_EQ(::recv(fd, buf, 2, MSG_WAITALL), 2);
  ::close(fd);
  stop_all({r.get()});
  EXPECT_EQ(std::string(buf, 2), "v6");
  EXPECT_TRUE(peer.starts_with("[::1]:")) << peer;
  EXPECT_TRUE(loopback);
}

// Closing every connection from a posted task, with handlers that close others in on_close.
TEST_P(ReactorTest, CloseAllFromPostedTaskWithChainedCloses) {
  MAKE_OR_SKIP(r, options());
  struct Chained : public ConnHandler {
    Reactor* reactor = nullptr;
    std::vector<uint64_t> ids;  // reactor thread only
    int closes = 0;
    void on_data(Conn& c, std::string_view data) override { c.out().append(data); }
    void on_close(Conn& c) override {
      closes++;
      // Closing the others from inside on_close must neither double-close nor touch freed memory.
      for (uint64_t id : ids) {
        if (Conn* other = reactor->find(id)) other->close_now();
      }
    }
  } chained;
  chained.reactor = r.get();
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn& c) {
    chained.ids.push_back(c.id());
    return &chained;
  });
  ASSERT_TRUE(port.is_ok());
  start(r.get());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<Client>(port.value()));
    ASSERT_TRUE(clients.back()->send_all("hey"));
    ASSERT_EQ(clients.back()->recv_exact(3), "hey");
  }
  r->post([&] { r->find(chained.ids[2])->close_now(); });
  EXPECT_TRUE(eventually(r.get(), [&] { return r->connection_count() == 0; }));
  EXPECT_EQ(on_loop(r.get(), [&] { return chained.closes; }), 6);
  for (auto& c : clients) EXPECT_TRUE(c->wait_closed());
  // close_all() on an idle reactor, then it keeps serving.
  on_loop(r.get(), [&] { r->close_all(); });
  Client late(port.value());
  ASSERT_TRUE(late.send_all("again"));
  EXPECT_EQ(late.recv_exact(5), "again");
  on_loop(r.get(), [&] { r->close_all(); });
  EXPECT_TRUE(late.wait_closed());
  stop_all({r.get()});
  EXPECT_EQ(chained.closes, 7);
}

TEST_P(ReactorTest, FileWritesSyncsAndBlockingWorkCompleteOnTheLoop) {
  MAKE_OR_SKIP(r, options());
  char path[] = "/tmp/tally-reactor-file-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const int ro = ::open(path, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(ro, 0);
  start(r.get());
  // Two writes (the second synced) and a sync, each completing on the loop's own thread, in order.
  const std::string a(100000, 'a');  // over one page: io_uring may write it in several parts
  const std::string b = "tail";
  std::vector<std::pair<std::string, int>> done;
  std::thread::id loop_thread, callback_thread;
  on_loop(r.get(), [&] {
    loop_thread = std::this_thread::get_id();
    r->file_write(fd, 0, a, false, [&](int rc) { done.emplace_back("a", rc); });
    r->file_write(fd, a.size(), b, true, [&](int rc) {
      callback_thread = std::this_thread::get_id();
      done.emplace_back("b", rc);
    });
    r->file_sync(fd, [&](int rc) { done.emplace_back("sync", rc); });
    // A descriptor open for reading only: the write fails with -EBADF, reported, not thrown away.
    r->file_write(ro, 0, b, true, [&](int rc) { done.emplace_back("readonly", rc); });
    r->run_blocking([] { return 42; }, [&](int rc) { done.emplace_back("blocking", rc); });
  });
  ASSERT_TRUE(eventually(r.get(), [&] { return done.size() == 5; }));
  // The end-of-iteration hook runs on every iteration, on the loop's thread.
  std::atomic<int> ends{0};
  on_loop(r.get(), [&] { r->set_end_of_iteration([&] { ends++; }); });
  on_loop(r.get(), [] {});
  on_loop(r.get(), [] {});
  const int ends_seen = ends.load();
  on_loop(r.get(), [&] { r->set_end_of_iteration(nullptr); });
  stop_all({r.get()});
  EXPECT_GE(ends_seen, 2);
  EXPECT_EQ(callback_thread, loop_thread);
  std::map<std::string, int> by_name(done.begin(), done.end());
  EXPECT_EQ(by_name["a"], 0);
  EXPECT_EQ(by_name["b"], 0);
  EXPECT_EQ(by_name["sync"], 0);
  EXPECT_EQ(by_name["readonly"], -EBADF);
  EXPECT_EQ(by_name["blocking"], 42);
  std::string got(a.size() + b.size() + 10, '\0');
  const ssize_t n = ::pread(fd, got.data(), got.size(), 0);
  EXPECT_EQ(n, static_cast<ssize_t>(a.size() + b.size()));
  got.resize(n > 0 ? static_cast<size_t>(n) : 0);
  EXPECT_EQ(got, a + b);
  ::close(ro);
  ::close(fd);
  ::unlink(path);
}

// ---- outgoing connections -------------------------------------------------------------------

// Collects what a connected Conn receives; counts on_close.
class CollectHandler : public ConnHandler {
 public:
  void on_data(Conn& c, std::string_view data) override { got.append(data); }
  void on_close(Conn& c) override { closed++; }
  std::string got;
  int closed = 0;
};

// A port nobody listens on: bound, then released.
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

// A listener that never accepts, its queue filled: further SYNs are dropped, so a connect hangs.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 0), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    for (int i = 0; i < 4; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      fillers_.push_back(c);
    }
    std::this_thread::sleep_for(50ms);  // let the fillers' handshakes settle into the full queue
  }
  ~BlackHole() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  uint16_t port = 0;

 private:
  int fd_ = -1;
  std::vector<int> fillers_;
};

TEST_P(ReactorTest, ConnectedConnBehavesLikeAnAcceptedOne) {
  MAKE_OR_SKIP(r, options());
  EchoHandler echo;
  Result<uint16_t> port = r->listen("127.0.0.1", 0, [&](Conn&) { return &echo; });
  ASSERT_TRUE(port.is_ok());
  CollectHandler out;
  const std::string data = pattern(3u << 20, 11);  // several sends, partial ones likely
  std::promise<std::string> connected;
  // Called before run(): the connect starts with the first loop iteration.
  r->connect("127.0.0.1", port.value(), &out, [&](Result<Conn*> c) {
    if (!c.is_ok()) {
      connected.set_value("error: " + c.status().to_string());
      return;
    }
    c.value()->out().append(data);  // written by the callback, like an AcceptFn's greeting
    connected.set_value(c.value()->peer());
  });
  start(r.get());
  auto fut = connected.get_future();
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(fut.get(), "127.0.0.1:" + std::to_string(port.value()));
  EXPECT_TRUE(eventually(r.get(), [&] { return out.got.size() == data.size(); }));
  EXPECT_TRUE(on_loop(r.get(), [&] { return out.got == data; }));
  // Both ends are Conns of this reactor; closing ours closes the accepted one through its FIN.
  EXPECT_EQ(on_loop(r.get(), [&] { return r->connection_count(); }), size_t{2});
  on_loop(r.get(), [&] {
    for (uint64_t id = 1; id < 10; ++id) {
      Conn* c = r->find(id);
      if (c != nullptr && c->handler() == &out) c->close_after_flush();
    }
  });
  EXPECT_TRUE(eventually(r.get(), [&] { return r->connection_count() == 0; }));
  stop_all({r.get()});
  EXPECT_EQ(out.closed, 1);
  EXPECT_EQ(echo.closed.load(), 1);
  EXPECT_EQ(r->stats().connects, 1u);
  EXPECT_EQ(r->stats().accepted, 1u);
  EXPECT_EQ(r->stats().connect_failures, 0u);
}

TEST_P(ReactorTest, ConnectRefusedIsReportedThroughTheCallback) {
  MAKE_OR_SKIP(r, options());
  start(r.get());
  CollectHandler never;
  std::promise<Status> result;
  const uint16_t port = unused_port();
  on_loop(r.get(), [&] {
    r->connect("127.0.0.1", port, &never, [&](Result<Conn*> c) {
      result.set_value(c.is_ok() ? Status::ok() : c.status());
    });
  });
  auto fut = result.get_future();
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  const Status st = fut.get();
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find("refused"), std::string::npos) << st.to_string();
  stop_all({r.get()});
  EXPECT_EQ(never.closed, 0);
  EXPECT_EQ(r->stats().connect_failures, 1u);
  EXPECT_EQ(r->connection_count(), 0u);
}

TEST_P(ReactorTest, ConnectTimesOutAndPendingConnectsFailAtStop) {
  MAKE_OR_SKIP(r, options());
  BlackHole hole;
  start(r.get());
  CollectHandler never;
  std::promise<Status> short_result;
  std::promise<Status> long_result;
  const auto started = std::chrono::steady_clock::now();
  on_loop(r.get(), [&] {
    r->connect("127.0.0.1", hole.port, &never, [&](Result<Conn*> c) {
      short_result.set_value(c.is_ok() ? Status::ok() : c.status());
    }, 200);
    r->connect("127.0.0.1", hole.port, &never, [&](Result<Conn*> c) {
      long_result.set_value(c.is_ok() ? Status::ok() : c.status());
    }, 60000);
  });
  auto short_fut = short_result.get_future();
  ASSERT_EQ(short_fut.wait_for(10s), std::future_status::ready);
  const Status st = short_fut.get();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 190ms);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find("timed out"), std::string::npos) << st.to_string();
  stop_all({r.get()});  // the 60 s connect must not hold run() up
  auto long_fut = long_result.get_future();
  ASSERT_EQ(long_fut.wait_for(0s), std::future_status::ready);
  const Status stopped = long_fut.get();
  EXPECT_NE(stopped.message().find("stopped"), std::string::npos) << stopped.to_string();
  EXPECT_EQ(r->stats().connect_failures, 2u);
  EXPECT_EQ(never.closed, 0);
}

TEST_P(ReactorTest, ConnectToABadAddressFailsLater) {
  MAKE_OR_SKIP(r, options());
  start(r.get());
  CollectHandler never;
  std::promise<Status> result;
  bool inside = true;
  on_loop(r.get(), [&] {
    r->connect("no such host.invalid", 1, &never, [&](Result<Conn*> c) {
      EXPECT_FALSE(inside);  // never from inside connect()
      result.set_value(c.is_ok() ? Status::ok() : c.status());
    });
    inside = false;
  });
  auto fut = result.get_future();
  ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(fut.get().is_ok());
  stop_all({r.get()});
}

INSTANTIATE_TEST_SUITE_P(Backends, ReactorTest,
                         ::testing::Values(Variant{Backend::kUring, true, "uring"},
                                           Variant{Backend::kUring, false, "uring_single_shot"},
                                           Variant{Backend::kEpoll, false, "epoll"}),
                         [](const ::testing::TestParamInfo<Variant>& info) { return std::string(info.param.name); });

TEST(ReactorCreate, FallsBackToEpollWhenUringIsOff) {
  const char* before = std::getenv("TALLY_IO_URING");
  const std::string saved = before == nullptr ? "" : before;
  ::setenv("TALLY_IO_URING", "off", 1);
  Result<std::unique_ptr<Reactor>> automatic = Reactor::create(ReactorOptions{});
  ReactorOptions explicit_uring;
  explicit_uring.backend = Backend::kUring;
  Result<std::unique_ptr<Reactor>> forced = Reactor::create(explicit_uring);
  if (before == nullptr) {
    ::unsetenv("TALLY_IO_URING");
  } else {
    ::setenv("TALLY_IO_URING", saved.c_str(), 1);
  }
  ASSERT_TRUE(automatic.is_ok());
  EXPECT_STREQ(automatic.value()->backend_name(), "epoll");
  ASSERT_FALSE(forced.is_ok());
  EXPECT_EQ(forced.status().code(), Code::kUnavailable);
}

TEST(ReactorCreate, RejectsBadOptions) {
  ReactorOptions o;
  o.ring_entries = 1000;  // not a power of two
  EXPECT_EQ(Reactor::create(o).status().code(), Code::kInvalidArgument);
  o = ReactorOptions{};
  o.max_connections = 0;
  EXPECT_EQ(Reactor::create(o).status().code(), Code::kInvalidArgument);
  o = ReactorOptions{};
  o.recv_chunk_bytes = 1;
  EXPECT_EQ(Reactor::create(o).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tally::net
