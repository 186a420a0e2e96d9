// The admin HTTP endpoint: Prometheus text exposition on GET /metrics, served by Boost.Asio on a thread
// of its own, off the data path. It reads only the shards' published atomics.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "host/common/status.h"
#include "host/server/server.h"

namespace tally::server {

class Server;

class Server::AdminHttp {
 public:
  explicit AdminHttp(Server& server);
  ~AdminHttp();
  Result<uint16_t> start(const std::string& bind, uint16_t port);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The exposition text (also used by tests and tallyctl).
std::string render_metrics(Server& server);

}  // namespace tally::server
