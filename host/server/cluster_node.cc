#include "host/server/cluster_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <map>
#include <set>

#include "host/common/log.h"
#include "host/net/tls.h"
#include "host/replication/group/group.h"
#include "host/replication/raft/wire.h"
#include "host/server/partition.h"
#include "host/server/recovery.h"
#include "host/server/server.h"
#include "host/server/shard.h"
#include "host/server/shard_log.h"
#include "host/store/snapshot_file.h"
#include "kernels/cpu/tally_commit.h"
#include "host/transport/peer_transport.h"

namespace tally::server {

namespace {

// Leader hints go out every this many ticks.
constexpr uint32_t kAnnounceTicks = 4;
// Leadership is rebalanced every this many announcements, at most this many transfers a round.
constexpr uint64_t kBalanceEveryAnnounces = 2;
constexpr uint32_t kTransfersPerRound = 16;
// A snapshot travels in one frame of the transport's default bound.
constexpr uint64_t kSnapshotFrameBytesMax = 64u << 20;

static_assert(cluster::kReplicasMax == kernels::kTallyReplicasMax, "a partition's replicas form one Raft group");

// Whether host:port can be listened on now (a plain bind, without SO_REUSEPORT, so a port another
// process serves is found taken). Numeric IPv4 hosts only; others are not probed.
Status probe_listen(const std::string& host, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return Status::ok();
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::io_error(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::io_error("peer port " + host + ":" + std::to_string(port) + ": " + std::strerror(err));
  }
  return Status::ok();
}

}  // namespace

ClusterNode::ClusterNode(Server& server) : server_(server) {
  const uint32_t n = server.layout().count();
  leaders_ = std::make_unique<std::atomic<uint64_t>[]>(n);
  terms_ = std::make_unique<std::atomic<uint64_t>[]>(n);
  for (uint32_t p = 0; p < n; ++p) {
    leaders_[p].store(0, std::memory_order_relaxed);
    terms_[p].store(0, std::memory_order_relaxed);
  }
}

ClusterNode::~ClusterNode() = default;

uint64_t ClusterNode::self() const {
  const cluster::Membership* m = membership();
  return m == nullptr ? 0 : m->self;
}

Status ClusterNode::load_secret() {
  const std::string& path = server_.config().cluster_secret_file;
  auto text = server_.env().read_file(path);
  if (!text.is_ok()) return Status(text.status().code(), "cluster_secret_file " + path + ": " + text.status().message());
  std::string s = std::move(text).value();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.size() < 16) return Status::invalid("cluster_secret_file " + path + " holds fewer than 16 bytes");
  secret_ = std::move(s);
  return Status::ok();
}

Status ClusterNode::start() {
  TALLY_RETURN_IF_ERROR(load_secret());
  const Config& cfg = server_.config();
  const std::string path = join_path(cfg.dir, "CLUSTER");
  if (server_.env().exists(path)) {
    auto text = server_.env().read_file(path);
    if (!text.is_ok()) return text.status();
    auto m = cluster::Membership::parse(*text);
    if (!m.is_ok()) return Status(m.status().code(), path + ": " + m.status().message());
    if (m->node(m->self)->id != server_.node_id()) {
      return Status::invalid(path + " names node " + m->node(m->self)->id + " as this one, but this node is " +
                             server_.node_id());
    }
    owned_ = std::make_unique<cluster::Membership>(std::move(m).value());
    membership_.store(owned_.get(), std::memory_order_release);
    TALLY_RETURN_IF_ERROR(start_transport());
  } else {
    // Not formed yet: the peer port is taken only at formation, so find out now that it is free.
    TALLY_RETURN_IF_ERROR(probe_listen(cfg.bind, cfg.peer_port));
  }
  for (uint32_t i = 0; i < server_.shard_count(); ++i) {
    Shard* sh = &server_.shard(i);
    sh->reactor->add_timer(cfg.cluster_tick_ms, [this, sh] { tick(*sh); });
  }
  server_.shard(0).reactor->add_timer(std::max<uint64_t>(1, uint64_t{cfg.cluster_tick_ms} * kAnnounceTicks),
                                      [this] { announce_leaders(); });
  return Status::ok();
}

