#include "host/net/reactor_core.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/socket.h"

namespace tally::net {

const char* backend_label(Backend b) {
  switch (b) {
    case Backend::kAuto: return "auto";
    case Backend::kUring: return "io_uring";
    case Backend::kEpoll: return "epoll";
  }
  TALLY_UNREACHABLE();
}

// ---- Conn -----------------------------------------------------------------------------------

Conn::Conn(ReactorCore* owner, uint64_t id, int fd) : owner_(owner), id_(id), fd_(fd) {
  TALLY_ASSERT(owner != nullptr);
  TALLY_ASSERT(fd >= 0 && id > 0);
}

void Conn::mark_output() { owner_->check_output(*this); }
void Conn::close_after_flush() { owner_->request_drain(*this); }
void Conn::close_now() { owner_->request_close(*this); }
void Conn::pause_reading() { owner_->set_paused(*this, true); }
void Conn::resume_reading() { owner_->set_paused(*this, false); }

// ---- ReactorCore ----------------------------------------------------------------------------

ReactorCore::ReactorCore(const ReactorOptions& opts) : opts_(opts) {
  TALLY_ASSERT(opts.recv_chunk_bytes > 0 && opts.max_connections > 0);
  TALLY_ASSERT(opts.max_output_bytes > 0);
}

ReactorCore::~ReactorCore() {
  TALLY_ASSERT(!running_.load());
  for (auto& [id, p] : connects_) ::close(p->fd);  // only when a backend never completed a watch
  stop_file_thread();
  for (const Listener& l : listeners_) ::close(l.fd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status ReactorCore::init_core() {
  TALLY_ASSERT(wake_fd_ < 0);
  // Blocking, so io_uring can wait in a read on it; epoll reads it only when it is readable, and
  // a write blocks only when the 64-bit counter is near overflow, which one write per batch never reaches.
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) return Status::io_error(std::string("eventfd: ") + std::strerror(errno));
  return Status::ok();
}

uint64_t ReactorCore::now_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

Result<uint16_t> ReactorCore::listen(const std::string& host, uint16_t port, AcceptFn on_accept) {
  TALLY_ASSERT(on_accept != nullptr);
  TALLY_ASSERT(!running_.load() || std::this_thread::get_id() == loop_thread_);
  if (listeners_.size() >= kListenersMax) return Status::exhausted("too many listeners");
  Result<int> fd = open_listener(host, port);
  if (!fd.is_ok()) return fd.status();
  Result<uint16_t> bound = bound_port(fd.value());
  if (!bound.is_ok()) {
    ::close(fd.value());
    return bound.status();
  }
  listeners_.push_back(Listener{fd.value(), bound.value(), std::move(on_accept)});
  arm_listener(listeners_.size() - 1);
  return bound.value();
}

void ReactorCore::connect(const std::string& host, uint16_t port, ConnHandler* handler, ConnectFn done,
                          uint64_t timeout_ms) {
  TALLY_ASSERT(handler != nullptr && done != nullptr);
  TALLY_ASSERT(timeout_ms > 0);
  if (!running_.load() || loop_leaving_) {
    // Before run() (or while it returns): start from the loop, where the backend can watch the socket.
    post([this, host, port, handler, done = std::move(done), timeout_ms]() mutable {
      connect(host, port, handler, std::move(done), timeout_ms);
    });
    return;
  }
  TALLY_ASSERT_MSG(std::this_thread::get_id() == loop_thread_, "connect() from another thread");
  const std::string target = host + ":" + std::to_string(port);
  if (conns_.size() + connects_.size() >= opts_.max_connections) {
    fail_connect_later(std::move(done), Status::exhausted("connect to " + target + ": max_connections reached"));
    return;
  }
  Result<int> fd = start_connect(host, port);
  if (!fd.is_ok()) {
    fail_connect_later(std::move(done), fd.status());
    return;
  }
  const uint64_t id = next_connect_id_++;
  auto owned = std::make_unique<PendingConnect>();
  PendingConnect& p = *owned;
  p.id = id;
  p.fd = fd.value();
  p.target = target;
  p.timeout_ms = timeout_ms;
  p.handler = handler;
  p.done = std::move(done);
  connects_.emplace(id, std::move(owned));
  if (Status st = arm_connect(p); !st.is_ok()) {
    ::close(p.fd);
    ConnectFn fn = std::move(p.done);
    connects_.erase(id);
    fail_connect_later(std::move(fn), st);
    return;
  }
  p.timer_id = add_timer_impl(timeout_ms, [this, id] { connect_timed_out(id); }, true);
  TALLY_ASSERT(connects_.size() <= opts_.max_connections);
}

void ReactorCore::fail_connect_later(ConnectFn done, Status why) {
  TALLY_ASSERT(!why.is_ok());
  stats_.connect_failures++;
  post([done = std::move(done), why = std::move(why)] { done(why); });
}

void ReactorCore::connect_timed_out(uint64_t connect_id) {
  auto it = connects_.find(connect_id);
  if (it == connects_.end()) return;
  PendingConnect& p = *it->second;
  p.timer_id = 0;  // a once timer is gone after it fired
  p.timed_out = true;
  if (!p.disarm_sent) {
    p.disarm_sent = true;
    disarm_connect(p);  // may finish (and free) p at once
  }
}

void ReactorCore::abort_connects() {
  std::vector<uint64_t> ids;
  ids.reserve(connects_.size());
  for (const auto& [id, p] : connects_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = connects_.find(id);
    if (it == connects_.end()) continue;
    PendingConnect& p = *it->second;
    p.aborted = true;
    if (!p.disarm_sent) {
      p.disarm_sent = true;
      disarm_connect(p);
    }
  }
}

void ReactorCore::finish_connect(PendingConnect& pending) {
  auto node = connects_.extract(pending.id);
  TALLY_ASSERT(!node.empty());
  std::unique_ptr<PendingConnect> p = std::move(node.mapped());
  if (p->timer_id != 0) cancel_timer(p->timer_id);
  Status why;
  if (p->aborted) {
    why = Status::unavailable("connect to " + p->target + ": the reactor stopped");
  } else if (p->timed_out) {
    why = Status::unavailable("connect to " + p->target + ": timed out after " + std::to_string(p->timeout_ms) + " ms");
  } else {
    const int err = p->watch_error != 0 ? p->watch_error : connect_error(p->fd);
    if (err != 0) why = Status::unavailable("connect to " + p->target + ": " + std::strerror(err));
  }
  if (why.is_ok() && conns_.size() >= opts_.max_connections) {
    why = Status::exhausted("connect to " + p->target + ": max_connections reached");
  }
  if (!why.is_ok()) {
    ::close(p->fd);
    stats_.connect_failures++;
    p->done(why);
    return;
  }
  adopt_connected(p->fd);
  tune_accepted(p->fd);
  const uint64_t id = next_conn_id_++;
  std::unique_ptr<Conn> owned = make_conn(id, p->fd);
  Conn& c = *owned;
  PeerInfo info = describe_accepted(p->fd);
  c.peer_ = std::move(info.peer);
  c.peer_is_loopback_ = info.loopback;
  c.local_port_ = info.local_port;
  c.handler_ = p->handler;
  conns_.emplace(id, std::move(owned));
  stats_.connects++;
  start_reading(c);
  p->done(&c);
  if (!c.closing_ && !c.out_.empty()) mark_dirty(c);  // written by the callback
}

void ReactorCore::post(std::function<void()> task) {
  TALLY_ASSERT(task != nullptr);
  bool was_empty = false;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    was_empty = post_shared_.empty();
    post_shared_.push_back(std::move(task));
  }
  // Only the first post of a batch pays for the wakeup; the reactor drains the whole batch.
  if (was_empty) wake();
}

void ReactorCore::wake() {
  const uint64_t one = 1;
  const ssize_t n = ::write(wake_fd_, &one, sizeof(one));
  // EAGAIN means the counter is saturated, which still wakes the loop.
  TALLY_ASSERT(n == sizeof(one) || errno == EAGAIN);
}

uint64_t ReactorCore::drain_wake() {
  uint64_t value = 0;
  const ssize_t n = ::read(wake_fd_, &value, sizeof(value));
  TALLY_ASSERT(n == sizeof(value) || errno == EAGAIN);
  return n == sizeof(value) ? value : 0;
}

uint64_t ReactorCore::add_timer(uint64_t period_ms, std::function<void()> fn) {
  return add_timer_impl(period_ms, std::move(fn), false);
}

void ReactorCore::schedule_once(uint64_t delay_ms, std::function<void()> fn) {
  add_timer_impl(delay_ms, std::move(fn), true);
}

uint64_t ReactorCore::add_timer_impl(uint64_t period_ms, std::function<void()> fn, bool once) {
  TALLY_ASSERT(fn != nullptr);
  TALLY_ASSERT(!running_.load() || std::this_thread::get_id() == loop_thread_);
  TALLY_ASSERT_MSG(timers_.size() < kTimersMax, "timer table full");
  const uint64_t period_us = (period_ms == 0 ? 1 : period_ms) * 1000;
  const uint64_t id = next_timer_id_++;
  const uint64_t due = now_us() + period_us;
  timers_.emplace(id, Timer{period_us, due, once, std::move(fn)});
  timer_queue_.emplace(due, id);
  return id;
}

void ReactorCore::cancel_timer(uint64_t id) {
  TALLY_ASSERT(!running_.load() || std::this_thread::get_id() == loop_thread_);
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  timer_queue_.erase({it->second.due_us, id});
  timers_.erase(it);
  // A timer whose callback is running sits in timers_ but not in timer_queue_.
  TALLY_ASSERT(timer_queue_.size() <= timers_.size());
}

Conn* ReactorCore::find(uint64_t conn_id) {
  auto it = conns_.find(conn_id);
  if (it == conns_.end() || it->second->closing_) return nullptr;
  return it->second.get();
}

void ReactorCore::stop() {
  stop_requested_.store(true, std::memory_order_release);
  wake();
}

void ReactorCore::close_all() {
  TALLY_ASSERT(!running_.load() || std::this_thread::get_id() == loop_thread_);
  for (auto& [id, c] : conns_) request_close(*c);
  TALLY_ASSERT(closing_.size() >= conns_.size());
}

int ReactorCore::next_timeout_ms() {
  if (post_local_next_ < post_local_.size() || !resumes_.empty() || !dirty_.empty() || !closing_.empty()) {
    return 0;
  }
  if (stop_requested_.load(std::memory_order_acquire)) return 0;
  if (timer_queue_.empty()) return kWaitMaxMs;
  const uint64_t now = now_us();
  const uint64_t due = timer_queue_.begin()->first;
  if (due <= now) return 0;
  // Rounded up: waking before the due time would only spin.
  return static_cast<int>(std::min<uint64_t>((due - now + 999) / 1000, kWaitMaxMs));
}

void ReactorCore::run() {
  TALLY_ASSERT_MSG(!running_.exchange(true), "run() called twice");
  loop_thread_ = std::this_thread::get_id();
  if (stop_requested_.exchange(false)) {
    running_.store(false);  // stop() came first: nothing to do
    return;
  }
  before_run();
  while (!stop_requested_.load(std::memory_order_acquire)) {
    stats_.loop_iterations++;
    poll_io(next_timeout_ms());
    run_timers();
    run_posted();
    run_resumes();
    if (end_of_iteration_) end_of_iteration_();
    flush_dirty();
    reap_closed();
  }
  loop_leaving_ = true;
  close_all();
  reap_closed();
  abort_connects();
  after_run();  // io_uring: the aborted watches complete here
  if (!connects_.empty()) TALLY_LOG_WARN("net: {} connects still pending after run()", connects_.size());
  loop_leaving_ = false;
  TALLY_ASSERT(conns_.empty());
  stop_requested_.store(false, std::memory_order_release);
  running_.store(false);
}

void ReactorCore::set_end_of_iteration(std::function<void()> fn) {
  TALLY_ASSERT(!running_.load() || std::this_thread::get_id() == loop_thread_);
  end_of_iteration_ = std::move(fn);
}

void ReactorCore::run_blocking(std::function<int()> work, std::function<void(int)> done) {
  TALLY_ASSERT(work != nullptr && done != nullptr);
  std::lock_guard<std::mutex> lock(file_mu_);
  TALLY_ASSERT_MSG(!file_stop_, "file work after the reactor stopped");
  if (!file_thread_.joinable()) file_thread_ = std::thread([this] { file_thread_main(); });
  file_tasks_.push_back([this, work = std::move(work), done = std::move(done)]() mutable {
    const int rc = work();
    post([done = std::move(done), rc] { done(rc); });
  });
  file_cv_.notify_one();
}

void ReactorCore::file_write(int fd, uint64_t offset, std::string_view bytes, bool sync, std::function<void(int)> done) {
  TALLY_ASSERT(fd >= 0);
  run_blocking(
      [fd, offset, bytes, sync]() -> int {
        size_t at = 0;
        while (at < bytes.size()) {
          const ssize_t n = ::pwrite(fd, bytes.data() + at, bytes.size() - at, static_cast<off_t>(offset + at));
          if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
          }
          at += static_cast<size_t>(n);
        }
        if (sync && ::fdatasync(fd) != 0) return -errno;
        return 0;
      },
      [this, done = std::move(done)](int rc) {
        count_file_op();
        done(rc);
      });
}

