// Constructors of the two reactor backends; only reactor.cc chooses between them.
// The io_uring one reports Unavailable when the kernel (or a seccomp filter) refuses io_uring.
#pragma once

#include <memory>

#include "host/common/status.h"
#include "host/net/reactor.h"

namespace tally::net {

Result<std::unique_ptr<Reactor>> make_epoll_reactor(const ReactorOptions& opts);
Result<std::unique_ptr<Reactor>> make_uring_reactor(const ReactorOptions& opts);

}  // namespace tally::net
