// Reactor::create: validates the options, probes io_uring and falls back to epoll.
#include <mutex>

#include "host/common/assert.h"
#include "host/common/log.h"
#include "host/net/backends.h"
#include "host/net/reactor.h"

namespace tally::net {

namespace {

constexpr size_t kRecvChunkBytesMin = 512;
constexpr size_t kRecvChunkBytesMax = 16u << 20;
constexpr uint32_t kRingEntriesMax = 32768;
constexpr uint32_t kRecvBufferCountMax = 32768;

bool power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

Status validate(const ReactorOptions& o) {
  if (o.max_connections == 0) return Status::invalid("max_connections must be > 0");
  if (o.recv_chunk_bytes < kRecvChunkBytesMin || o.recv_chunk_bytes > kRecvChunkBytesMax) {
    return Status::invalid("recv_chunk_bytes out of range");
  }
  if (o.max_output_bytes == 0) return Status::invalid("max_output_bytes must be > 0");
  if (!power_of_two(o.ring_entries) || o.ring_entries > kRingEntriesMax) {
    return Status::invalid("ring_entries must be a power of two <= 32768");
  }
  if (!power_of_two(o.recv_buffer_count) || o.recv_buffer_count > kRecvBufferCountMax) {
    return Status::invalid("recv_buffer_count must be a power of two <= 32768");
  }
  return Status::ok();
}

// Every reactor of a process makes the same choice; saying it once keeps N-thread start-up quiet.
std::once_flag g_choice_logged;

}  // namespace

Result<std::unique_ptr<Reactor>> Reactor::create(const ReactorOptions& opts) {
  TALLY_RETURN_IF_ERROR(validate(opts));
  if (opts.backend != Backend::kEpoll) {
    Result<std::unique_ptr<Reactor>> uring = make_uring_reactor(opts);
    if (uring.is_ok()) {
      const std::string features = uring.value()->features();
      std::call_once(g_choice_logged, [&] { TALLY_LOG_INFO("net: reactor backend io_uring ({})", features); });
      return uring;
    }
    if (opts.backend == Backend::kUring) return uring.status();  // asked for explicitly: no silent fallback
    const std::string why = uring.status().message();
    std::call_once(g_choice_logged, [&] { TALLY_LOG_WARN("net: io_uring unavailable ({}); reactor backend epoll", why); });
  }
  Result<std::unique_ptr<Reactor>> epoll = make_epoll_reactor(opts);
  if (epoll.is_ok()) {
    std::call_once(g_choice_logged, [] { TALLY_LOG_INFO("net: reactor backend epoll (requested)"); });
  }
  TALLY_ASSERT(epoll.is_ok() || !epoll.status().is_ok());
  return epoll;
}

}  // namespace tally::net
