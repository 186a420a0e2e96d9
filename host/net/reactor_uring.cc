// The io_uring backend: multishot accept, multishot recv into a provided buffer ring, one send per
// connection in flight. Each feature is probed at start-up and falls back to single-shot operations.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/backends.h"
#include "host/net/reactor_core.h"

namespace tally::net {

namespace {

// user_data: a pointer (8-byte aligned) or an index shifted by 3, with the operation in the low bits.
// kTagConnect is 0: a non-null PendingConnect* as it is (every other submission carries a non-zero tag).
enum Tag : uint64_t {
  kTagConnect = 0, kTagRecv = 1, kTagSend = 2, kTagAccept = 3, kTagWake = 4, kTagCancel = 5, kTagFileWrite = 6, kTagFileSync = 7
};
constexpr uint64_t kTagMask = 7;
constexpr uint16_t kBufGroup = 1;
constexpr unsigned kCqesPerPollMax = 16384;  // completions handled per poll_io call
constexpr int kTeardownWaitMs = 1000;        // how long the destructor waits for cancelled operations
constexpr uint32_t kBufCountMax = 32768;     // the kernel's limit for a provided buffer ring

uint64_t pack(const void* p, Tag tag) {
  const auto bits = reinterpret_cast<uint64_t>(p);
  TALLY_ASSERT((bits & kTagMask) == 0);
  return bits | tag;
}

}  // namespace

class UringConn final : public Conn {
 public:
  UringConn(ReactorCore* owner, uint64_t id, int fd) : Conn(owner, id, fd) {}
  uint32_t ops_in_flight = 0;  // a multishot recv counts once, until its final completion
  bool recv_armed = false;
  bool recv_cancel_sent = false;
  bool send_in_flight = false;
  bool released = false;       // on_close ran; memory lives on until ops_in_flight drops to 0
  std::string held_input;      // arrived between pause_reading() and the recv's cancellation
  std::unique_ptr<char[]> recv_buf;  // single-shot mode only
};

// One file_write or file_sync in flight: a write linked to an fdatasync (or the sync alone). A short
// write breaks the link; the rest is submitted again once both completions are in.
struct FileOp {
  int fd = -1;
  uint64_t offset = 0;
  std::string_view bytes;
  size_t written = 0;
  bool sync = false;
  bool write_done = false;    // the write part finished (or there is none)
  int result = 0;             // the first error, -errno
  uint32_t pending = 0;       // completions still to come for the current submission
  std::function<void(int)> done;
};

class UringReactor final : public ReactorCore {
 public:
  explicit UringReactor(const ReactorOptions& opts) : ReactorCore(opts) {}

  ~UringReactor() override {
    if (!ring_ready_) return;
    // after_run() drained the ring on the loop thread (the only one a single-issuer ring accepts).
    if (ops_in_flight_ > 0) TALLY_LOG_WARN("net: {} io_uring operations in flight at destruction", ops_in_flight_);
    io_uring_queue_exit(&ring_);
    if (buf_ring_ != nullptr) ::munmap(buf_ring_, buf_ring_bytes_);
  }

  Status init() {
    if (const char* env = std::getenv("TALLY_IO_URING"); env != nullptr && std::strcmp(env, "off") == 0) {
      return Status::unavailable("io_uring disabled by TALLY_IO_URING=off");
    }
    TALLY_RETURN_IF_ERROR(init_core());
    TALLY_RETURN_IF_ERROR(init_ring());
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (probe == nullptr) return Status::unavailable("io_uring probe failed");
    const bool basic = io_uring_opcode_supported(probe, IORING_OP_RECV) &&
                       io_uring_opcode_supported(probe, IORING_OP_SEND) &&
                       io_uring_opcode_supported(probe, IORING_OP_ACCEPT) &&
                       io_uring_opcode_supported(probe, IORING_OP_READ) &&
                       io_uring_opcode_supported(probe, IORING_OP_POLL_ADD) &&
                       io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    // Multishot accept came with IORING_OP_SOCKET (5.19), multishot recv with IORING_OP_SEND_ZC
    // (6.0); a flag cannot be probed, so the opcode born in the same release stands for it.
    const bool has_socket_op = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
    file_ops_ = io_uring_opcode_supported(probe, IORING_OP_WRITE) && io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    // Per-operation RWF_ flags came with IORING_OP_WRITE (5.6); TALLY_DSYNC_WRITES=off keeps the
    // write + linked fsync pair (for comparisons).
    const char* dsync = std::getenv("TALLY_DSYNC_WRITES");
    dsync_writes_ = file_ops_ && !(dsync != nullptr && std::strcmp(dsync, "off") == 0);
    const bool has_send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    io_uring_free_probe(probe);
    if (!basic) return Status::unavailable("io_uring lacks recv/send/accept/read/poll/cancel");
    multishot_accept_ = opts_.uring_multishot && has_socket_op;
    if (opts_.uring_multishot && has_send_zc) multishot_recv_ = setup_buf_ring();
    return Status::ok();
  }