void ClusterNode::publish_peer_figures() {
  if (transport_ == nullptr) return;
  const transport::PeerTransportStats& t = transport_->stats();
  auto set = [](std::atomic<uint64_t>& a, uint64_t v) { a.store(v, std::memory_order_relaxed); };
  set(peer_figures_.frames_in, t.frames_in);
  set(peer_figures_.frames_out, t.frames_out);
  set(peer_figures_.bytes_in, t.bytes_in);
  set(peer_figures_.bytes_out, t.bytes_out);
  set(peer_figures_.auth_failures, t.auth_failures);
  set(peer_figures_.checksum_failures, t.checksum_failures);
  set(peer_figures_.unknown_group, t.unknown_group);
  set(peer_figures_.oversize, t.oversize);
  set(peer_figures_.malformed, t.malformed);
  set(peer_figures_.handshake_timeouts, t.handshake_timeouts);
  set(peer_figures_.reconnects, t.reconnects);
  set(peer_figures_.connect_failures, t.connect_failures);
  set(peer_figures_.queue_drops, t.queue_drops);
  set(peer_figures_.authenticated, t.authenticated);
}

void ClusterNode::balance_leaders() {
  // Elections spread leadership unevenly (one node may lead 99 of 256). A node that leads more than
  // its share hands partitions to replicas that lead fewer than theirs, a few per round; only
  // over-share nodes give and only under-share ones take, so it settles instead of oscillating.
  const cluster::Membership* m = membership();
  if (m == nullptr || m->nodes.size() < 2) return;
  const uint32_t partitions = server_.layout().count();
  std::vector<uint32_t> led(m->nodes.size() + 1, 0);
  for (uint32_t p = 0; p < partitions; ++p) {
    const uint64_t l = leader(p);
    if (l == 0 || l > m->nodes.size()) return;  // wait until every partition has a known leader
    ++led[l];
  }
  const uint32_t share = (partitions + static_cast<uint32_t>(m->nodes.size()) - 1) / static_cast<uint32_t>(m->nodes.size());
  uint32_t excess = led[m->self] > share ? led[m->self] - share : 0;
  uint32_t started = 0;
  for (uint32_t p = 0; p < partitions && excess > 0 && started < kTransfersPerRound; ++p) {
    if (leader(p) != m->self) continue;
    uint64_t target = 0;
    for (uint64_t r : m->replicas_of(p)) {
      if (r != m->self && led[r] < share && (target == 0 || led[r] < led[target])) target = r;
    }
    if (target == 0) continue;
    ++led[target];
    --excess;
    ++started;
    Shard& sh = server_.shard(server_.shard_of_partition(p));
    sh.reactor->post([&sh, p, target] {
      Partition* part = sh.partition(p);
      if (part == nullptr || part->group() == nullptr || !part->group()->is_leader()) return;
      (void)part->group()->transfer_leader(target);
      sh.mark_dirty(p);
    });
  }
}

void ClusterNode::announce_leaders() {
  publish_peer_figures();
  if (++announces_ % kBalanceEveryAnnounces == 0) balance_leaders();
  const cluster::Membership* m = membership();
  if (m == nullptr || transport_ == nullptr || m->replicas == m->nodes.size()) return;  // everyone holds everything
  // u32 count, then (u32 partition, u64 term) per partition this node leads.
  std::string payload(4, '\0');
  uint32_t count = 0;
  auto put = [&payload](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) payload.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  for (uint32_t p = 0; p < server_.layout().count(); ++p) {
    if (!m->holds(p) || leader(p) != m->self) continue;
    put(p, 4);
    put(terms_[p].load(std::memory_order_relaxed), 8);
    ++count;
  }
  for (int i = 0; i < 4; ++i) payload[i] = static_cast<char>((count >> (8 * i)) & 0xff);
  for (const cluster::MemberNode& n : m->nodes) {
    if (n.number == m->self) continue;
    (void)transport_->send(n.number, transport::FrameType::kHeartbeat, transport::kNoGroup, payload);
  }
}

