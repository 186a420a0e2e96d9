// Socket helpers shared by the reactor backends: listening sockets with SO_REUSEPORT,
// peer/local addresses of accepted connections, and per-connection socket options.
#pragma once

#include <cstdint>
#include <string>

#include "host/common/status.h"

namespace tally::net {

inline constexpr int kListenBacklog = 4096;  // capped by net.core.somaxconn

// A non-blocking listening TCP socket bound to host:port with SO_REUSEADDR and SO_REUSEPORT.
// host is a numeric address or a name ("localhost"); port 0 lets the kernel pick.
Result<int> open_listener(const std::string& host, uint16_t port);

// The port a socket is bound to.
Result<uint16_t> bound_port(int fd);

struct PeerInfo {
  std::string peer;        // "ip:port", IPv6 as "[ip]:port"
  bool loopback = false;
  uint16_t local_port = 0;
};

// Describes an accepted socket; empty peer when the socket is already gone.
PeerInfo describe_accepted(int fd);

// A non-blocking TCP socket whose connect() to host:port has started (or, rarely, finished): wait for
// it to become writable, then read connect_error(). Resolves names with getaddrinfo (first address).
Result<int> start_connect(const std::string& host, uint16_t port);

// The pending error of a socket after a non-blocking connect: 0 once it is connected, else an errno.
int connect_error(int fd);

// Options every accepted connection gets: TCP_NODELAY (replies go out as soon as they are written).
void tune_accepted(int fd);

}  // namespace tally::net
