// CLUSTER, ASKING, READONLY, READWRITE: the Redis Cluster commands clients and tools call, answered
// from the node's slot map (host/cluster/slot_map.h). Formats follow what redis-py's RedisCluster,
// redis-cli --cluster and redis-benchmark --cluster parse.
#include "host/server/cluster_commands.h"

#include <charconv>

#include "host/server/cluster_node.h"
#include "host/server/commands/util.h"
#include "host/server/partition.h"
#include "host/server/server.h"
#include "host/server/session.h"
#include "kernels/cpu/slot.h"

namespace tally::server {

namespace {

constexpr std::string_view kClusterDisabled = "ERR This instance has cluster support disabled";

// A slot number as Redis reads one: a plain integer in [0, 16384).
bool parse_slot(std::string_view v, uint32_t& slot) {
  int64_t x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x < 0 || x >= static_cast<int64_t>(cluster::kSlots)) {
    return false;
  }
  slot = static_cast<uint32_t>(x);
  return true;
}

std::string node_address(const cluster::NodeRecord& n) {
  return n.host + ":" + std::to_string(n.port) + "@" + std::to_string(n.bus_port);
}

// What the CLUSTER commands show: the nodes, which node serves each run of slots and which other
// nodes hold copies of it.
struct Picture {
  std::vector<cluster::NodeRecord> nodes;
  uint32_t self = 0;
  uint64_t epoch = 1;
  struct Range {
    uint32_t first = 0, last = 0;
    uint32_t master = 0;
    std::vector<uint32_t> replicas;
  };
  std::vector<Range> ranges;
  uint32_t assigned() const {
    uint32_t n = 0;
    for (const Range& r : ranges) n += r.last - r.first + 1;
    return n;
  }
};

Picture picture_of(Server& srv) {
  Picture pic;
  const ClusterNode* cn = srv.cluster_node();
  if (cn == nullptr) {
    const ClusterView& v = srv.cluster_view();
    pic.nodes = v.map.nodes();
    pic.self = v.self;
    pic.epoch = v.map.epoch();
    for (const cluster::SlotRange& r : v.map.ranges()) pic.ranges.push_back(Picture::Range{r.first, r.last, r.node, {}});
    return pic;
  }
  const cluster::Membership* m = cn->membership();
  if (m == nullptr) {
    // Not formed: this node alone, serving nothing yet.
    cluster::NodeRecord self = srv.cluster_view().map.nodes()[0];
    self.bus_port = cn->peer_port() != 0 ? cn->peer_port() : srv.config().peer_port;
    pic.nodes.push_back(self);
    return pic;
  }
  pic.epoch = m->epoch;
  pic.self = static_cast<uint32_t>(m->self - 1);
  for (const cluster::MemberNode& n : m->nodes) {
    cluster::NodeRecord r;
    r.id = n.id;
    r.host = n.host;
    r.port = n.port;
    r.bus_port = n.peer_port;
    pic.nodes.push_back(std::move(r));
  }
  const PartitionLayout& layout = srv.layout();
  for (uint32_t p = 0; p < layout.count(); ++p) {
    const std::vector<uint64_t> replicas = m->replicas_of(p);
    uint64_t leader = cn->leader(p);
    // A partition without a known leader is shown on a replica (this one when it holds it): a client
    // sent there is told to try again, or redirected once the replica learns the leader.
    if (leader == 0) leader = m->holds(p) ? m->self : replicas.front();
    Picture::Range r;
    const SlotRange slots = layout.slots(p);
    r.first = slots.first;
    r.last = slots.last;
    r.master = static_cast<uint32_t>(leader - 1);
    for (uint64_t n : replicas) {
      if (n != leader) r.replicas.push_back(static_cast<uint32_t>(n - 1));
    }
    if (!pic.ranges.empty() && pic.ranges.back().master == r.master && pic.ranges.back().replicas == r.replicas &&
        pic.ranges.back().last + 1 == r.first) {
      pic.ranges.back().last = r.last;
    } else {
      pic.ranges.push_back(std::move(r));
    }
  }
  return pic;
}

void reply_info(Session& s, const Picture& v) {
  const uint32_t assigned = v.assigned();
  std::string t;
  t += "cluster_state:" + std::string(assigned == cluster::kSlots ? "ok" : "fail") + "\r\n";
  t += "cluster_slots_assigned:" + std::to_string(assigned) + "\r\n";
  t += "cluster_slots_ok:" + std::to_string(assigned) + "\r\n";
  t += "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n";
  t += "cluster_known_nodes:" + std::to_string(v.nodes.size()) + "\r\n";
  t += "cluster_size:" + std::to_string(v.nodes.size()) + "\r\n";
  t += "cluster_current_epoch:" + std::to_string(v.epoch) + "\r\n";
  t += "cluster_my_epoch:" + std::to_string(v.epoch) + "\r\n";
  t += "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n";
  t += "total_cluster_links_buffer_limit_exceeded:0\r\n";
  s.out().bulk(t);
}

// CLUSTER NODES: one line per node, "id host:port@bus flags master ping pong epoch link slots…". Every
// node is a master of the slots whose partitions it leads (each partition has its own leader).
void reply_nodes(Session& s, const Picture& v) {
  std::string t;
  for (uint32_t i = 0; i < v.nodes.size(); ++i) {
    const cluster::NodeRecord& n = v.nodes[i];
    t.append(n.id).append(" ").append(node_address(n));
    t.append(i == v.self ? " myself,master" : " master").append(" - 0 0 ");
    t.append(std::to_string(v.epoch)).append(" connected");
    for (const Picture::Range& r : v.ranges) {
      if (r.master != i) continue;
      t.push_back(' ');
      t.append(std::to_string(r.first));
      if (r.last != r.first) t.append("-").append(std::to_string(r.last));
    }
    t.push_back('\n');
  }
  s.out().bulk(t);
}

void node_entry(proto::Reply& w, const cluster::NodeRecord& n) {
  w.array(4);
  w.bulk(n.host);
  w.integer(n.port);
  w.bulk(n.id);
  w.map(0);
}

// CLUSTER SLOTS: [first, last, master, replicas…] per range.
void reply_slots(Session& s, const Picture& v) {
  proto::Reply& w = s.out();
  w.array(v.ranges.size());
  for (const Picture::Range& r : v.ranges) {
    w.array(3 + r.replicas.size());
    w.integer(r.first);
    w.integer(r.last);
    node_entry(w, v.nodes[r.master]);
    for (uint32_t x : r.replicas) node_entry(w, v.nodes[x]);
  }
}

void shard_node(proto::Reply& w, const cluster::NodeRecord& n, bool master) {
  w.map(7);
  w.bulk("id");
  w.bulk(n.id);
  w.bulk("port");
  w.integer(n.port);
  w.bulk("ip");
  w.bulk(n.host);
  w.bulk("endpoint");
  w.bulk(n.host);
  w.bulk("role");
  w.bulk(master ? "master" : "replica");
  w.bulk("replication-offset");
  w.integer(0);
  w.bulk("health");
  w.bulk("online");
}

// CLUSTER SHARDS: one shard per run of slots with the same leader and replicas.
void reply_shards(Session& s, const Picture& v) {
  proto::Reply& w = s.out();
  w.array(v.ranges.size());
  for (const Picture::Range& r : v.ranges) {
    w.map(2);
    w.bulk("slots");
    w.array(2);
    w.integer(r.first);
    w.integer(r.last);
    w.bulk("nodes");
    w.array(1 + r.replicas.size());
    shard_node(w, v.nodes[r.master], true);
    for (uint32_t x : r.replicas) shard_node(w, v.nodes[x], false);
  }
}

// COUNTKEYSINSLOT and GETKEYSINSLOT: the shard holding the slot's partition walks that partition's
// store (a partition holds kSlots/partitions slots, so this is O(keys in the partition)).
void keys_in_slot(Session& s, uint32_t slot, int64_t max_keys, bool count_only) {
  Server& srv = s.server();
  const uint32_t p = srv.layout().of_slot(slot);
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  struct Found {
    int64_t count = 0;
    std::vector<std::string> keys;
  };
  srv.fan_out<Found>(
      home->id,
      [p, slot, max_keys, count_only](Shard& sh) {
        Found f;
        Partition* part = sh.partition(p);
        if (part == nullptr) return f;
        part->store().for_each([&](const store::Entry& e) {
          if (kernels::key_slot(e.key()) != slot) return;
          ++f.count;
          if (!count_only && static_cast<int64_t>(f.keys.size()) < max_keys) f.keys.emplace_back(e.key());
        });
        return f;
      },
      s.alive_check(),
      [home, conn_id, seq, count_only](std::vector<Found>& parts) {
        proto::Reply reply;
        if (count_only) {
          int64_t n = 0;
          for (const Found& f : parts) n += f.count;
          reply.integer(n);
        } else {
          size_t n = 0;
          for (const Found& f : parts) n += f.keys.size();
          reply.array(n);
          for (const Found& f : parts) {
            for (const std::string& k : f.keys) reply.bulk(k);
          }
        }
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

}  // namespace

void cmd_cluster(Session& s, Argv argv) {
  proto::Reply& w = s.out();
  const std::string_view sub = argv[1];
  if (cmd::iequals(sub, "help")) {
    static const char* kHelp[] = {
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "INFO", "    Return information about the cluster.",
        "MYID", "    Return this node's id.",
        "MYSHARDID", "    Return the id of this node's shard.",
        "NODES", "    Return the cluster's nodes and their slots, one line per node.",
        "SLOTS", "    Return the slot ranges and the nodes serving them.",
        "SHARDS", "    Return each shard's slot ranges and nodes.",
        "KEYSLOT <key>", "    Return the hash slot of <key>.",
        "COUNTKEYSINSLOT <slot>", "    Return the number of keys in <slot>.",
        "GETKEYSINSLOT <slot> <count>", "    Return up to <count> keys of <slot>.",
        "HELP", "    Print this help.",
    };
    w.array(std::size(kHelp));
    for (const char* line : kHelp) w.simple(line);
    return;
  }
  if (!s.server().cluster_enabled()) {
    w.error(kClusterDisabled);
    return;
  }
  const Picture v = picture_of(s.server());
  const size_t argc = argv.size();
  if (cmd::iequals(sub, "info") && argc == 2) {
    reply_info(s, v);
  } else if (cmd::iequals(sub, "myid") && argc == 2) {
    w.bulk(s.server().node_id());
  } else if (cmd::iequals(sub, "myshardid") && argc == 2) {
    w.bulk(s.server().node_id());
  } else if (cmd::iequals(sub, "nodes") && argc == 2) {
    reply_nodes(s, v);
  } else if (cmd::iequals(sub, "slots") && argc == 2) {
    reply_slots(s, v);
  } else if (cmd::iequals(sub, "shards") && argc == 2) {
    reply_shards(s, v);
  } else if (cmd::iequals(sub, "keyslot") && argc == 3) {
    w.integer(kernels::key_slot(argv[2]));
  } else if (cmd::iequals(sub, "countkeysinslot") && argc == 3) {
    uint32_t slot = 0;
    if (!parse_slot(argv[2], slot)) {
      w.error("ERR Invalid or out of range slot");
      return;
    }
    keys_in_slot(s, slot, 0, true);
  } else if (cmd::iequals(sub, "getkeysinslot") && argc == 4) {
    int64_t max_keys = 0;
    const std::string_view m = argv[3];
    auto [p, ec] = std::from_chars(m.data(), m.data() + m.size(), max_keys);
    if (ec != std::errc() || p != m.data() + m.size()) {
      w.error("ERR value is not an integer or out of range");
      return;
    }
    uint32_t slot = 0;
    if (!parse_slot(argv[2], slot)) {
      w.error("ERR Invalid or out of range slot");
      return;
    }
    if (max_keys < 0) {
      w.error("ERR Invalid slot or number of keys");
      return;
    }
    keys_in_slot(s, slot, max_keys, false);
  } else {
    w.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) +
            "'. Try CLUSTER HELP.");
  }
}

void cmd_asking(Session& s, Argv) {
  if (!s.server().cluster_enabled()) {
    s.out().error(kClusterDisabled);
    return;
  }
  s.out().ok();
}

void cmd_readonly(Session& s, Argv) {
  if (!s.server().cluster_enabled()) {
    s.out().error(kClusterDisabled);
    return;
  }
  // On a member, reads of partitions this node holds a replica of run here from now on.
  s.set_replica_reads(true);
  s.out().ok();
}

void cmd_readwrite(Session& s, Argv) {
  if (!s.server().cluster_enabled()) {
    s.out().error(kClusterDisabled);
    return;
  }
  s.set_replica_reads(false);
  s.out().ok();
}

}  // namespace tally::server
