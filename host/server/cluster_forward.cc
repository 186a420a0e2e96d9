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

void ClusterNode::forward(Shard& from, uint64_t leader, uint32_t p, std::span<const std::string_view> argv,
                          ForwardDone done) {
  std::string payload = encode_forward(0, p, argv);  // the request id is set on shard 0
  Shard* home = &from;
  server_.shard(0).reactor->post([this, home, leader, payload = std::move(payload), done = std::move(done)]() mutable {
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
    const Status st = transport_->send(leader, transport::FrameType::kForward, transport::kNoGroup, payload);
    if (!st.is_ok()) {
      answer_error(home, std::move(done), "TRYAGAIN cannot forward to the partition's leader (node " +
                                              std::to_string(leader) + "): " + st.message());
      return;
    }
    forwards_out_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t timeout_ms = server_.config().cluster_forward_timeout_ms;
    forwards_.emplace(id, PendingForward{home, leader, server_.shard(0).clock->monotonic_ns() / 1000000 + timeout_ms,
                                         std::move(done)});
  });
}

void ClusterNode::serve_forward(uint64_t from, std::string_view payload) {
  ForwardRequest req;
  bool id_read = false;
  const Status parsed = decode_forward(payload, server_.layout().count(), req, id_read);
  const uint64_t id = req.id;
  auto refuse = [&](const std::string& why) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    TALLY_LOG_WARN("cluster: a forwarded command from node {} refused: {}", from, why);
    if (!id_read) return;  // no request id to answer
    proto::Reply reply;
    reply.error("ERR forwarded command refused: " + why);
    std::string out(reinterpret_cast<const char*>(&id), 8);
    reply.encode(out);
    (void)transport_->send(from, transport::FrameType::kForwardReply, transport::kNoGroup, out);
  };
  if (!parsed.is_ok()) return refuse(parsed.message());
  const uint32_t p = req.partition;
  std::vector<std::string> args = std::move(req.argv);
  const uint32_t argc = static_cast<uint32_t>(args.size());
  const CommandEntry* e = CommandTable::instance().find(args[0]);
  if (e == nullptr || e->data == nullptr || (e->flags & kCmdTransaction) || !CommandTable::arity_ok(*e, argc)) {
    return refuse("not a data command: " + args[0].substr(0, 64));
  }
  // Every key must lie in the partition named: a command runs only on the partition its keys hash to.
  std::vector<std::string_view> argv(args.begin(), args.end());
  std::vector<size_t> pos;
  CommandTable::key_positions(*e, argv, pos);
  if (pos.empty()) return refuse("a keyless command");
  for (size_t k : pos) {
    if (server_.partition_of_key(argv[k]) != p) return refuse("a key outside partition " + std::to_string(p));
  }
  forwards_in_.fetch_add(1, std::memory_order_relaxed);
  Shard& sh = server_.shard(server_.shard_of_partition(p));
  sh.reactor->post([this, &sh, from, id, p, e, args = std::move(args)] {
    auto answer = [this, from, id](proto::Reply& reply) {
      std::string out(reinterpret_cast<const char*>(&id), 8);
      reply.encode(out);
      server_.shard(0).reactor->post([this, from, out = std::move(out)] {
        if (transport_ == nullptr) return;
        const Status st = transport_->send(from, transport::FrameType::kForwardReply, transport::kNoGroup, out);
        if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: forward reply to node {}: {}", from, st.message());
      });
    };
    std::vector<std::string_view> view(args.begin(), args.end());
    Partition* part = sh.partition(p);
    if (part == nullptr || part->group() == nullptr || !part->group()->is_leader()) {
      proto::Reply reply;
      reply.error("TRYAGAIN partition " + std::to_string(p) + " is not led by this node any more");
      answer(reply);
      return;
    }
    if (part->can_run_now(*e, sh.log_failed())) {
      proto::Reply reply;
      run_on_partition(sh, *part, *e, view, reply);
      answer(reply);
      return;
    }
    part->submit(sh, *e, view, Partition::Done(answer));
  });
}

void ClusterNode::forward_answered(uint64_t from, std::string_view payload) {
  uint64_t id = 0;
  if (payload.size() < 8) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(&id, payload.data(), 8);
  auto it = forwards_.find(id);
  // Late (it timed out) or not ours: a node answers only what it was asked.
  if (it == forwards_.end() || it->second.leader != from) {
    if (it != forwards_.end()) forward_refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  PendingForward pf = std::move(it->second);
  forwards_.erase(it);
  auto reply = std::make_shared<proto::Reply>();
  if (!proto::Reply::decode(payload.substr(8), *reply)) {
    forward_refused_.fetch_add(1, std::memory_order_relaxed);
    TALLY_LOG_WARN("cluster: node {} answered a forwarded command with a malformed reply", from);
    reply->error("ERR the partition's leader sent a malformed reply (the command's outcome is unknown)");
  }
  pf.from->reactor->post([done = std::move(pf.done), reply] { done(*reply); });
}

void ClusterNode::expire_forwards() {
  if (forwards_.empty()) return;
  const uint64_t now_ms = server_.shard(0).clock->monotonic_ns() / 1000000;
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.deadline_ms > now_ms) {
      ++it;
      continue;
    }
    forward_timeouts_.fetch_add(1, std::memory_order_relaxed);
    answer_error(it->second.from, std::move(it->second.done),
                 "TRYAGAIN no answer from the partition's leader (node " + std::to_string(it->second.leader) +
                     ") in time; a write's outcome is unknown");
    it = forwards_.erase(it);
  }
}

}  // namespace tally::server
