// A cluster member's side of replication (docs/cluster.md): its membership as formed by `tallyctl
// cluster create`, the peer transport (on shard 0's reactor), the leader each partition's group last
// saw, and the Raft messages between this node's groups and their replicas on other nodes.
//
// Threads: the transport lives on shard 0. A group's outgoing messages are encoded on the shard that
// holds it and handed to shard 0; frames from peers are decoded on shard 0's thread and their
// messages stepped into the group on the holding shard's thread.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <string>
#include <unordered_map>
#include <vector>

#include "host/cluster/membership.h"
#include "host/proto/reply_value.h"
#include "host/common/status.h"
#include "host/replication/raft/types.h"

namespace tally::transport {
class PeerTransport;
struct InboundFrame;
struct PeerTransportStats;
}  // namespace tally::transport

namespace tally::server {

class Server;
struct Shard;
class Partition;
struct PartitionStart;
struct CommandEntry;

// What a partition held by other nodes answers a client that reached it without redirection.
inline constexpr const char* kNotHeld = "this node holds no replica of the partition (its leader has it)";

class ClusterNode {
 public:
  explicit ClusterNode(Server& server);
  ~ClusterNode();

  // Reads the secret and, when the node was formed before, <dir>/CLUSTER; creates the transport on
  // shard 0 and listens on the peer port. Before the shards' threads run.
  Status start();
  // Writes the frames queued this iteration: shard 0's end-of-iteration hook, after the log's.
  void flush();

  // The membership once formed (published once, never changed after): null before.
  const cluster::Membership* membership() const { return membership_.load(std::memory_order_acquire); }
  uint64_t self() const;
  uint16_t peer_port() const { return peer_port_.load(std::memory_order_relaxed); }

  // The leader of partition p as its group last said (0: none known).
  uint64_t leader(uint32_t p) const { return leaders_[p].load(std::memory_order_relaxed); }
  // After any step, tick or process of p's group, on the holding shard: what the group itself knows.
  void note_leader(uint32_t p, uint64_t leader, uint64_t term) {
    leaders_[p].store(leader, std::memory_order_relaxed);
    terms_[p].store(term, std::memory_order_relaxed);
  }

  // The group of partition p on this member, with what recovery found for it (`ps`), on the holding
  // shard's thread (or before threads run).
  Status create_group(Shard& shard, Partition& part, PartitionStart& ps);
  // A group's outgoing messages, on the holding shard's thread.
  void send(Shard& from, uint32_t group, std::vector<raft::Message>& messages);
  // The shard's Raft tick: every group ticks and runs its loop.
  void tick(Shard& shard);
  // PUBLISH on this member: the message goes to every other member, which delivers it to its own
  // subscribers (channels and patterns), as Redis Cluster does. Any thread.
  void broadcast_publish(std::string channel, std::string message);
  // Forwarding (docs/cluster.md): a command of a client that cannot follow redirects (memcached, or
  // RESP with cluster_forward_resp), all of whose keys lie in partition p, travels to p's leader,
  // which runs it and sends the reply back; `done` runs on `from`'s thread with the reply, or with an
  // error when no leader answers in time. A read (`read`) whose leader changes while it waits is
  // sent again to the new one; a write never is. Any shard's thread.
  using ForwardDone = std::function<void(proto::Reply&)>;
  void forward(Shard& from, bool read, uint32_t p, std::span<const std::string_view> argv, ForwardDone done);

  // Snapshots between replicas (a replica too far behind for the log the leader keeps in memory):
  // the leader fills an outgoing snapshot message with an image of the partition as applied now; the
  // replica writes it as the partition's newest snapshot file before acknowledging, then loads it.
  Status fill_snapshot(Shard& shard, uint32_t group, raft::Message& m);
  Status install_snapshot(Shard& shard, uint32_t group, const raft::Snapshot& snapshot);
  void restore(Shard& shard, Partition& part, const raft::Snapshot& snapshot);

  // TALLY CLUSTER-SETUP: checks the membership names this node and that the node holds no data,
  // writes <dir>/CLUSTER, publishes it, and creates the groups on every shard. `done` runs on the
  // caller's shard with the outcome.
  Status prepare_setup(const cluster::Membership& m);
  void finish_setup(Shard& home, std::function<void(Status)> done);

