// The epoll backend: level-triggered readiness, reads into one per-reactor buffer, one sendmsg per
// connection per iteration, EPOLLOUT only while a connection has bytes the kernel did not take.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/backends.h"
#include "host/net/reactor_core.h"

namespace tally::net {

namespace {

constexpr int kEventsPerWaitMax = 256;   // epoll_wait batch
constexpr int kReadsPerEventMax = 4;     // recv calls per readable event before moving on (fairness)
constexpr int kAcceptsPerEventMax = 64;  // accept4 calls per readable listener event
constexpr uint64_t kWakeTag = ~uint64_t{0};  // odd tags are not connections (Conn* are aligned)
constexpr uint64_t kConnectBit = 2;           // a PendingConnect* (8-byte aligned) with this bit set

uint64_t listener_tag(size_t index) { return (uint64_t{index} << 1) | 1; }

}  // namespace

class EpollConn final : public Conn {
 public:
  EpollConn(ReactorCore* owner, uint64_t id, int fd) : Conn(owner, id, fd) {}
  bool registered = false;
  uint32_t interest = 0;   // events registered with epoll
  bool want_out = false;   // the kernel refused part of the last write
  bool writable = false;   // EPOLLOUT fired since then
};

class EpollReactor final : public ReactorCore {
 public:
  explicit EpollReactor(const ReactorOptions& opts) : ReactorCore(opts) {}

  ~EpollReactor() override {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  Status init() {
    TALLY_RETURN_IF_ERROR(init_core());
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return Status::io_error(std::string("epoll_create1: ") + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd(), &ev) != 0) {
      return Status::io_error(std::string("epoll_ctl(eventfd): ") + std::strerror(errno));
    }
    read_buf_ = std::make_unique_for_overwrite<char[]>(opts_.recv_chunk_bytes);
    return Status::ok();
  }

  const char* backend_name() const override { return "epoll"; }
  std::string features() const override { return "level_triggered=1"; }