void ClusterNode::learn_leaders(uint64_t from, std::string_view payload) {
  const cluster::Membership* m = membership();
  auto get = [&payload](size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(payload[at + i])) << (8 * i);
    return v;
  };
  if (m == nullptr || payload.size() < 4) return;
  const uint64_t count = get(0, 4);
  if (payload.size() != 4 + count * 12) {
    messages_refused_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t p = get(4 + i * 12, 4);
    const uint64_t term = get(8 + i * 12, 8);
    // Hints only for partitions this node does not hold: for its own, its group knows better.
    if (p >= server_.layout().count() || m->holds(static_cast<uint32_t>(p))) continue;
    if (term >= terms_[p].load(std::memory_order_relaxed)) note_leader(static_cast<uint32_t>(p), from, term);
  }
}

Status ClusterNode::start_transport() {
  const cluster::Membership* m = membership();
  TALLY_ASSERT(m != nullptr && transport_ == nullptr);
  const Config& cfg = server_.config();
  transport::PeerTransportOptions to;
  to.node_id = m->self;
  to.secret = secret_;
  to.listen_host = cfg.bind;
  to.listen_port = cfg.peer_port;
  for (const cluster::MemberNode& n : m->nodes) {
    if (n.number != m->self) to.peers[n.number] = transport::PeerAddress{n.host, n.peer_port};
  }
  if (cfg.tls_cluster) {
    net::TlsOptions accept;
    accept.cert_file = cfg.tls_cert_file;
    accept.key_file = cfg.tls_key_file;
    accept.ca_cert_file = cfg.tls_ca_cert_file;
    accept.auth_clients = "yes";
    net::TlsOptions dial = accept;
    dial.server = false;
    auto a = net::TlsContext::create(accept);
    if (!a.is_ok()) return Status(a.status().code(), "tls_cluster: " + a.status().message());
    auto d = net::TlsContext::create(dial);
    if (!d.is_ok()) return Status(d.status().code(), "tls_cluster: " + d.status().message());
    to.tls_accept = std::move(a).value();
    to.tls_dial = std::move(d).value();
  }
  transport::PeerTransport::Hooks hooks;
  hooks.deliver = [this](const transport::InboundFrame& f) { deliver(f); };
  hooks.group_known = [this](uint32_t group) {
    const cluster::Membership* mm = membership();
    return mm != nullptr && group < server_.layout().count() && mm->holds(group);
  };
  Shard& s0 = server_.shard(0);
  auto t = transport::PeerTransport::create(*s0.reactor, std::move(to), std::move(hooks), /*own_end_of_iteration=*/false);
  if (!t.is_ok()) return Status(t.status().code(), "peer transport: " + t.status().message());
  auto port = t.value()->start();
  if (!port.is_ok()) {
    return Status(port.status().code(), "peer listen on " + cfg.bind + ":" + std::to_string(cfg.peer_port) + ": " +
                                            port.status().message());
  }
  peer_port_.store(*port, std::memory_order_relaxed);
  transport_ = std::move(t).value();
  return Status::ok();
}

void ClusterNode::flush() {
  if (transport_) transport_->flush();
}

Status ClusterNode::create_group(Shard& shard, Partition& part, PartitionStart& ps) {
  const cluster::Membership* m = membership();
  TALLY_ASSERT(m != nullptr);
  const uint32_t p = part.id();
  const std::vector<uint64_t> replicas = m->replicas_of(p);
  raft::ConfState conf;
  conf.voters.assign(replicas.begin(), replicas.end());
  auto storage = group::make_storage(ps, conf);
  if (!storage.is_ok()) return Status(storage.status().code(), "partition " + std::to_string(p) + ": " + storage.status().message());
  const Config& cfg = server_.config();
  group::GroupOptions go;
  go.raft.id = m->self;
  go.raft.voters = conf.voters;
  go.raft.applied = ps.snapshot_index;
  go.raft.max_uncommitted_entries = kUncommittedEntriesMax;
  go.raft.election_tick = cfg.cluster_election_ticks;
  go.raft.heartbeat_tick = 1;
  go.raft.pre_vote = true;
  go.raft.check_quorum = true;
  // The leader writes its own log while its appends travel (docs/cluster.md): a write waits for the
  // slower of its own disk and the fastest follower's, not for both one after the other.
  go.raft.leader_sends_before_persist = cfg.cluster_parallel_append && conf.voters.size() > 1;
  go.raft.seed = server_.env().random_seed() | 1;
  go.log_entries_kept = cfg.cluster_log_entries_kept;
  auto g = group::ReplicaGroup::create(p, go, std::move(storage).value(), shard.log->group_log(), *shard.replication,
                                       *shard.replication);
  if (!g.is_ok()) return Status(g.status().code(), "partition " + std::to_string(p) + ": " + g.status().message());
  part.set_group(std::move(g).value());
  part.set_confirm_reads(conf.voters.size() > 1);
  shard.log->wal_group_log().set_snapshot_installer(
      [this, sh = &shard](uint32_t group, const raft::Snapshot& snap) { return install_snapshot(*sh, group, snap); });
  part.set_unavailable("");
  shard.mark_dirty(p);
  return Status::ok();
}