  const char* backend_name() const override { return "io_uring"; }

  std::string features() const override {
    return std::string("multishot_accept=") + (multishot_accept_ ? "1" : "0") +
           " multishot_recv=" + (multishot_recv_ ? "1" : "0") + " buf_ring=" + (buf_ring_ ? "1" : "0") +
           " defer_taskrun=" + ((ring_flags_ & IORING_SETUP_DEFER_TASKRUN) ? "1" : "0") +
           " file_ops=" + (file_ops_ ? "1" : "0") + " dsync_writes=" + (dsync_writes_ ? "1" : "0");
  }

  void file_write(int fd, uint64_t offset, std::string_view bytes, bool sync, std::function<void(int)> done) override {
    if (!file_ops_ || !active_) {
      ReactorCore::file_write(fd, offset, bytes, sync, std::move(done));
      return;
    }
    TALLY_ASSERT(fd >= 0 && done != nullptr);
    auto* op = new FileOp{fd, offset, bytes, 0, sync, bytes.empty(), 0, 0, std::move(done)};
    submit_file_op(op);
  }

  void file_sync(int fd, std::function<void(int)> done) override { file_write(fd, 0, {}, true, std::move(done)); }

 protected:
  void before_run() override {
    if (ring_flags_ & IORING_SETUP_R_DISABLED) {
      // Enabling on the loop thread makes it the ring's single issuer.
      // liburing 2.3 declares io_uring_enable_rings but does not export it: call the kernel directly.
      const long rc = ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
      TALLY_ASSERT_MSG(rc == 0, "IORING_REGISTER_ENABLE_RINGS");
      ring_flags_ &= ~IORING_SETUP_R_DISABLED;
    }
    // Operations are armed only while run() is active, so after_run() can drain them all.
    active_ = true;
    arm_wake();
    for (size_t i = 0; i < listeners_.size(); ++i) arm_listener(i);
  }

  void after_run() override {
    teardown();
    active_ = false;
  }

  void poll_io(int timeout_ms) override {
    TALLY_ASSERT(timeout_ms >= 0);
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ms / 1000;
    ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1000000;
    io_uring_cqe* cqe = nullptr;
    const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      TALLY_LOG_ERROR("net: io_uring_submit_and_wait_timeout: {}", std::strerror(-rc));
      TALLY_ASSERT_MSG(false, "io_uring wait failed (run() on a thread other than the first?)");
    }
    reap_cqes(false);
  }

