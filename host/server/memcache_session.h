// A memcached text/meta protocol connection over the same keyspace as RESP. Each request runs on the
// shard that owns its key; while one is away on another shard, the connection waits, so replies keep
// request order without a queue.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/net/reactor.h"
#include "host/proto/memcache_parser.h"

namespace tally::server {

class Server;
struct Shard;

class MemcacheSession final : public net::ConnHandler {
 public:
  MemcacheSession(Server& server, Shard& home, net::Conn& conn);
  ~MemcacheSession() override;
  void on_data(net::Conn& c, std::string_view data) override;
  void on_close(net::Conn& c) override;

 private:
  std::vector<uint32_t> key_shards_;  // scratch: the shard of each key of the request being routed
  void process_input();
  // Runs one parsed request; returns false when it went to other shards (processing waits for it).
  bool handle(const proto::McRequest& req, std::string_view raw);
  void resume(std::string_view reply);
  static MemcacheSession* lookup(Shard& home, uint64_t conn_id);

  Server& server_;
  Shard& home_;
  net::Conn* conn_;
  uint64_t conn_id_;
  proto::McParser parser_;
  proto::McRequest req_;
  std::string in_;
  bool waiting_ = false;  // a request is running on another shard
  bool authenticated_;
  bool closed_ = false;
};

// Executes one memcached request against `shard`'s store (its thread) and appends the reply.
// Retrieval requests may carry several keys, all owned by this shard.
void run_memcache_request(Shard& shard, const proto::McRequest& req, std::string& out);

}  // namespace tally::server