 protected:
  void poll_io(int timeout_ms) override {
    const int n = ::epoll_wait(epoll_fd_, events_, kEventsPerWaitMax, timeout_ms);
    if (n < 0) {
      TALLY_ASSERT_MSG(errno == EINTR, "epoll_wait failed");
      return;
    }
    TALLY_ASSERT(n <= kEventsPerWaitMax);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events_[i].data.u64;
      if (tag == kWakeTag) {
        drain_wake();
      } else if (tag & 1) {
        accept_ready(static_cast<size_t>(tag >> 1));
      } else if (tag & kConnectBit) {
        // One event per descriptor per wait, and nothing else frees a pending connect meanwhile.
        auto* p = reinterpret_cast<PendingConnect*>(tag & ~kConnectBit);
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p->fd, nullptr);
        finish_connect(*p);
      } else {
        conn_ready(*static_cast<EpollConn*>(events_[i].data.ptr), events_[i].events);
      }
    }
  }

  void arm_listener(size_t index) override {
    TALLY_ASSERT(index < listeners_.size());
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = listener_tag(index);
    const int rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listeners_[index].fd, &ev);
    TALLY_ASSERT_MSG(rc == 0, "epoll_ctl(listener)");
  }

  std::unique_ptr<Conn> make_conn(uint64_t id, int fd) override {
    return std::make_unique<EpollConn>(this, id, fd);
  }

  Status arm_connect(PendingConnect& p) override {
    const auto bits = reinterpret_cast<uint64_t>(&p);
    TALLY_ASSERT((bits & 7) == 0);
    epoll_event ev{};
    ev.events = EPOLLOUT;  // writable once connected; EPOLLERR/EPOLLHUP when refused
    ev.data.u64 = bits | kConnectBit;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, p.fd, &ev) != 0) {
      return Status::io_error(std::string("epoll_ctl(connect): ") + std::strerror(errno));
    }
    return Status::ok();
  }

  void disarm_connect(PendingConnect& p) override {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p.fd, nullptr);
    finish_connect(p);
  }

  void start_reading(Conn& base) override {
    auto& c = static_cast<EpollConn&>(base);
    TALLY_ASSERT(!c.registered);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd_, &ev) != 0) {
      TALLY_LOG_WARN("net: epoll_ctl add conn {}: {}", c.id_, std::strerror(errno));
      c.close_now();
      return;
    }
    c.registered = true;
    c.interest = EPOLLIN;
    update_reading(c);
  }

  void update_reading(Conn& base) override { set_interest(static_cast<EpollConn&>(base)); }

  void flush(Conn& base) override {
    auto& c = static_cast<EpollConn&>(base);
    // Until EPOLLOUT says the socket drained, another write would only return EAGAIN.
    if (c.want_out && !c.writable) return;
    c.writable = false;
    take_output(c);
    const size_t first = c.sending_.size() - c.sending_offset_;
    if (first == 0) return;
    // What the handler appended since goes out in the same call, unless a filter must transform it.
    const size_t second = c.filter_ == nullptr ? c.out_.size() : 0;
    iovec iov[2];
    iov[0] = {c.sending_.data() + c.sending_offset_, first};
    iov[1] = {c.out_.data(), second};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = second == 0 ? 1 : 2;
    const size_t total = first + second;
    stats_.sends++;
    const ssize_t n = ::sendmsg(c.fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        stats_.partial_sends++;
        c.want_out = true;
        set_interest(c);
      } else {
        c.close_now();  // EPIPE, ECONNRESET: the peer is gone
      }
      return;
    }
    const size_t sent = static_cast<size_t>(n);
    TALLY_ASSERT(sent <= total);
    consume_sent(c, std::min(sent, first));
    if (sent > first) {
      take_output(c);  // the rest came out of out_
      consume_sent(c, sent - first);
    }
    const bool partial = sent < total;
    if (partial) stats_.partial_sends++;
    if (partial != c.want_out) {
      c.want_out = partial;
      set_interest(c);
    }
    // A filter's connection sent only what was transformed; what the handler appended meanwhile
    // goes out now, while the socket still takes it.
    if (!partial && c.filter_ != nullptr && !c.closing_ && c.pending_output_bytes() > 0) {
      c.writable = true;
      flush(c);
    }
  }

  void release(std::unique_ptr<Conn> base) override {
    TALLY_ASSERT(base->closing_);
    // close() drops the epoll registration with the last reference to the socket.
    ::close(base->fd_);
  }

 private:
  void set_interest(EpollConn& c) {
    if (c.closing_ || !c.registered) return;  // on its way out, or not registered yet
    // With no bits set epoll still reports EPOLLERR/EPOLLHUP, which conn_ready handles.
    const uint32_t want = (wants_reading(c) ? EPOLLIN : 0u) | (c.want_out ? EPOLLOUT : 0u);
    if (want == c.interest) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = &c;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd_, &ev) != 0) {
      c.close_now();
      return;
    }
    c.interest = want;
  }

  void accept_ready(size_t index) {
    TALLY_ASSERT(index < listeners_.size());
    const int lfd = listeners_[index].fd;
    for (int i = 0; i < kAcceptsPerEventMax; ++i) {
      const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        accept_fd(index, fd);
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or memory: a level-triggered listener would spin, so it sleeps a while.
      TALLY_LOG_WARN("net: accept on port {}: {}; retrying in {} ms", listeners_[index].port,
                     std::strerror(errno), kAcceptRetryMs);
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, lfd, nullptr);
      schedule_once(kAcceptRetryMs, [this, index] { arm_listener(index); });
      return;
    }
  }

  void conn_ready(EpollConn& c, uint32_t events) {
    if (c.closing_) return;
    if (events & EPOLLERR) {
      c.close_now();
      return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && wants_reading(c)) {
      read_ready(c);
    } else if ((events & EPOLLHUP) && !wants_reading(c)) {
      c.close_now();  // both directions are shut; nothing more can be read or written
      return;
    }
    if ((events & EPOLLOUT) && !c.closing_) {
      c.writable = true;
      mark_dirty(c);
    }
  }

  void read_ready(EpollConn& c) {
    const size_t chunk = opts_.recv_chunk_bytes;
    for (int i = 0; i < kReadsPerEventMax && wants_reading(c); ++i) {
      const ssize_t n = ::recv(c.fd_, read_buf_.get(), chunk, MSG_DONTWAIT);
      if (n > 0) {
        deliver(c, std::string_view(read_buf_.get(), static_cast<size_t>(n)));
        if (static_cast<size_t>(n) < chunk) return;  // the socket is most likely drained
        continue;
      }
      if (n == 0) {
        peer_closed(c);
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      c.close_now();
      return;
    }
  }

  int epoll_fd_ = -1;
  std::unique_ptr<char[]> read_buf_;
  epoll_event events_[kEventsPerWaitMax];
};

Result<std::unique_ptr<Reactor>> make_epoll_reactor(const ReactorOptions& opts) {
  auto r = std::make_unique<EpollReactor>(opts);
  TALLY_RETURN_IF_ERROR(r->init());
  return std::unique_ptr<Reactor>(std::move(r));
}

}  // namespace tally::net