  // INFO cluster figures (any thread).
  std::string info_text() const;
  // The peer transport's counters as last published from shard 0 (every tick), for INFO and /metrics.
  struct PeerFigures {
    std::atomic<uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0}, auth_failures{0},
        checksum_failures{0}, unknown_group{0}, oversize{0}, malformed{0}, handshake_timeouts{0}, reconnects{0},
        connect_failures{0}, queue_drops{0}, authenticated{0};
  };
  const PeerFigures& peer_figures() const { return peer_figures_; }
  // Frames delivered and refused, summed for /metrics (any thread; relaxed).
  uint64_t messages_in() const { return messages_in_.load(std::memory_order_relaxed); }
  uint64_t messages_out() const { return messages_out_.load(std::memory_order_relaxed); }

 private:
  void deliver(const transport::InboundFrame& f);
  // Forwarding, on shard 0: a forward from a peer (run on the partition's shard, answered from there)
  // and a reply to one of ours; each tick sends the forwards that wait for a leader and answers those
  // past their deadline.
  void serve_forward(uint64_t from, std::string_view payload);
  void forward_answered(uint64_t from, std::string_view payload);
  void tick_forwards();
  // Sends (or, when this node leads p now, runs) forward `id`; false when p has no leader known yet.
  bool send_forward(uint64_t id);
  // Runs a forwarded command on partition p's shard if this node leads p; `answer` gets the reply,
  // or not_leader = true when the command did not run because this node does not lead p (any thread
  // may call it; `answer` runs on p's shard).
  using ForwardAnswer = std::function<void(proto::Reply&, bool not_leader)>;
  void run_forwarded(uint32_t p, const CommandEntry* e, std::vector<std::string> args, ForwardAnswer answer);
  struct PendingForward {
    Shard* from = nullptr;
    uint32_t partition = 0;
    uint64_t leader = 0;  // where it was sent; 0 while it waits for a leader
    bool read = false;    // safe to send again (it changes nothing)
    uint64_t deadline_ms = 0;
    std::string payload;  // the frame's payload, kept to send again after a "not the leader" answer
    ForwardDone done;
  };
  std::unordered_map<uint64_t, PendingForward> forwards_;  // shard 0 only
  uint64_t next_forward_ = 1;                               // shard 0 only
  // Leader hints, for the partitions a node does not hold (so it can redirect clients to their
  // leaders): every few ticks each node tells every peer which partitions it leads, at which term.
  void announce_leaders();
  void learn_leaders(uint64_t from, std::string_view payload);
  // Hands leadership of some partitions to replicas that lead fewer (on shard 0's announce timer).
  void balance_leaders();
  uint64_t announces_ = 0;  // shard 0 only
  void step(Shard& shard, uint32_t group, std::vector<raft::Message> messages);
  Status load_secret();
  // The transport on shard 0, dialing every other member; on shard 0's thread or before threads run.
  Status start_transport();

  Server& server_;
  std::string secret_;
  std::atomic<uint16_t> peer_port_{0};  // set on shard 0 when the transport starts, read anywhere
  std::atomic<const cluster::Membership*> membership_{nullptr};
  std::unique_ptr<cluster::Membership> owned_;  // what membership_ points to
  std::mutex setup_mu_;
  std::unique_ptr<std::atomic<uint64_t>[]> leaders_;
  std::unique_ptr<std::atomic<uint64_t>[]> terms_;  // the term leaders_[p] was learned at
  std::unique_ptr<transport::PeerTransport> transport_;
  std::atomic<uint64_t> messages_in_{0};
  std::atomic<uint64_t> messages_out_{0};
  std::atomic<uint64_t> messages_refused_{0};
  std::atomic<uint64_t> snapshots_sent_{0};
  std::atomic<uint64_t> snapshots_installed_{0};
  std::atomic<uint64_t> forwards_out_{0}, forwards_in_{0}, forward_timeouts_{0}, forward_refused_{0},
      forwards_rerouted_{0};
  PeerFigures peer_figures_;
  void publish_peer_figures();
};

}  // namespace tally::server
