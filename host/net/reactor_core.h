// The backend-independent half of a reactor: connection table, posted tasks, timers, the
// per-iteration flush and deferred close. Backends (epoll, io_uring) only move bytes and events.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "host/net/reactor.h"

namespace tally::net {

inline constexpr size_t kPostsPerIterationMax = 4096;   // posted tasks run per loop iteration
inline constexpr size_t kTimersPerIterationMax = 1024;  // timer callbacks run per loop iteration
inline constexpr size_t kTimersMax = 65536;             // live timers per reactor
inline constexpr size_t kListenersMax = 16;             // listening sockets per reactor
inline constexpr int kWaitMaxMs = 1000;                 // longest sleep without an event
inline constexpr uint64_t kAcceptRetryMs = 100;         // pause before accepting again after EMFILE

// An outgoing connection between connect() and its end (connected, failed, timed out, aborted).
// Owned by the core; a backend watches `fd` for writability and calls finish_connect when it fires.
struct PendingConnect {
  uint64_t id = 0;
  int fd = -1;
  std::string target;  // "host:port", for messages
  uint64_t timeout_ms = 0;
  ConnHandler* handler = nullptr;
  ConnectFn done;
  uint64_t timer_id = 0;     // the timeout; 0 once it fired or was cancelled
  bool timed_out = false;
  bool aborted = false;      // run() is returning
  bool disarm_sent = false;  // the backend was told to stop watching
  int watch_error = 0;       // an errno the backend's watch itself ended with
};

class ReactorCore : public Reactor {
 public:
  explicit ReactorCore(const ReactorOptions& opts);
  ~ReactorCore() override;

  Result<uint16_t> listen(const std::string& host, uint16_t port, AcceptFn on_accept) override;
  void connect(const std::string& host, uint16_t port, ConnHandler* handler, ConnectFn done,
               uint64_t timeout_ms) override;
  void post(std::function<void()> task) override;
  uint64_t add_timer(uint64_t period_ms, std::function<void()> fn) override;
  void cancel_timer(uint64_t id) override;
  Conn* find(uint64_t conn_id) override;
  size_t connection_count() const override { return conns_.size(); }
  void run() override;
  void stop() override;
  void close_all() override;
  ReactorStats stats() const override { return stats_; }
  void set_end_of_iteration(std::function<void()> fn) override;
  // The epoll backend's file I/O (io_uring overrides it): blocking calls on the file thread.
  void file_write(int fd, uint64_t offset, std::string_view bytes, bool sync, std::function<void(int)> done) override;
  void file_sync(int fd, std::function<void(int)> done) override;
  void run_blocking(std::function<int()> work, std::function<void(int)> done) override;

  // Called by Conn.
  void mark_dirty(Conn& c);
  void check_output(Conn& c);
  void request_close(Conn& c);
  void request_drain(Conn& c);
  void set_paused(Conn& c, bool paused);

 protected:
  struct Listener {
    int fd = -1;
    uint16_t port = 0;
    AcceptFn on_accept;
  };

  // Sets up the wake eventfd; backends call it from their own init.
  Status init_core();

  // Backend hooks.
  virtual void poll_io(int timeout_ms) = 0;               // wait up to timeout_ms, dispatch I/O events
  virtual void arm_listener(size_t index) = 0;            // start accepting on listeners_[index]
  virtual std::unique_ptr<Conn> make_conn(uint64_t id, int fd) = 0;
  virtual void start_reading(Conn& c) = 0;                // first arm after accept
  virtual void update_reading(Conn& c) = 0;               // paused/draining state changed
  virtual void flush(Conn& c) = 0;                        // write pending output (one write)
  virtual void release(std::unique_ptr<Conn> c) = 0;      // after on_close: close the socket, free
  virtual Status arm_connect(PendingConnect& p) = 0;      // watch p.fd until writable, then finish_connect(p)
  virtual void disarm_connect(PendingConnect& p) = 0;     // stop watching: finish_connect(p) now or on completion
  virtual void adopt_connected(int fd) {}                 // a connected socket is about to become a Conn
  virtual void before_run() {}                            // on the loop thread, before the first poll
  virtual void after_run() {}                             // run() is about to return

  // Helpers for backends.
  void accept_fd(size_t listener_index, int fd);        // admits or refuses a new socket
  void deliver(Conn& c, std::string_view data);          // on_data, then the output-limit check
  void consume_sent(Conn& c, size_t sent_bytes);         // bytes of sending_ left the process
  void take_output(Conn& c);                             // moves out_ into sending_ when idle
  void peer_closed(Conn& c);                             // EOF from the peer: send what is pending, close
  void schedule_once(uint64_t delay_ms, std::function<void()> fn);
  void finish_connect(PendingConnect& p);                // the watch ended: admit the Conn or report why not
  bool wants_reading(const Conn& c) const { return !c.read_paused_ && !c.draining_ && !c.closing_; }
  uint64_t drain_wake();                                 // reads the eventfd (epoll) after it fired
  int wake_fd() const { return wake_fd_; }
  void wake();                                           // makes the eventfd readable
  void stop_file_thread();                               // runs what is queued, then joins the thread
  // Counts a completed file operation (the io_uring backend completes its own).
  void count_file_op() { stats_.file_ops++; }

  ReactorOptions opts_;
  ReactorStats stats_;
  std::vector<Listener> listeners_;

 private:
  struct Timer {
    uint64_t period_us = 0;
    uint64_t due_us = 0;
    bool once = false;
    std::function<void()> fn;
  };

  static uint64_t now_us();  // microseconds: whole milliseconds would let timers fire up to 1 ms early
  int next_timeout_ms();
  void run_timers();
  void run_posted();
  void run_resumes();
  void flush_dirty();
  void reap_closed();
  void forget(Conn& c);  // drops c from the dirty and closing lists
  void connect_timed_out(uint64_t connect_id);
  void abort_connects();  // run() is returning: every pending connect fails
  void fail_connect_later(ConnectFn done, Status why);  // reports a failure from the loop, not the caller
  uint64_t add_timer_impl(uint64_t period_ms, std::function<void()> fn, bool once);

  void file_thread_main();

  std::function<void()> end_of_iteration_;

  // The file thread: blocking file work off the loop (the epoll backend's writes and syncs, and
  // preparing files on either backend).
  std::thread file_thread_;
  std::mutex file_mu_;
  std::condition_variable file_cv_;
  std::deque<std::function<void()>> file_tasks_;  // guarded by file_mu_
  bool file_stop_ = false;                       // guarded by file_mu_

  int wake_fd_ = -1;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};
  std::thread::id loop_thread_;

  std::mutex post_mu_;
  std::vector<std::function<void()>> post_shared_;  // guarded by post_mu_
  std::vector<std::function<void()>> post_local_;   // swapped out of post_shared_, run in order
  size_t post_local_next_ = 0;

  std::unordered_map<uint64_t, Timer> timers_;
  std::set<std::pair<uint64_t, uint64_t>> timer_queue_;  // (due_us, id)
  uint64_t next_timer_id_ = 1;

  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_conn_id_ = 1;
  std::vector<Conn*> dirty_;
  std::string filter_plain_;  // deliver()'s plaintext buffer for filtered connections, reused
  std::vector<Conn*> closing_;
  std::vector<uint64_t> resumes_;  // ids: a conn may close before its resume runs

  std::unordered_map<uint64_t, std::unique_ptr<PendingConnect>> connects_;
  uint64_t next_connect_id_ = 1;
  bool loop_leaving_ = false;  // run() left its loop: new connects wait for the next run()
};

}  // namespace tally::net