  void arm_listener(size_t index) override {
    TALLY_ASSERT(index < listeners_.size());
    if (!active_) return;  // before_run() arms it
    if (listener_armed_.size() < listeners_.size()) listener_armed_.resize(listeners_.size(), false);
    if (listener_armed_[index]) return;  // a retry timer left over from an earlier run()
    listener_armed_[index] = true;
    const int fd = listeners_[index].fd;
    // A non-blocking listener makes io_uring complete accepts with -EAGAIN instead of waiting.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    io_uring_sqe* sqe = get_sqe();
    if (multishot_accept_) {
      io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(sqe, (uint64_t{index} << 3) | kTagAccept);
    ops_in_flight_++;
  }

  Status arm_connect(PendingConnect& p) override {
    TALLY_ASSERT(active_);  // connect() runs only inside run()
    // The socket stays non-blocking until it is connected, so a poll for POLLOUT is the wait.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, p.fd, POLLOUT);
    io_uring_sqe_set_data64(sqe, pack(&p, kTagConnect));
    ops_in_flight_++;
    return Status::ok();
  }

  void disarm_connect(PendingConnect& p) override {
    // The poll completes with -ECANCELED (or with its result, if it won the race): finish_connect then.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, pack(&p, kTagConnect), 0);
    io_uring_sqe_set_data64(sqe, kTagCancel);
    ops_in_flight_++;
  }

  void adopt_connected(int fd) override {
    // Like accepted sockets: blocking, or io_uring would complete receives with -EAGAIN.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }

  std::unique_ptr<Conn> make_conn(uint64_t id, int fd) override {
    auto c = std::make_unique<UringConn>(this, id, fd);
    if (!multishot_recv_) c->recv_buf = std::make_unique_for_overwrite<char[]>(opts_.recv_chunk_bytes);
    return c;
  }

  void start_reading(Conn& base) override {
    auto& c = static_cast<UringConn&>(base);
    TALLY_ASSERT(!c.recv_armed);
    if (wants_reading(c)) arm_recv(c);
  }

  void update_reading(Conn& base) override {
    auto& c = static_cast<UringConn&>(base);
    TALLY_ASSERT(!c.released);
    if (!wants_reading(c)) {
      if (c.recv_armed && !c.recv_cancel_sent) {
        // Stop the kernel from taking more bytes; what it already took waits in held_input.
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel64(sqe, pack(&c, kTagRecv), 0);
        io_uring_sqe_set_data64(sqe, kTagCancel);
        ops_in_flight_++;
        c.recv_cancel_sent = true;
      }
      return;
    }
    if (!c.held_input.empty()) {
      std::string held;
      held.swap(c.held_input);
      deliver(c, held);
      if (!wants_reading(c)) return;
    }
    if (!c.recv_armed) arm_recv(c);
  }

  void flush(Conn& base) override {
    auto& c = static_cast<UringConn&>(base);
    if (c.send_in_flight) return;  // its completion marks the connection dirty again
    take_output(c);
    const size_t len = c.sending_.size() - c.sending_offset_;
    if (len == 0) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, c.fd_, c.sending_.data() + c.sending_offset_, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, pack(&c, kTagSend));
    c.send_in_flight = true;
    c.ops_in_flight++;
    ops_in_flight_++;
    stats_.sends++;
  }

  void release(std::unique_ptr<Conn> base) override {
    auto* c = static_cast<UringConn*>(base.get());
    TALLY_ASSERT(c->closing_ && !c->released);
    c->released = true;
    if (c->ops_in_flight == 0) {
      ::close(c->fd_);
      return;  // base frees it
    }
    // The kernel still holds c's buffers: shut the socket so they complete, free on the last one.
    ::shutdown(c->fd_, SHUT_RDWR);
    if (c->recv_armed && !c->recv_cancel_sent) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_cancel64(sqe, pack(c, kTagRecv), 0);
      io_uring_sqe_set_data64(sqe, kTagCancel);
      ops_in_flight_++;
      c->recv_cancel_sent = true;
    }
    zombies_.emplace(c, std::move(base));
  }