Status ClusterNode::fill_snapshot(Shard& shard, uint32_t group, raft::Message& m) {
  Partition* part = shard.partition(group);
  if (part == nullptr || part->group() == nullptr) return Status::unavailable("no group");
  // A partition that is unavailable here (a snapshot that did not load, a damaged log) has no image
  // to give.
  if (!part->unavailable().empty()) return Status::unavailable("the partition is unavailable here: " + part->unavailable());
  group::ReplicaGroup& g = *part->group();
  Env& env = server_.env();
  const std::string dir = join_path(server_.config().dir, "transfer");
  TALLY_RETURN_IF_ERROR(env.create_dirs(dir));
  char name[32];
  std::snprintf(name, sizeof name, "p-%05u.snap", group);
  const std::string path = join_path(dir, name);
  store::SnapshotMeta meta;
  meta.partition = group;
  meta.first_slot = part->slots().first;
  meta.last_slot = part->slots().last;
  meta.index = g.applied();
  meta.term = g.applied_term();
  meta.taken_at_ms = env.wall_ms();
  // The image of the partition as applied now: at least as new as what the core wanted to send, and
  // the leader holds every entry after it.
  TALLY_RETURN_IF_ERROR(store::write_snapshot_sync(env, path, meta, part->store()));
  auto data = env.read_file(path);
  (void)env.remove_file(path);
  if (!data.is_ok()) return data.status();
  if (data->size() + (1u << 20) > kSnapshotFrameBytesMax) {
    // It would not fit one frame: the replica cannot catch up this way (streamed snapshots are not
    // built yet). Said loudly; the core asks again after its wait.
    TALLY_LOG_ERROR("cluster: partition {}: its image ({} bytes) is too large for one peer frame; node {} cannot catch "
                    "up by snapshot", group, data->size(), m.to);
    return Status::exhausted("snapshot too large for a frame");
  }
  m.snapshot.data = std::move(data).value();
  m.snapshot.metadata.index = meta.index;
  m.snapshot.metadata.term = meta.term;
  m.snapshot.metadata.conf = g.status().conf;
  snapshots_sent_.fetch_add(1, std::memory_order_relaxed);
  TALLY_LOG_INFO("cluster: partition {}: snapshot at index {} ({} bytes) to node {}", group, meta.index,
                 m.snapshot.data.size(), m.to);
  return Status::ok();
}

Status ClusterNode::install_snapshot(Shard& shard, uint32_t group, const raft::Snapshot& snapshot) {
  Env& env = server_.env();
  const std::string dir = store::snapshot_dir(server_.config().dir, group);
  Status st = env.create_dirs(dir);
  const std::string path =
      join_path(dir, store::snapshot_file_name(snapshot.metadata.index, snapshot.metadata.term));
  if (st.is_ok()) st = env.write_file_atomic(path, snapshot.data);
  Partition* part = shard.partition(group);
  const std::string failed = "installing the leader's snapshot failed (tried again every tick): ";
  if (!st.is_ok()) {
    // The log holds the Ready and tries again; meanwhile the partition's old state is not served.
    if (part != nullptr) {
      if (!part->unavailable().starts_with(failed)) {
        TALLY_LOG_ERROR("cluster: partition {}: installing the leader's snapshot failed: {}; trying again", group,
                        st.message());
      }
      part->set_unavailable(failed + st.message());
    }
  } else if (part != nullptr && part->unavailable().starts_with(failed)) {
    TALLY_LOG_WARN("cluster: partition {}: the leader's snapshot is installed after all", group);
    part->set_unavailable("");
  }
  return st;
}

