#include "host/net/socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "host/common/assert.h"

namespace tally::net {

namespace {

Status errno_status(const char* what, int err) {
  return Status::io_error(std::string(what) + ": " + std::strerror(err));
}

}  // namespace

Result<int> open_listener(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(port);
  const int gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0) {
    return Status::invalid("cannot resolve listen address " + host + ": " + ::gai_strerror(gai));
  }
  TALLY_ASSERT(found != nullptr);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    ::freeaddrinfo(found);
    return errno_status("socket", err);
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, kListenBacklog) != 0) {
    const int err = errno;
    ::freeaddrinfo(found);
    ::close(fd);
    return errno_status(("listen on " + host + ":" + port_text).c_str(), err);
  }
  ::freeaddrinfo(found);
  return fd;
}

Result<int> start_connect(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(port);
  const int gai = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0) return Status::invalid("cannot resolve " + host + ": " + ::gai_strerror(gai));
  TALLY_ASSERT(found != nullptr);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    ::freeaddrinfo(found);
    return errno_status("socket", err);
  }
  const int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
  const int err = errno;
  ::freeaddrinfo(found);
  if (rc != 0 && err != EINPROGRESS && err != EINTR) {
    ::close(fd);
    return Status::unavailable("connect to " + host + ":" + port_text + ": " + std::strerror(err));
  }
  return fd;
}

int connect_error(int fd) {
  TALLY_ASSERT(fd >= 0);
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  if (err != 0) return err;
  // Writable without an error can still mean "not connected" (a poll cancelled early): ask the peer.
  sockaddr_storage addr{};
  socklen_t alen = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) return errno == ENOTCONN ? ENOTCONN : errno;
  return 0;
}

Result<uint16_t> bound_port(int fd) {
  TALLY_ASSERT(fd >= 0);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return errno_status("getsockname", errno);
  }
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return Status::invalid("not an IP socket");
}

PeerInfo describe_accepted(int fd) {
  TALLY_ASSERT(fd >= 0);
  PeerInfo info;
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    char text[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
      info.peer.append(text).append(":").append(std::to_string(ntohs(a->sin_port)));
      info.loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    } else if (addr.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
      // Appended piecewise: GCC 12 warns falsely (-Wrestrict) on chained operator+ here.
      info.peer.append("[").append(text).append("]:").append(std::to_string(ntohs(a->sin6_port)));
      const bool mapped_loopback =
          IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
      info.loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) || mapped_loopback;
    }
  }
  Result<uint16_t> port = bound_port(fd);
  if (port.is_ok()) info.local_port = port.value();
  return info;
}

void tune_accepted(int fd) {
  TALLY_ASSERT(fd >= 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace tally::net