 private:
  Status init_ring() {
    // Newest flags first: DEFER_TASKRUN and SINGLE_ISSUER (6.1) run completions only when this
    // thread waits, COOP_TASKRUN (5.19) avoids interrupting it; older kernels get plain rings.
    const unsigned attempts[] = {
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
        IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    for (unsigned flags : attempts) {
      io_uring_params params{};
      params.flags = flags | IORING_SETUP_CQSIZE;
      params.cq_entries = opts_.ring_entries * 4;  // multishot operations post many completions each
      rc = io_uring_queue_init_params(opts_.ring_entries, &ring_, &params);
      if (rc == 0) {
        ring_flags_ = flags;
        ring_ready_ = true;
        return Status::ok();
      }
      if (rc != -EINVAL) break;  // ENOSYS, EPERM (seccomp), ENOMEM: no flag will help
    }
    return Status::unavailable(std::string("io_uring_queue_init: ") + std::strerror(-rc));
  }

  bool setup_buf_ring() {
    const uint32_t count = opts_.recv_buffer_count;
    TALLY_ASSERT(count > 0 && count <= kBufCountMax && (count & (count - 1)) == 0);
    // liburing 2.3 has no io_uring_setup_buf_ring: map the ring ourselves (page-aligned) and register it.
    buf_ring_bytes_ = sizeof(io_uring_buf) * count;
    void* mem = ::mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return false;
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(mem);
    reg.ring_entries = count;
    reg.bgid = kBufGroup;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
      ::munmap(mem, buf_ring_bytes_);
      return false;
    }
    buf_ring_ = br;
    buf_mask_ = io_uring_buf_ring_mask(count);
    // Not zero-filled: pages the kernel never writes into stay uncommitted.
    bufs_ = std::make_unique_for_overwrite<char[]>(size_t{count} * opts_.recv_chunk_bytes);
    for (uint32_t i = 0; i < count; ++i) {
      io_uring_buf_ring_add(buf_ring_, buf_ptr(i), opts_.recv_chunk_bytes, static_cast<uint16_t>(i), buf_mask_,
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(count));
    return true;
  }

  char* buf_ptr(uint32_t bid) { return bufs_.get() + size_t{bid} * opts_.recv_chunk_bytes; }

  void recycle(uint32_t bid) {
    TALLY_ASSERT(bid < opts_.recv_buffer_count);
    io_uring_buf_ring_add(buf_ring_, buf_ptr(bid), opts_.recv_chunk_bytes, static_cast<uint16_t>(bid), buf_mask_, 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      // The submission queue is full: hand it to the kernel now (a disabled ring cannot, hence the assert).
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    TALLY_ASSERT_MSG(sqe != nullptr, "io_uring submission queue full");
    return sqe;
  }

  void submit_file_op(FileOp* op) {
    TALLY_ASSERT(op->pending == 0);
    if (!op->write_done) {
      io_uring_sqe* sqe = get_sqe();
      const size_t left = op->bytes.size() - op->written;
      io_uring_prep_write(sqe, op->fd, op->bytes.data() + op->written, static_cast<unsigned>(left),
                          op->offset + op->written);
      io_uring_sqe_set_data64(sqe, pack(op, kTagFileWrite));
      op->pending++;
      ops_in_flight_++;
      if (op->sync && dsync_writes_) {
        // One operation: the write is durable (fdatasync semantics for its range) when it completes,
        // so one trip through the kernel's worker instead of a write and a linked fsync.
        sqe->rw_flags = RWF_DSYNC;
        return;
      }
      if (op->sync) sqe->flags |= IOSQE_IO_LINK;  // the sync starts only once the write is done
    }
    if (op->sync) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(sqe, pack(op, kTagFileSync));
      op->pending++;
      ops_in_flight_++;
    }
  }

  void on_file_cqe(FileOp* op, bool is_sync, int res, bool tearing_down) {
    TALLY_ASSERT(op->pending > 0);
    op->pending--;
    if (!is_sync) {
      if (res < 0) {
        if (op->result == 0) op->result = res;
      } else {
        op->written += static_cast<size_t>(res);
        TALLY_ASSERT(op->written <= op->bytes.size());
        if (res == 0 && op->written < op->bytes.size() && op->result == 0) op->result = -EIO;  // no progress
        op->write_done = op->written == op->bytes.size();
      }
    } else if (res < 0 && !(res == -ECANCELED && !op->write_done) && op->result == 0) {
      // A sync cancelled because the write before it came up short is retried with the rest of it.
      op->result = res;
    }
    if (op->pending > 0) return;
    if (op->result == 0 && !op->write_done && !tearing_down) {
      submit_file_op(op);  // the rest of a short write (and its sync)
      return;
    }
    std::function<void(int)> done = std::move(op->done);
    const int result = op->result;
    delete op;
    count_file_op();
    if (!tearing_down) done(result);
  }

  void arm_wake() {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, wake_fd(), &wake_value_, sizeof(wake_value_), 0);
    io_uring_sqe_set_data64(sqe, kTagWake);
    ops_in_flight_++;
  }