void ClusterNode::restore(Shard& shard, Partition& part, const raft::Snapshot& snapshot) {
  (void)shard;
  const std::string path = join_path(store::snapshot_dir(server_.config().dir, part.id()),
                                     store::snapshot_file_name(snapshot.metadata.index, snapshot.metadata.term));
  part.store().flush();
  auto meta = store::load_snapshot(server_.env(), path, part.store());
  if (!meta.is_ok() || meta->index != snapshot.metadata.index || meta->partition != part.id()) {
    const std::string why = meta.is_ok() ? std::string("it names another partition or index") : meta.status().message();
    part.set_unavailable("the leader's snapshot " + path + " does not load: " + why);
    TALLY_LOG_ERROR("cluster: partition {}: the leader's snapshot {} does not load: {}", part.id(), path, why);
    return;
  }
  snapshots_installed_.fetch_add(1, std::memory_order_relaxed);
  TALLY_LOG_INFO("cluster: partition {}: installed the leader's snapshot at index {} ({} keys)", part.id(),
                 meta->index, part.store().size());
}

void ClusterNode::send(Shard& from, uint32_t group, std::vector<raft::Message>& messages) {
  // One payload per destination: the group's messages to that peer, in order.
  std::map<uint64_t, std::vector<raft::Message>> by_peer;
  for (raft::Message& m : messages) {
    if (m.type == raft::MessageType::kSnapshot) {
      const Status st = fill_snapshot(from, group, m);
      if (!st.is_ok()) {
        // Not sent: the core sends it again once its wait for an answer runs out.
        TALLY_LOG_WARN("cluster: partition {}: no snapshot for node {}: {}", group, m.to, st.message());
        continue;
      }
    }
    by_peer[m.to].push_back(std::move(m));
  }
  for (auto& [peer, batch] : by_peer) {
    std::string payload;
    raft::encode_messages(batch, payload);
    messages_out_.fetch_add(batch.size(), std::memory_order_relaxed);
    if (from.id == 0) {
      const Status st = transport_->send(peer, transport::FrameType::kRaft, group, payload);
      if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: to node {}: {}", peer, st.message());
    } else {
      Shard& s0 = server_.shard(0);
      s0.reactor->post([this, peer, group, payload = std::move(payload)] {
        const Status st = transport_->send(peer, transport::FrameType::kRaft, group, payload);
        if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: to node {}: {}", peer, st.message());
      });
    }
  }
}

