// Forwarding inside the cluster (docs/cluster.md "Forwarding"): a command of a client that cannot
// follow redirects travels to its partition's leader as a peer frame (type 20, docs/peer-protocol.md),
// runs there like any client's command, and its reply comes back (type 21) to the shard that asked.
#include <cstring>

#include "host/server/cluster_forward.h"

#include "host/common/log.h"
#include "host/server/cluster_node.h"
#include "host/server/command_engine.h"
#include "host/server/command_table.h"
#include "host/server/partition.h"
#include "host/server/server.h"
#include "host/server/shard.h"
#include "host/transport/peer_transport.h"

namespace tally::server {

namespace {

// Forwards waiting for their replies on one node; past it new ones are refused (BUSY).
constexpr size_t kForwardsPendingMax = 65536;
void put32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

struct Reader {
  std::string_view in;
  size_t at = 0;
  bool take(void* p, size_t n) {
    if (in.size() - at < n) return false;
    std::memcpy(p, in.data() + at, n);
    at += n;
    return true;
  }
};

void answer_error(Shard* from, ClusterNode::ForwardDone done, std::string text) {
  from->reactor->post([done = std::move(done), text = std::move(text)] {
    proto::Reply r;
    r.error(text);
    done(r);
  });
}

}  // namespace

std::string encode_forward(uint64_t id, uint32_t partition, std::span<const std::string_view> argv) {
  std::string payload(reinterpret_cast<const char*>(&id), 8);
  put32(payload, partition);
  put32(payload, static_cast<uint32_t>(argv.size()));
  for (std::string_view a : argv) {
    put32(payload, static_cast<uint32_t>(a.size()));
    payload.append(a);
  }
  return payload;
}

Status decode_forward(std::string_view payload, uint32_t partitions, ForwardRequest& out, bool& id_read) {
  Reader r{payload};
  out = ForwardRequest{};
  id_read = r.take(&out.id, 8);
  if (!id_read) return Status::invalid("short frame");
  uint32_t argc = 0;
  if (!r.take(&out.partition, 4) || !r.take(&argc, 4)) return Status::invalid("short header");
  if (out.partition >= partitions) return Status::invalid("no partition " + std::to_string(out.partition));
  // Each argument takes at least its 4-byte length: a count beyond that is a lie, refused before allocating.
  if (argc == 0 || argc > kForwardArgsMax || argc > (payload.size() - r.at) / 4) {
    return Status::invalid("bad argument count " + std::to_string(argc));
  }
  out.argv.reserve(argc);
  for (uint32_t i = 0; i < argc; ++i) {
    uint32_t len = 0;
    if (!r.take(&len, 4) || payload.size() - r.at < len) {
      return Status::invalid("argument " + std::to_string(i) + " cut short");
    }
    out.argv.emplace_back(payload.substr(r.at, len));
    r.at += len;
  }
  if (r.at != payload.size()) return Status::invalid("bytes after the last argument");
  return Status::ok();
}

void ClusterNode::forward(Shard& from, bool read, uint32_t p, std::span<const std::string_view> argv,
                          ForwardDone done) {
  std::string payload = encode_forward(0, p, argv);  // the request id is set on shard 0
  Shard* home = &from;
  server_.shard(0).reactor->post([this, home, read, p, payload = std::move(payload), done = std::move(done)]() mutable {
    if (transport_ == nullptr) {
      answer_error(home, std::move(done), "CLUSTERDOWN the cluster is not formed yet (tallyctl cluster create)");
      return;
    }
    if (forwards_.size() >= kForwardsPendingMax) {
      answer_error(home, std::move(done), "BUSY too many forwarded commands are waiting for their leaders");
      return;
    }
    const uint64_t id = next_forward_++;
    std::memcpy(payload.data(), &id, 8);
    const uint64_t deadline_ms =
        server_.shard(0).clock->monotonic_ns() / 1000000 + server_.config().cluster_forward_timeout_ms;
    forwards_.emplace(id, PendingForward{home, p, 0, read, deadline_ms, std::move(payload), std::move(done)});
    // Without a leader known yet (an election, a leadership transfer) it waits, and each tick tries
    // again until its deadline: a client that cannot follow redirects should not see the handover.
    (void)send_forward(id);
  });
}

bool ClusterNode::send_forward(uint64_t id) {
  auto it = forwards_.find(id);
  TALLY_ASSERT(it != forwards_.end());
  PendingForward& pf = it->second;
  const cluster::Membership* m = membership();
  const uint64_t leader = this->leader(pf.partition);
  if (m == nullptr || leader == 0) return false;
  if (leader == m->self) {
    // Leadership came here while the forward waited: run it as the leader would.
    ForwardRequest req;
    bool id_read = false;
    TALLY_ASSERT(decode_forward(pf.payload, server_.layout().count(), req, id_read).is_ok());
    const CommandEntry* e = CommandTable::instance().find(req.argv[0]);
    TALLY_ASSERT(e != nullptr);
    pf.leader = m->self;
    run_forwarded(pf.partition, e, std::move(req.argv), [this, id](proto::Reply& reply, bool not_leader) {
      auto image = std::make_shared<std::string>();
      reply.encode(*image);
      server_.shard(0).reactor->post([this, id, not_leader, image] {
        std::string payload(reinterpret_cast<const char*>(&id), 8);
        payload.push_back(not_leader ? 1 : 0);
        payload += *image;
        const cluster::Membership* m = membership();
        if (m != nullptr) forward_answered(m->self, payload);
      });
    });
    return true;
  }
  const Status st = transport_->send(leader, transport::FrameType::kForward, transport::kNoGroup, pf.payload);
  if (!st.is_ok()) {
    answer_error(pf.from, std::move(pf.done), "TRYAGAIN cannot forward to the partition's leader (node " +
                                                  std::to_string(leader) + "): " + st.message());
    forwards_.erase(it);
    return true;
  }
  pf.leader = leader;
  forwards_out_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void ClusterNode::run_forwarded(uint32_t p, const CommandEntry* e, std::vector<std::string> args,
                                ForwardAnswer answer) {
  Shard& sh = server_.shard(server_.shard_of_partition(p));
  sh.reactor->post([&sh, p, e, args = std::move(args), answer = std::move(answer)] {
    std::vector<std::string_view> view(args.begin(), args.end());
    Partition* part = sh.partition(p);
    proto::Reply reply;
    if (part == nullptr || part->group() == nullptr || !part->group()->is_leader()) {
      // Not run: the asker may send it to the leader it learns of next.
      reply.error("TRYAGAIN partition " + std::to_string(p) + " is not led by this node");
      answer(reply, true);
      return;
    }
    if (part->can_run_now(*e, sh.log_failed())) {
      run_on_partition(sh, *part, *e, view, reply);
      answer(reply, false);
      return;
    }
    part->submit(sh, *e, view, [answer](proto::Reply& r) { answer(r, false); });
  });
}

void ClusterNode::serve_forward(uint64_t from, std::string_view payload) {
  ForwardRequest req;
  bool id_read = false;
  const Status parsed = decode_forward(payload, server_.layout().count(), req, id_read);
  const uint64_t id = req.id;
  // The reply's payload: u64 request id, u8 1 when the command did not run here (this node does not
  // lead the partition; the asker may send it again elsewhere) else 0, then the reply image.
  auto reply_payload = [id](const proto::Reply& reply, bool not_leader) {
    std::string out(reinterpret_cast<const char*>(&id), 8);
    out.push_back(not_leader ? 1 : 0);
    reply.encode(out);
    return out;
  };
  auto refuse = [&](const std::string& why) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    TALLY_LOG_WARN("cluster: a forwarded command from node {} refused: {}", from, why);
    if (!id_read) return;  // no request id to answer
    proto::Reply reply;
    reply.error("ERR forwarded command refused: " + why);
    (void)transport_->send(from, transport::FrameType::kForwardReply, transport::kNoGroup, reply_payload(reply, false));
  };
  if (!parsed.is_ok()) return refuse(parsed.message());
  const uint32_t p = req.partition;
  const CommandEntry* e = CommandTable::instance().find(req.argv[0]);
  if (e == nullptr || e->data == nullptr || (e->flags & kCmdTransaction) ||
      !CommandTable::arity_ok(*e, req.argv.size())) {
    return refuse("not a data command: " + req.argv[0].substr(0, 64));
  }
  // Every key must lie in the partition named: a command runs only on the partition its keys hash to.
  {
    std::vector<std::string_view> argv(req.argv.begin(), req.argv.end());
    std::vector<size_t> pos;
    CommandTable::key_positions(*e, argv, pos);
    // A keyless command that covers the keyspace partition by partition (FLUSHALL, DBSIZE, KEYS) runs
    // on the one partition named; others (SCAN, RANDOMKEY) are not forwarded.
    const bool per_partition = e->split == Split::kAllOk || e->split == Split::kAllSum || e->split == Split::kAllConcat;
    if (pos.empty() && !per_partition) return refuse("a keyless command");
    for (size_t k : pos) {
      if (server_.partition_of_key(argv[k]) != p) return refuse("a key outside partition " + std::to_string(p));
    }
  }
  forwards_in_.fetch_add(1, std::memory_order_relaxed);
  run_forwarded(p, e, std::move(req.argv), [this, from, reply_payload](proto::Reply& reply, bool not_leader) {
    std::string out = reply_payload(reply, not_leader);
    server_.shard(0).reactor->post([this, from, out = std::move(out)] {
      if (transport_ == nullptr) return;
      const Status st = transport_->send(from, transport::FrameType::kForwardReply, transport::kNoGroup, out);
      if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: forward reply to node {}: {}", from, st.message());
    });
  });
}

void ClusterNode::forward_answered(uint64_t from, std::string_view payload) {
  uint64_t id = 0;
  if (payload.size() < 9 || static_cast<uint8_t>(payload[8]) > 1) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(&id, payload.data(), 8);
  const bool not_leader = payload[8] == 1;
  auto it = forwards_.find(id);
  // Late (it timed out, or a read went to the next leader meanwhile) or not ours: a node answers only
  // what it was asked. (A write is sent elsewhere only after its first receiver said it did not run it.)
  if (it == forwards_.end() || it->second.leader != from) {
    if (it != forwards_.end() && !it->second.read) forward_refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (not_leader) {
    // It did not run there: wait for the next leader hint (each tick tries again until the deadline).
    it->second.leader = 0;
    return;
  }
  PendingForward pf = std::move(it->second);
  forwards_.erase(it);
  auto reply = std::make_shared<proto::Reply>();
  if (!proto::Reply::decode(payload.substr(9), *reply)) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    TALLY_LOG_WARN("cluster: node {} answered a forwarded command with a malformed reply", from);
    reply->error("ERR the partition's leader sent a malformed reply (the command's outcome is unknown)");
  }
  pf.from->reactor->post([done = std::move(pf.done), reply] { done(*reply); });
}

void ClusterNode::tick_forwards() {
  if (forwards_.empty()) return;
  const uint64_t now_ms = server_.shard(0).clock->monotonic_ns() / 1000000;
  std::vector<uint64_t> waiting;
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    PendingForward& pf = it->second;
    if (pf.deadline_ms > now_ms) {
      // A read sent to a leader that has since been replaced (dead, paused, cut off) goes to the new
      // one: running it twice changes nothing. A write waits for its answer or its deadline.
      const uint64_t now_leader = leader(pf.partition);
      if (pf.read && pf.leader != 0 && now_leader != 0 && now_leader != pf.leader) {
        pf.leader = 0;
        forwards_rerouted_.fetch_add(1, std::memory_order_relaxed);
      }
      if (pf.leader == 0) waiting.push_back(it->first);
      ++it;
      continue;
    }
    forward_timeouts_.fetch_add(1, std::memory_order_relaxed);
    std::string why = pf.leader == 0 ? "TRYAGAIN partition " + std::to_string(pf.partition) + " found no leader in time"
                                     : "TRYAGAIN no answer from the partition's leader (node " +
                                           std::to_string(pf.leader) + ") in time";
    if (!pf.read && pf.leader != 0) why += "; the write's outcome is unknown";
    answer_error(pf.from, std::move(pf.done), std::move(why));
    it = forwards_.erase(it);
  }
  for (uint64_t id : waiting) (void)send_forward(id);
}

}  // namespace tally::server