  void arm_recv(UringConn& c) {
    TALLY_ASSERT(!c.recv_armed && !c.released);
    io_uring_sqe* sqe = get_sqe();
    if (multishot_recv_) {
      io_uring_prep_recv_multishot(sqe, c.fd_, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = kBufGroup;
    } else {
      io_uring_prep_recv(sqe, c.fd_, c.recv_buf.get(), opts_.recv_chunk_bytes, 0);
    }
    io_uring_sqe_set_data64(sqe, pack(&c, kTagRecv));
    c.recv_armed = true;
    c.recv_cancel_sent = false;
    c.ops_in_flight++;
    ops_in_flight_++;
  }

  void reap_cqes(bool tearing_down) {
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      handle(*cqe, tearing_down);
      if (++seen == kCqesPerPollMax) break;
    }
    io_uring_cq_advance(&ring_, seen);
  }

  void handle(const io_uring_cqe& cqe, bool tearing_down) {
    const uint64_t ud = cqe.user_data;
    if (ud == LIBURING_UDATA_TIMEOUT) return;  // liburing's own wait timeout on kernels without EXT_ARG
    const bool more = (cqe.flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
      TALLY_ASSERT(ops_in_flight_ > 0);
      ops_in_flight_--;
    }
    switch (ud & kTagMask) {
      case kTagConnect: {
        TALLY_ASSERT(ud != 0);
        auto* p = reinterpret_cast<PendingConnect*>(ud);
        if (cqe.res < 0 && cqe.res != -ECANCELED) p->watch_error = -cqe.res;
        if (cqe.res == -ECANCELED && !p->timed_out && !p->aborted) p->watch_error = ECANCELED;
        finish_connect(*p);
        return;
      }
      case kTagWake:
        if (!tearing_down) arm_wake();
        return;
      case kTagCancel:
        return;
      case kTagAccept:
        on_accept_cqe(static_cast<size_t>(ud >> 3), cqe, more, tearing_down);
        return;
      case kTagRecv:
        on_recv_cqe(*reinterpret_cast<UringConn*>(ud & ~kTagMask), cqe, more);
        return;
      case kTagSend:
        on_send_cqe(*reinterpret_cast<UringConn*>(ud & ~kTagMask), cqe);
        return;
      case kTagFileWrite:
      case kTagFileSync:
        on_file_cqe(reinterpret_cast<FileOp*>(ud & ~kTagMask), (ud & kTagMask) == kTagFileSync, cqe.res, tearing_down);
        return;
      default:
        TALLY_UNREACHABLE();
    }
  }

