// tally-net-pong: a transport-only RESP server (PING -> +PONG, anything else -> +OK) for measuring
// the reactor against redis-server with redis-benchmark, without the store or command table.
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/reactor.h"

namespace {

using tally::net::Conn;
using tally::net::ConnHandler;

constexpr size_t kInputBytesMax = 1u << 20;  // an unfinished command larger than this closes the connection
constexpr size_t kThreadsMax = 256;

// Counts complete commands (inline or multibulk) and answers each one.
class PongHandler final : public ConnHandler {
 public:
  void on_data(Conn& c, std::string_view data) override {
    in_.append(data);
    size_t pos = 0;
    while (pos < in_.size()) {
      const size_t used = parse_one(std::string_view(in_).substr(pos), c.out());
      if (used == 0) break;
      pos += used;
    }
    in_.erase(0, pos);
    if (in_.size() > kInputBytesMax) c.close_now();
  }
  void on_close(Conn&) override { delete this; }

 private:
  static bool is_ping(std::string_view word) {
    return word.size() == 4 && (word[0] | 0x20) == 'p' && (word[1] | 0x20) == 'i' && (word[2] | 0x20) == 'n' &&
           (word[3] | 0x20) == 'g';
  }

  // Bytes of one complete command at the front of s (0 when incomplete); appends its reply.
  static size_t parse_one(std::string_view s, std::string& out) {
    TALLY_ASSERT(!s.empty());
    const size_t eol = s.find("\r\n");
    if (eol == std::string_view::npos) return 0;
    if (s[0] != '*') {
      const std::string_view line = s.substr(0, eol);
      out.append(is_ping(line.substr(0, line.find(' '))) ? "+PONG\r\n" : "+OK\r\n");
      return eol + 2;
    }
    const long args = std::strtol(std::string(s.substr(1, eol - 1)).c_str(), nullptr, 10);
    size_t pos = eol + 2;
    std::string_view first;
    for (long i = 0; i < args; ++i) {
      const size_t len_eol = s.find("\r\n", pos);
      if (len_eol == std::string_view::npos || s[pos] != '$') return 0;
      const size_t len = std::strtoul(std::string(s.substr(pos + 1, len_eol - pos - 1)).c_str(), nullptr, 10);
      const size_t start = len_eol + 2;
      if (start + len + 2 > s.size()) return 0;
      if (i == 0) first = s.substr(start, len);
      pos = start + len + 2;
    }
    out.append(is_ping(first) ? "+PONG\r\n" : "+OK\r\n");
    return pos;
  }

  std::string in_;
};

std::atomic<bool> g_stop{false};

}  // namespace

int main(int argc, char** argv) {
  uint16_t port = 7379;
  size_t threads = 1;
  tally::net::ReactorOptions opts;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--port=")) port = static_cast<uint16_t>(std::atoi(argv[i] + 7));
    if (arg.starts_with("--threads=")) threads = static_cast<size_t>(std::atoi(argv[i] + 10));
    if (arg == "--io=epoll") opts.backend = tally::net::Backend::kEpoll;
    if (arg == "--io=uring") opts.backend = tally::net::Backend::kUring;
  }
  if (threads == 0 || threads > kThreadsMax) {
    std::fprintf(stderr, "--threads must be 1..%zu\n", kThreadsMax);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::vector<std::unique_ptr<tally::net::Reactor>> reactors;
  for (size_t t = 0; t < threads; ++t) {
    auto r = tally::net::Reactor::create(opts);
    if (!r.is_ok()) {
      std::fprintf(stderr, "reactor: %s\n", r.status().to_string().c_str());
      return 1;
    }
    auto bound = r.value()->listen("127.0.0.1", port, [](Conn&) { return new PongHandler(); });
    if (!bound.is_ok()) {
      std::fprintf(stderr, "listen: %s\n", bound.status().to_string().c_str());
      return 1;
    }
    reactors.push_back(std::move(r.value()));
  }
  std::fprintf(stderr, "pong: %zu reactor(s) on 127.0.0.1:%u, backend %s\n", threads, port,
               reactors[0]->backend_name());
  std::vector<std::thread> loops;
  for (auto& r : reactors) loops.emplace_back([&r] { r->run(); });
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (auto& r : reactors) r->stop();
  for (auto& t : loops) t.join();
  return 0;
}