void ReactorCore::file_sync(int fd, std::function<void(int)> done) {
  TALLY_ASSERT(fd >= 0);
  run_blocking([fd]() -> int { return ::fdatasync(fd) == 0 ? 0 : -errno; },
               [this, done = std::move(done)](int rc) {
                 count_file_op();
                 done(rc);
               });
}

void ReactorCore::file_thread_main() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(file_mu_);
      file_cv_.wait(lock, [this] { return file_stop_ || !file_tasks_.empty(); });
      if (file_tasks_.empty()) return;  // stopping, and nothing left to do
      task = std::move(file_tasks_.front());
      file_tasks_.pop_front();
    }
    task();
  }
}

void ReactorCore::stop_file_thread() {
  {
    std::lock_guard<std::mutex> lock(file_mu_);
    file_stop_ = true;
  }
  file_cv_.notify_all();
  if (file_thread_.joinable()) file_thread_.join();
}

void ReactorCore::run_timers() {
  const uint64_t now = now_us();
  for (size_t fired = 0; fired < kTimersPerIterationMax && !timer_queue_.empty(); ++fired) {
    auto [due, id] = *timer_queue_.begin();
    if (due > now) break;
    timer_queue_.erase(timer_queue_.begin());
    auto it = timers_.find(id);
    TALLY_ASSERT(it != timers_.end());
    // The callback may add or cancel timers (itself included), so it runs detached from the table.
    std::function<void()> fn = std::move(it->second.fn);
    const bool once = it->second.once;
    if (once) timers_.erase(it);
    fn();
    if (once) continue;
    it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled by its own callback
    it->second.fn = std::move(fn);
    // Rescheduled from now, not from due: a stalled loop does not fire a burst of catch-up calls.
    it->second.due_us = now + it->second.period_us;
    timer_queue_.emplace(it->second.due_us, id);
  }
  TALLY_ASSERT(timers_.size() == timer_queue_.size());
}

