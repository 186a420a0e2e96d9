// What the command engine needs of a client connection, whatever its protocol: places in the
// connection's reply order for replies computed later, filled with reply values on the home shard.
#pragma once

#include <cstdint>

#include "host/net/reactor.h"
#include "host/proto/reply_value.h"
#include "host/server/shard.h"

namespace tally::server {

class ClientSession : public net::ConnHandler {
 public:
  // Reserves the next place in the reply order (replies leave in request order).
  virtual uint64_t reserve_reply() = 0;
  // Fills a reserved place with a reply value (several top-level values when a batch of commands
  // shared the place); encodes it in the connection's protocol.
  virtual void complete_reply(uint64_t seq, proto::Reply& reply) = 0;
  // Picks processing up again after the engine held a command back (a partition was moving).
  virtual void resume_processing() = 0;

  // The client session of connection `conn_id` on `home`, if it is still open (replies computed
  // elsewhere arrive after the client may have gone).
  // Only connections that became sessions are ever looked up (the ids come from the sessions
  // themselves), so the handler is one.
  static ClientSession* lookup(Shard& home, uint64_t conn_id) {
    net::Conn* c = home.reactor->find(conn_id);
    return c == nullptr ? nullptr : static_cast<ClientSession*>(c->handler());
  }
};

}  // namespace tally::server