void ClusterNode::broadcast_publish(std::string channel, std::string message) {
  // u32 channel length, the channel, the message.
  std::string payload(4, '\0');
  const uint32_t n = static_cast<uint32_t>(channel.size());
  for (int i = 0; i < 4; ++i) payload[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  payload += channel;
  payload += message;
  server_.shard(0).reactor->post([this, payload = std::move(payload)] {
    const cluster::Membership* m = membership();
    if (m == nullptr || transport_ == nullptr) return;
    for (const cluster::MemberNode& node : m->nodes) {
      if (node.number == m->self) continue;
      const Status st = transport_->send(node.number, transport::FrameType::kPublish, transport::kNoGroup, payload);
      if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: publish to node {}: {}", node.number, st.message());
    }
  });
}

void ClusterNode::deliver(const transport::InboundFrame& f) {
  if (f.type == transport::FrameType::kHeartbeat) {
    learn_leaders(f.source, f.payload);
    return;
  }
  if (f.type == transport::FrameType::kPublish) {
    uint32_t n = 0;
    for (int i = 3; i >= 0 && f.payload.size() >= 4; --i) n = (n << 8) | static_cast<uint8_t>(f.payload[static_cast<size_t>(i)]);
    if (f.payload.size() < 4 || f.payload.size() - 4 < n) {
      messages_refused_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::string channel(f.payload.substr(4, n));
    std::string message(f.payload.substr(4 + n));
    for (uint32_t i = 0; i < server_.shard_count(); ++i) {
      Shard* sh = &server_.shard(i);
      sh->reactor->post([sh, channel, message] { sh->pubsub.publish(*sh, false, channel, message); });
    }
    return;
  }
  if (f.type == transport::FrameType::kForward) {
    serve_forward(f.source, f.payload);
    return;
  }
  if (f.type == transport::FrameType::kForwardReply) {
    forward_answered(f.source, f.payload);
    return;
  }
  if (f.type != transport::FrameType::kRaft) return;
  auto decoded = raft::decode_messages(f.payload);
  const cluster::Membership* m = membership();
  if (!decoded.is_ok() || m == nullptr) {
    messages_refused_.fetch_add(1, std::memory_order_relaxed);
    TALLY_LOG_WARN("cluster: a frame from node {} for partition {} refused: {}", f.source, f.group,
                   decoded.is_ok() ? std::string("not formed") : decoded.status().message());
    return;
  }
  std::vector<raft::Message> msgs = std::move(decoded).value();
  // A message must come from the node that sent the frame and be meant for this one.
  for (const raft::Message& msg : msgs) {
    if (msg.from != f.source || msg.to != m->self) {
      messages_refused_.fetch_add(1, std::memory_order_relaxed);
      TALLY_LOG_WARN("cluster: node {} sent a message from {} to {} for partition {}: refused", f.source, msg.from,
                     msg.to, f.group);
      return;
    }
  }
  messages_in_.fetch_add(msgs.size(), std::memory_order_relaxed);
  const uint32_t owner = server_.shard_of_partition(f.group);
  Shard& sh = server_.shard(owner);
  if (owner == 0) {
    step(sh, f.group, std::move(msgs));
  } else {
    sh.reactor->post([this, &sh, group = f.group, msgs = std::move(msgs)]() mutable { step(sh, group, std::move(msgs)); });
  }
}

void ClusterNode::step(Shard& shard, uint32_t group, std::vector<raft::Message> messages) {
  Partition* part = shard.partition(group);
  if (part == nullptr || part->group() == nullptr) return;  // moved away, or not created yet
  for (const raft::Message& msg : messages) {
    const Status st = part->group()->step(msg);
    if (!st.is_ok()) TALLY_LOG_DEBUG("cluster: partition {}: step: {}", group, st.message());
  }
  shard.mark_dirty(group);
}

void ClusterNode::tick(Shard& shard) {
  if (membership() == nullptr) return;
  if (shard.id == 0) tick_forwards();
  for (uint32_t p : shard.held) {
    Partition* part = shard.partition(p);
    if (part == nullptr || part->group() == nullptr) continue;
    part->group()->tick();
    shard.mark_dirty(p);
  }
}

Status ClusterNode::prepare_setup(const cluster::Membership& m) {
  std::lock_guard lock(setup_mu_);
  if (membership() != nullptr) return Status::invalid("this node is already a member of a cluster");
  TALLY_RETURN_IF_ERROR(m.validate());
  if (m.node(m.self)->id != server_.node_id()) {
    return Status::invalid("the cluster names node " + m.node(m.self)->id + " as this one, but this node is " +
                           server_.node_id());
  }
  if (server_.published(&ShardMetrics::keys) != 0) return Status::invalid("a node joins a new cluster empty: this one holds keys");
  TALLY_RETURN_IF_ERROR(probe_listen(server_.config().bind, server_.config().peer_port));
  TALLY_RETURN_IF_ERROR(server_.env().write_file_atomic(join_path(server_.config().dir, "CLUSTER"), m.serialize()));
  owned_ = std::make_unique<cluster::Membership>(m);
  membership_.store(owned_.get(), std::memory_order_release);
  return Status::ok();
}

void ClusterNode::finish_setup(Shard& home, std::function<void(Status)> done) {
  const cluster::Membership* m = membership();
  TALLY_ASSERT(m != nullptr);
  // The transport starts on shard 0 (its thread), then every shard creates its groups.
  Shard* h = &home;
  server_.shard(0).reactor->post([this, h, done = std::move(done)]() mutable {
    const Status started = start_transport();
    if (!started.is_ok()) {
      h->reactor->post([started, done = std::move(done)] { done(started); });
      return;
    }
    server_.fan_out<std::string>(
        0,
        [this](Shard& sh) {
          for (uint32_t p : sh.held) {
            Partition* part = sh.partition(p);
            if (part == nullptr || part->group() != nullptr) continue;
            if (!membership()->holds(p)) {
              part->set_unavailable(kNotHeld);
              continue;
            }
            PartitionStart fresh;
            const Status st = create_group(sh, *part, fresh);
            if (!st.is_ok()) return st.message();
          }
          return std::string();
        },
        [] { return true; },
        [h, done = std::move(done)](std::vector<std::string>& errors) mutable {
          Status st = Status::ok();
          for (const std::string& e : errors) {
            if (!e.empty()) st = Status::invalid(e);
          }
          h->reactor->post([st, done = std::move(done)] { done(st); });
        });
  });
}

std::string ClusterNode::info_text() const {
  std::string t;
  const cluster::Membership* m = membership();
  t += "cluster_member:1\r\n";
  t += "cluster_formed:" + std::string(m != nullptr ? "1" : "0") + "\r\n";
  if (m != nullptr) {
    t += "cluster_nodes:" + std::to_string(m->nodes.size()) + "\r\n";
    t += "cluster_self:" + std::to_string(m->self) + "\r\n";
    t += "cluster_replicas:" + std::to_string(m->replicas) + "\r\n";
    uint32_t led = 0, leaderless = 0;
    for (uint32_t p = 0; p < server_.layout().count(); ++p) {
      const uint64_t l = leader(p);
      led += l == m->self;
      leaderless += l == 0;
    }
    t += "cluster_partitions_led:" + std::to_string(led) + "\r\n";
    t += "cluster_partitions_without_leader:" + std::to_string(leaderless) + "\r\n";
    // Failure domains: this node's labels, how many zones there are, and how many partitions (of more
    // than one replica) have every replica in one zone.
    const cluster::MemberNode* self = m->node(m->self);
    std::set<std::string> zones;
    for (const cluster::MemberNode& n : m->nodes) zones.insert(n.zone);
    uint32_t one_zone = 0;
    const std::vector<uint64_t> ring = m->placement_ring();
    for (uint32_t p = 0; m->replicas > 1 && p < server_.layout().count(); ++p) {
      std::set<std::string> seen;
      for (uint32_t k = 0; k < m->replicas; ++k) seen.insert(m->node(ring[(p + k) % ring.size()])->zone);
      one_zone += seen.size() == 1;
    }
    t += "cluster_zone:" + (self != nullptr ? self->zone : std::string()) + "\r\n";
    t += "cluster_rack:" + (self != nullptr ? self->rack : std::string()) + "\r\n";
    t += "cluster_zones:" + std::to_string(zones.size()) + "\r\n";
    t += "cluster_partitions_in_one_zone:" + std::to_string(one_zone) + "\r\n";
  }
  t += "cluster_peer_port:" + std::to_string(peer_port()) + "\r\n";
  t += "cluster_raft_messages_in:" + std::to_string(messages_in()) + "\r\n";
  t += "cluster_raft_messages_out:" + std::to_string(messages_out()) + "\r\n";
  t += "cluster_raft_messages_refused:" + std::to_string(messages_refused_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_forwarded_out:" + std::to_string(forwards_out_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_forwarded_in:" + std::to_string(forwards_in_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_forward_timeouts:" + std::to_string(forward_timeouts_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_forward_refused:" + std::to_string(forward_refused_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_forward_rerouted:" + std::to_string(forwards_rerouted_.load(std::memory_order_relaxed)) + "\r\n";
  const PeerFigures& pf = peer_figures_;
  auto row = [&t](const char* name, const std::atomic<uint64_t>& v) {
    t += name;
    t += ':';
    t += std::to_string(v.load(std::memory_order_relaxed));
    t += "\r\n";
  };
  row("peer_frames_in", pf.frames_in);
  row("peer_frames_out", pf.frames_out);
  row("peer_bytes_in", pf.bytes_in);
  row("peer_bytes_out", pf.bytes_out);
  row("peer_connections_authenticated", pf.authenticated);
  row("peer_auth_failures", pf.auth_failures);
  row("peer_checksum_failures", pf.checksum_failures);
  row("peer_unknown_group", pf.unknown_group);
  row("peer_oversize", pf.oversize);
  row("peer_malformed", pf.malformed);
  row("peer_handshake_timeouts", pf.handshake_timeouts);
  row("peer_reconnects", pf.reconnects);
  row("peer_connect_failures", pf.connect_failures);
  row("peer_queue_drops", pf.queue_drops);
  t += "cluster_snapshots_sent:" + std::to_string(snapshots_sent_.load(std::memory_order_relaxed)) + "\r\n";
  t += "cluster_snapshots_installed:" + std::to_string(snapshots_installed_.load(std::memory_order_relaxed)) + "\r\n";
  return t;
}

}  // namespace tally::server
