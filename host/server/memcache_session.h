// A memcached text/meta protocol connection over the same keyspace as RESP. Each request becomes a
// command of the shared command table (get -> mc.get, add -> mc.store E, incr -> mc.arith, flush_all ->
// flushall...) and runs through the same command engine; the session only renders the reply values
// in memcached's words, in request order.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "host/net/reactor.h"
#include "host/proto/memcache_parser.h"
#include "host/proto/reply_value.h"
#include "host/server/client_session.h"
#include "host/server/command_engine.h"

namespace tally::server {

class Server;
struct Shard;

class MemcacheSession final : public ClientSession {
 public:
  MemcacheSession(Server& server, Shard& home, net::Conn& conn);
  ~MemcacheSession() override;
  void on_data(net::Conn& c, std::string_view data) override;
  void on_close(net::Conn& c) override;

  uint64_t reserve_reply() override;
  void complete_reply(uint64_t seq, proto::Reply& reply) override;
  void resume_processing() override;

 private:
  // A reply not yet written, with what rendering it needs of its request (owned: the request's views
  // die with the input buffer).
  struct Pending {
    std::string bytes;
    bool done = false;
    proto::McRequest req;
    std::string owned;  // the bytes req's views point into
  };

  void process_input();
  // Runs one parsed request; false when processing must stop before it (a partition move holds it).
  bool handle(const proto::McRequest& req);
  // Appends reply bytes at the current end of the reply order.
  void emit(std::string_view bytes);
  void flush_completed();
  void stats(std::string& out);

  Server& server_;
  Shard& home_;
  net::Conn* conn_;
  uint64_t conn_id_;
  proto::McParser parser_;
  proto::McRequest req_;
  CommandEngine engine_;
  std::string in_;
  std::string scratch_;                     // rendered reply of an inline request
  std::vector<std::string_view> argv_;      // the command a request became
  std::string args_;                        // bytes that command's numbers and decoded key live in
  const proto::McRequest* current_ = nullptr;  // the request being run, for reserve_reply()
  std::deque<Pending> pending_;
  uint64_t pending_base_ = 0;
  bool authenticated_;
  bool closed_ = false;
  bool paused_ = false;
  bool blocked_ = false;
};

// Renders the reply value of the command `req` became, in memcached's text or meta protocol. Exposed
// for tests.
void render_memcache_reply(const proto::McRequest& req, const proto::Reply& reply, std::string& out);

}  // namespace tally::server
