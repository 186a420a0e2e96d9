// The reactor of tallyd: one event loop per core that owns its connections, timers and posted tasks.
// Two backends behind one interface: io_uring (probed at start-up) and epoll (the fallback).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "host/common/status.h"

namespace tally::net {

enum class Backend { kAuto, kUring, kEpoll };

const char* backend_label(Backend b);  // "auto", "io_uring", "epoll"

struct ReactorOptions {
  Backend backend = Backend::kAuto;
  size_t max_connections = 10000;       // per reactor; beyond it new connections are accepted and closed at once
  size_t recv_chunk_bytes = 16 * 1024;  // provided-buffer / read size
  size_t max_output_bytes = 64u << 20;  // a connection whose pending output exceeds this is closed
  uint32_t ring_entries = 4096;
  // io_uring only: use multishot accept/recv and a provided buffer ring when the kernel has them.
  // Off forces the single-shot path that older kernels take (tests use it to cover that path).
  bool uring_multishot = true;
  // io_uring only: number of provided receive buffers (a power of two); bounds the receive memory
  // to recv_buffer_count * recv_chunk_bytes per reactor (8 MiB by default). Buffers return to the
  // ring as soon as on_data returns, so only the completions of one loop iteration hold them.
  uint32_t recv_buffer_count = 512;
};

// Counters of one reactor; read them on the reactor's thread or after run() returned.
struct ReactorStats {
  uint64_t accepted = 0;              // connections handed to an AcceptFn
  uint64_t refused = 0;               // closed at once: max_connections reached or AcceptFn said no
  uint64_t closed = 0;                // connections that got on_close
  uint64_t closed_output_limit = 0;   // closed because pending output exceeded max_output_bytes
  uint64_t bytes_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t sends = 0;                 // send/writev system calls or io_uring send operations
  uint64_t partial_sends = 0;         // sends that left bytes behind (kernel buffer full)
  uint64_t loop_iterations = 0;
  uint64_t file_ops = 0;              // file writes and syncs completed (file_write, file_sync)
  uint64_t connects = 0;              // outgoing connections established by connect()
  uint64_t connect_failures = 0;      // connect() calls that ended in an error (refused, timeout, stop)
};

class Conn;
class ReactorCore;

// One per connection, owned by the caller; the reactor never deletes it.
class ConnHandler {
 public:
  virtual ~ConnHandler() = default;
  virtual void on_data(Conn& c, std::string_view data) = 0;  // data valid only during the call
  virtual void on_close(Conn& c) = 0;                         // last call; Conn is destroyed right after
};

// A transformation of a connection's bytes on the wire (TLS, host/net/tls.h): the handler reads and
// writes plaintext, the socket carries what the filter makes of it.
class ConnFilter {
 public:
  virtual ~ConnFilter() = default;
  // Bytes received: plaintext for the handler is appended to `plain`. false: the connection must close
  // (a failed handshake, a bad record, the peer's close_notify), after sending what the filter owes.
  virtual bool input(std::string_view wire, std::string& plain) = 0;
  // Bytes to send: what the filter owes the peer (handshake records, alerts), then `plain` encrypted,
  // appended to `wire`. Consumes `plain` (all of it, or none while the handshake is unfinished).
  // false: the connection must close.
  virtual bool output(std::string& plain, std::string& wire) = 0;
  // The filter owes the peer bytes of its own (a handshake step).
  virtual bool has_output() const = 0;
  // A short description for logs and CLIENT LIST ("TLSv1.3"); empty before the handshake ends.
  virtual std::string describe() const = 0;
};

// One accepted connection, owned by the reactor; used only on the reactor's thread.
class Conn {
 public:
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  virtual ~Conn() = default;

  uint64_t id() const { return id_; }  // unique per reactor, never reused
  const std::string& peer() const { return peer_; }  // "ip:port"
  bool peer_is_loopback() const { return peer_is_loopback_; }
  uint16_t local_port() const { return local_port_; }
  // Append reply bytes; the reactor writes them after the current batch of events
  // (one write per connection per loop iteration).
  std::string& out() { return out_; }
  // Bytes waiting to go out (one more while a filter owes the peer bytes of its own).
  size_t pending_output_bytes() const {
    return out_.size() + (sending_.size() - sending_offset_) + (filter_ != nullptr && filter_->has_output() ? 1 : 0);
  }
  void mark_output();        // call after appending to out() from outside on_data (e.g. a posted task)
  void close_after_flush();  // stop reading, send what is pending, then close
  void close_now();
  void pause_reading();      // stop delivering on_data (back-pressure); data stays in the kernel
  void resume_reading();
  void set_handler(ConnHandler* h) { handler_ = h; }
  ConnHandler* handler() const { return handler_; }
  bool is_closing() const { return closing_; }  // close_now/close_after_flush was called or the peer left
  // Sets the filter bytes pass through (AcceptFn or connect's callback, before any data).
  void set_filter(std::unique_ptr<ConnFilter> f) { filter_ = std::move(f); }
  const ConnFilter* filter() const { return filter_.get(); }