void ReactorCore::run_posted() {
  if (post_local_next_ >= post_local_.size()) {
    post_local_.clear();
    post_local_next_ = 0;
    std::lock_guard<std::mutex> lock(post_mu_);
    post_local_.swap(post_shared_);
  }
  // Bounded so a flood of posts cannot starve the sockets; the rest runs next iteration.
  const size_t end = std::min(post_local_.size(), post_local_next_ + kPostsPerIterationMax);
  while (post_local_next_ < end) {
    std::function<void()> task = std::move(post_local_[post_local_next_]);
    post_local_next_++;
    task();
  }
  TALLY_ASSERT(post_local_next_ <= post_local_.size());
}

void ReactorCore::run_resumes() {
  if (resumes_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(resumes_);
  for (uint64_t id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    c.in_resume_list_ = false;
    if (!c.closing_) update_reading(c);
  }
}

void ReactorCore::mark_dirty(Conn& c) {
  TALLY_ASSERT(c.owner_ == this);
  if (c.in_dirty_list_ || c.closing_) return;
  c.in_dirty_list_ = true;
  dirty_.push_back(&c);
}

void ReactorCore::check_output(Conn& c) {
  TALLY_ASSERT(c.owner_ == this);
  if (c.closing_) {
    c.out_.clear();  // nobody will send it
    return;
  }
  if (c.pending_output_bytes() > opts_.max_output_bytes) {
    // Like Redis's client-output-buffer-limit: a client that does not read its replies is dropped
    // rather than allowed to grow the server's memory without bound.
    TALLY_LOG_WARN("net: closing {} (conn {}): {} bytes of output pending, limit {}", c.peer_, c.id_,
                   c.pending_output_bytes(), opts_.max_output_bytes);
    stats_.closed_output_limit++;
    request_close(c);
    return;
  }
  if (!c.out_.empty()) mark_dirty(c);
}

void ReactorCore::request_close(Conn& c) {
  TALLY_ASSERT(c.owner_ == this);
  if (c.closing_) return;
  // Destruction waits for the end of the iteration: the caller may be inside c's on_data.
  c.closing_ = true;
  c.out_.clear();
  closing_.push_back(&c);
}

void ReactorCore::request_drain(Conn& c) {
  TALLY_ASSERT(c.owner_ == this);
  if (c.closing_ || c.draining_) return;
  c.draining_ = true;
  update_reading(c);
  mark_dirty(c);
}

void ReactorCore::set_paused(Conn& c, bool paused) {
  TALLY_ASSERT(c.owner_ == this);
  if (c.closing_ || c.read_paused_ == paused) return;
  c.read_paused_ = paused;
  if (paused) {
    update_reading(c);
  } else if (!c.in_resume_list_) {
    // Deferred to the loop: resuming may deliver held data, and the caller may be inside on_data.
    c.in_resume_list_ = true;
    resumes_.push_back(c.id_);
  }
}

void ReactorCore::accept_fd(size_t listener_index, int fd) {
  TALLY_ASSERT(listener_index < listeners_.size());
  TALLY_ASSERT(fd >= 0);
  if (conns_.size() >= opts_.max_connections) {
    stats_.refused++;
    ::close(fd);
    return;
  }
  tune_accepted(fd);
  const uint64_t id = next_conn_id_++;
  std::unique_ptr<Conn> owned = make_conn(id, fd);
  Conn& c = *owned;
  PeerInfo info = describe_accepted(fd);
  c.peer_ = std::move(info.peer);
  c.peer_is_loopback_ = info.loopback;
  c.local_port_ = info.local_port;
  conns_.emplace(id, std::move(owned));
  ConnHandler* h = listeners_[listener_index].on_accept(c);
  if (h == nullptr || c.closing_) {
    // Refused: there is no handler to tell, so it goes without on_close.
    stats_.refused++;
    c.handler_ = nullptr;
    forget(c);
    c.closing_ = true;
    std::unique_ptr<Conn> gone = std::move(conns_[id]);
    conns_.erase(id);
    release(std::move(gone));
    return;
  }
  stats_.accepted++;
  c.handler_ = h;
  start_reading(c);
  if (!c.out_.empty()) mark_dirty(c);  // a greeting written by the AcceptFn
}

void ReactorCore::forget(Conn& c) {
  if (c.in_dirty_list_) std::erase(dirty_, &c);
  if (c.closing_) std::erase(closing_, &c);
  c.in_dirty_list_ = false;
  TALLY_ASSERT(std::find(closing_.begin(), closing_.end(), &c) == closing_.end());
}

void ReactorCore::deliver(Conn& c, std::string_view data) {
  TALLY_ASSERT(c.owner_ == this);
  TALLY_ASSERT(!data.empty());
  stats_.bytes_received += data.size();
  if (c.closing_ || c.handler_ == nullptr) return;
  if (c.filter_ != nullptr) {
    // One plaintext buffer per reactor: on_data's data is valid only during the call anyway.
    std::string plain;
    plain.swap(filter_plain_);
    plain.clear();
    const bool ok = c.filter_->input(data, plain);
    if (!plain.empty()) c.handler_->on_data(c, plain);
    if (plain.capacity() <= (1u << 20)) filter_plain_.swap(plain);  // keep a moderate buffer for the next
    if (!ok && !c.closing_) c.close_after_flush();
    if (!c.closing_ && c.filter_->has_output()) mark_dirty(c);
    check_output(c);
    return;
  }
  c.handler_->on_data(c, data);
  check_output(c);
}

void ReactorCore::take_output(Conn& c) {
  if (c.sending_offset_ < c.sending_.size()) return;
  if (c.filter_ != nullptr) {
    if (c.out_.empty() && !c.filter_->has_output()) return;
    c.sending_.clear();
    c.sending_offset_ = 0;
    if (!c.filter_->output(c.out_, c.sending_)) {
      c.out_.clear();
      if (!c.draining_) request_drain(c);  // send the alert, then close
    }
    // Plaintext written before the handshake ended cannot go out once the connection is closing.
    if (c.draining_) c.out_.clear();
    return;
  }
  if (c.out_.empty()) return;
  // Swapping keeps both buffers' capacity, so a steady connection stops allocating.
  c.sending_.clear();
  c.sending_offset_ = 0;
  c.sending_.swap(c.out_);
  TALLY_ASSERT(c.out_.empty());
}

void ReactorCore::consume_sent(Conn& c, size_t sent_bytes) {
  TALLY_ASSERT(c.sending_offset_ + sent_bytes <= c.sending_.size());
  stats_.bytes_sent += sent_bytes;
  c.sending_offset_ += sent_bytes;
  if (c.sending_offset_ == c.sending_.size()) {
    c.sending_.clear();
    c.sending_offset_ = 0;
  }
}

void ReactorCore::peer_closed(Conn& c) {
  if (c.closing_) return;
  // Replies to what the peer sent before its FIN still go out, as with a half-closed socket.
  request_drain(c);
}

void ReactorCore::flush_dirty() {
  // flush() never adds to dirty_ synchronously for another connection, so the list is stable.
  std::vector<Conn*> batch;
  batch.swap(dirty_);
  for (Conn* c : batch) {
    TALLY_ASSERT(c->in_dirty_list_);
    c->in_dirty_list_ = false;
    if (c->closing_) continue;
    if (c->pending_output_bytes() > 0) flush(*c);
    if (!c->closing_ && c->draining_ && c->pending_output_bytes() == 0) request_close(*c);
  }
  batch.clear();
  if (dirty_.empty()) dirty_.swap(batch);  // keep the capacity
}

void ReactorCore::reap_closed() {
  // on_close may close other connections, so the list can grow while it is walked.
  for (size_t i = 0; i < closing_.size(); ++i) {
    Conn* c = closing_[i];
    TALLY_ASSERT(c->closing_);
    if (c->handler_ != nullptr) {
      stats_.closed++;
      c->handler_->on_close(*c);
    }
    if (c->in_dirty_list_) {
      // Marked by another connection's on_close after this iteration's flush.
      std::erase(dirty_, c);
      c->in_dirty_list_ = false;
    }
    auto it = conns_.find(c->id_);
    TALLY_ASSERT(it != conns_.end());
    std::unique_ptr<Conn> gone = std::move(it->second);
    conns_.erase(it);
    release(std::move(gone));
  }
  closing_.clear();
}

}  // namespace tally::net