  void on_accept_cqe(size_t index, const io_uring_cqe& cqe, bool more, bool tearing_down) {
    TALLY_ASSERT(index < listeners_.size() && index < listener_armed_.size());
    if (!more) listener_armed_[index] = false;
    if (cqe.res >= 0) {
      if (tearing_down) {
        ::close(cqe.res);
      } else {
        accept_fd(index, cqe.res);
      }
    }
    if (more || tearing_down) return;
    const int err = cqe.res < 0 ? -cqe.res : 0;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
      TALLY_LOG_WARN("net: accept on port {}: {}; retrying in {} ms", listeners_[index].port, std::strerror(err),
                     kAcceptRetryMs);
      schedule_once(kAcceptRetryMs, [this, index] { arm_listener(index); });
      return;
    }
    if (err == EINVAL && multishot_accept_) {
      TALLY_LOG_WARN("net: multishot accept refused by the kernel; using single-shot accept");
      multishot_accept_ = false;
    }
    arm_listener(index);
  }

  void on_recv_cqe(UringConn& c, const io_uring_cqe& cqe, bool more) {
    const bool has_buf = (cqe.flags & IORING_CQE_F_BUFFER) != 0;
    const uint32_t bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
    if (!more) {
      TALLY_ASSERT(c.ops_in_flight > 0);
      c.ops_in_flight--;
      c.recv_armed = false;
      c.recv_cancel_sent = false;
    }
    if (c.released) {
      if (has_buf) recycle(bid);
      maybe_free(c);
      return;
    }
    const int res = cqe.res;
    if (res > 0) {
      const char* data = has_buf ? buf_ptr(bid) : c.recv_buf.get();
      TALLY_ASSERT(has_buf == multishot_recv_);
      const std::string_view bytes(data, static_cast<size_t>(res));
      if (c.closing_ || c.draining_) {
        stats_.bytes_received += bytes.size();  // dropped: the connection is on its way out
      } else if (c.read_paused_ || !c.held_input.empty()) {
        // Paused, or resumed with held bytes not yet delivered (run_resumes() does that later in
        // this iteration): these come after the held ones, so they queue behind them.
        c.held_input.append(bytes);
        TALLY_ASSERT(c.held_input.size() <= size_t{opts_.recv_buffer_count + 1} * opts_.recv_chunk_bytes);
      } else {
        deliver(c, bytes);
      }
      if (has_buf) recycle(bid);
    } else if (res == 0) {
      peer_closed(c);
      return;
    } else if (res != -ENOBUFS && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
      c.close_now();  // ECONNRESET and friends
      return;
    }
    // A multishot recv ends on ENOBUFS or overflow, a single-shot one after every completion.
    if (!c.recv_armed && wants_reading(c)) arm_recv(c);
  }

  void on_send_cqe(UringConn& c, const io_uring_cqe& cqe) {
    TALLY_ASSERT(c.ops_in_flight > 0 && c.send_in_flight);
    c.ops_in_flight--;
    c.send_in_flight = false;
    if (c.released) {
      maybe_free(c);
      return;
    }
    if (c.closing_) return;
    const int res = cqe.res;
    if (res < 0) {
      if (res == -EAGAIN || res == -EINTR) {
        mark_dirty(c);
      } else {
        c.close_now();  // EPIPE, ECONNRESET
      }
      return;
    }
    const size_t asked = c.sending_.size() - c.sending_offset_;
    if (static_cast<size_t>(res) < asked) stats_.partial_sends++;
    consume_sent(c, static_cast<size_t>(res));
    // More to write, or a drain waiting for its last byte: revisit at the end of this iteration.
    if (c.pending_output_bytes() > 0 || c.draining_) mark_dirty(c);
  }

  void maybe_free(UringConn& c) {
    TALLY_ASSERT(c.released);
    if (c.ops_in_flight != 0) return;
    ::close(c.fd_);
    const size_t erased = zombies_.erase(&c);
    TALLY_ASSERT(erased == 1);
  }

  void teardown() {
    TALLY_ASSERT(active_);
    // Cancel everything still in flight (accepts, recvs, the wake read) and wait, so no operation
    // touches a buffer after it is freed and the next run() starts from an empty ring.
    for (auto& [c, owned] : zombies_) ::shutdown(c->fd_, SHUT_RDWR);
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kTagCancel);
    ops_in_flight_++;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTeardownWaitMs);
    while (ops_in_flight_ > 0 && std::chrono::steady_clock::now() < deadline) {
      __kernel_timespec ts{};
      ts.tv_nsec = 10 * 1000000;
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      reap_cqes(true);
    }
    if (ops_in_flight_ > 0) TALLY_LOG_WARN("net: {} io_uring operations still in flight after run()", ops_in_flight_);
  }

  io_uring ring_{};
  bool ring_ready_ = false;
  bool active_ = false;  // between before_run() and after_run()
  std::vector<bool> listener_armed_;  // an accept is in flight for listeners_[i]
  unsigned ring_flags_ = 0;
  bool multishot_accept_ = false;
  bool multishot_recv_ = false;
  bool file_ops_ = false;  // IORING_OP_WRITE and IORING_OP_FSYNC
  bool dsync_writes_ = false;  // synced writes as one RWF_DSYNC write
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  int buf_mask_ = 0;
  std::unique_ptr<char[]> bufs_;
  uint64_t wake_value_ = 0;
  uint64_t ops_in_flight_ = 0;  // operations whose final completion has not been seen
  std::unordered_map<UringConn*, std::unique_ptr<Conn>> zombies_;
};

Result<std::unique_ptr<Reactor>> make_uring_reactor(const ReactorOptions& opts) {
  auto r = std::make_unique<UringReactor>(opts);
  TALLY_RETURN_IF_ERROR(r->init());
  return std::unique_ptr<Reactor>(std::move(r));
}

}  // namespace tally::net