 protected:
  Conn(ReactorCore* owner, uint64_t id, int fd);

 private:
  friend class ReactorCore;
  friend class EpollReactor;
  friend class UringReactor;

  ReactorCore* owner_;
  uint64_t id_;
  int fd_;
  std::string peer_;
  bool peer_is_loopback_ = false;
  uint16_t local_port_ = 0;
  ConnHandler* handler_ = nullptr;
  std::unique_ptr<ConnFilter> filter_;

  // Output is double-buffered: out_ takes appends while sending_[sending_offset_..] is on the wire,
  // so a send in flight never sees its buffer move.
  std::string out_;
  std::string sending_;
  size_t sending_offset_ = 0;

  bool read_paused_ = false;    // pause_reading() by the handler (or draining before close)
  bool draining_ = false;       // close once pending output is sent
  bool closing_ = false;        // queued for reaping: on_close then destruction
  bool in_dirty_list_ = false;  // queued for a flush this iteration
  bool in_resume_list_ = false;
};

// Called on the reactor's thread for each accepted connection; return the handler, or nullptr to refuse (closed).
using AcceptFn = std::function<ConnHandler*(Conn&)>;

// The end of a connect(): the new connection, or why there is none (kUnavailable: refused, unreachable,
// timed out, the reactor stopped; kResourceExhausted: max_connections; kInvalidArgument: bad address).
using ConnectFn = std::function<void(Result<Conn*>)>;

inline constexpr uint64_t kConnectTimeoutMsDefault = 1000;

// Thread-safety: post() and stop() may be called from any thread; everything else on the reactor's
// thread (or before run() starts).
class Reactor {
 public:
  static Result<std::unique_ptr<Reactor>> create(const ReactorOptions& opts);  // probes io_uring, falls back
  virtual ~Reactor() = default;
  virtual const char* backend_name() const = 0;  // "io_uring" or "epoll"
  // Listens on host:port with SO_REUSEPORT so every reactor can listen on the same port; port 0 picks one.
  virtual Result<uint16_t> listen(const std::string& host, uint16_t port, AcceptFn on_accept) = 0;
  // Opens a TCP connection to host:port (a numeric address or a name, resolved on the calling thread).
  // `done` runs later on the reactor's thread, never inside connect(): with the Conn, which from then on
  // behaves exactly like an accepted one and reports to `handler`, or with the error. Reactor thread
  // (or before run(): it then starts with the first loop iteration). Pending connects fail with
  // kUnavailable when run() returns.
  virtual void connect(const std::string& host, uint16_t port, ConnHandler* handler, ConnectFn done,
                       uint64_t timeout_ms = kConnectTimeoutMsDefault) = 0;
  virtual void post(std::function<void()> task) = 0;  // any thread; runs on the reactor's thread, FIFO
  virtual uint64_t add_timer(uint64_t period_ms, std::function<void()> fn) = 0;  // periodic, reactor thread
  virtual void cancel_timer(uint64_t id) = 0;
  virtual Conn* find(uint64_t conn_id) = 0;  // nullptr if closed
  virtual size_t connection_count() const = 0;
  // On the calling thread until stop(); closes all connections before returning. Call it from the same
  // thread every time: an io_uring ring accepts only the thread that first ran it.
  virtual void run() = 0;
  virtual void stop() = 0;  // any thread
  virtual void close_all() = 0;
  // Runs once per loop iteration after timers, posted tasks and resumed reads, before output is
  // flushed: where a shard closes what the iteration gathered (its log's group commit). Set it before
  // run(); reactor thread only.
  virtual void set_end_of_iteration(std::function<void()> fn) = 0;
  // File I/O that never blocks the reactor's thread; reactor thread only. `done` runs on the reactor's
  // thread with 0 or -errno once everything finished. file_write writes all of `bytes` (the caller keeps
  // them alive until done) at `offset` of `fd` and then, with `sync`, fdatasyncs it: one linked
  // io_uring submission, or the reactor's file thread on the epoll backend.
  virtual void file_write(int fd, uint64_t offset, std::string_view bytes, bool sync,
                          std::function<void(int)> done) = 0;
  virtual void file_sync(int fd, std::function<void(int)> done) = 0;
  // Blocking work (creating and preallocating files, deleting them) on the reactor's file thread,
  // started on first use; `done` runs on the reactor's thread with what `work` returned.
  virtual void run_blocking(std::function<int()> work, std::function<void(int)> done) = 0;
  virtual ReactorStats stats() const = 0;
  // What the start-up probe found, e.g. "multishot_accept=1 multishot_recv=1 buf_ring=1"; for logs and INFO.
  virtual std::string features() const = 0;
};

}  // namespace tally::net
