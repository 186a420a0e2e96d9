// The command engine: the one protocol-neutral path from a parsed request to its reply value. RESP
// and memcached sessions hand it a command (a command-table entry and its arguments); it finds the
// partitions owning the keys and runs the command there — inline when this shard holds them, as a
// message to the holding shard otherwise, split into one part per partition by the table's Split rule
// when the keys are spread — and gives back a reply value. Only the session encodes it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/proto/reply_value.h"
#include "host/server/command_table.h"
#include "host/server/shard.h"

namespace tally::server {

class Server;
class ClientSession;

using Argv = std::span<const std::string_view>;

// Runs one data command on partition `p`, held by `shard`, on that shard's thread: memory admission
// for writes that may grow memory, the handler, the command's counters. `record` false: the caller
// counts the call itself (a command split over several partitions is one call).
void run_on_partition(Shard& shard, Partition& p, const CommandEntry& e, Argv argv, proto::Reply& out,
                      bool record = true);

// Commands queued for one remote shard are sent together once this many have gathered.
inline constexpr size_t kRemoteBatchCommandsMax = 1024;

class CommandEngine {
 public:
  enum class Outcome : uint8_t {
    kDone,     // the reply is in `out`
    kQueued,   // a place in the session's reply order will be completed later
    kBlocked,  // a partition of the command is moving: nothing ran; run it again after resume_processing()
  };

  // batch_remote: consecutive commands for one remote shard travel as one message and complete one
  // reply place together (RESP); off, every remote command has its own place (memcached).
  // cluster_client: the client follows Redis Cluster's rules (RESP): in cluster mode a command's keys
  // must share one slot (else CROSSSLOT) and a slot another node serves answers -MOVED. Clients that
  // cannot follow redirects (memcached) are not held to them.
  CommandEngine(Server& server, Shard& home, ClientSession& session, uint64_t conn_id, bool batch_remote,
                bool cluster_client);

  Outcome run(const CommandEntry& e, Argv argv, proto::Reply& out);
  // READONLY / READWRITE on a cluster member: reads of a partition this node holds a replica of (not
  // its leader) run on the replica's applied state instead of answering -MOVED.
  void set_replica_reads(bool on) { replica_reads_ = on; }
  bool replica_reads() const { return replica_reads_; }
  // Sends the commands gathered for a remote shard. The session calls it before producing any reply
  // of its own, so replies keep request order.
  void flush();

 private:
  struct RemoteBatch {
    uint32_t shard = UINT32_MAX;
    std::string blob;                          // all arguments, back to back
    std::vector<uint32_t> arg_lens;            // per argument
    std::vector<uint32_t> argc;                // per command
    std::vector<uint32_t> partition;           // per command
    std::vector<const CommandEntry*> entries;  // per command
    std::vector<uint8_t> replica;              // per command: a replica read
  };

  // Cluster mode: checks the command's keys share one slot that this node serves, then runs it on
  // that slot's partition; otherwise answers CROSSSLOT or MOVED.
  Outcome run_cluster(const CommandEntry& e, Argv argv, proto::Reply& out);
  // Runs a command all of whose keys lie in partition p.
  // replica: a replica read (serves_replica_read decides on the holding shard).
  Outcome run_on(uint32_t p, const CommandEntry& e, Argv argv, proto::Reply& out, bool replica = false);
  void run_split(const CommandEntry& e, Argv argv, proto::Reply& out, bool& done);
  // A command that cannot split, whose keys lie in several partitions all held here and not logged
  // (memory mode): run atomically on copies of its keys gathered into one scratch store, the keys it
  // wrote copied back. False when that is not possible (the caller answers CROSSSLOT).
  bool run_gathered(const CommandEntry& e, Argv argv, proto::Reply& out);
  Outcome run_everywhere(const CommandEntry& e, Argv argv, proto::Reply& out);
  void run_scan(const CommandEntry& e, Argv argv, proto::Reply& out, bool& done);

  Server& server_;
  Shard& home_;
  ClientSession& session_;
  uint64_t conn_id_;
  bool batch_remote_;
  bool cluster_rules_;  // cluster mode and a client that follows its rules
  bool replica_reads_ = false;  // READONLY
  // A cluster member's client that cannot follow redirects: commands for partitions led elsewhere go
  // to their leaders inside the cluster (cluster_forward_memcache / cluster_forward_resp).
  bool forward_ = false;
  Outcome forward_to(const CommandEntry& e, uint32_t p, Argv argv);
  RemoteBatch batch_;
  std::vector<size_t> key_pos_;              // scratch: the key positions of the command being routed
  std::vector<std::string_view> key_views_;  // scratch: its keys
  std::vector<uint32_t> key_partitions_;     // scratch: the partition of each key
};

// Merges the replies of a command's parts into one value under its Split rule. For the key rules,
// `part_of_key[i]` is the part that answered key i (in request order); `rng_pick` chooses where
// RANDOMKEY starts. Exposed for tests.
void merge_parts(Split split, std::span<const proto::Reply> parts, std::span<const uint32_t> part_of_key,
                 uint64_t rng_pick, proto::Reply& out);

}  // namespace tally::server
