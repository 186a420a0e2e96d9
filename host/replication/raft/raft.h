// The Raft core: a deterministic, single-threaded state machine with no I/O, threads or clocks.
// Ticks, messages and proposals go in; a Ready comes out (persist, then send, then apply), then advance().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "host/common/clock.h"
#include "host/common/status.h"
#include "host/replication/raft/progress.h"
#include "host/replication/raft/quorum.h"
#include "host/replication/raft/storage.h"
#include "host/replication/raft/types.h"

namespace tally::raft {

// Test-only planted bugs, all off by default. The simulator turns one on and asserts that its
// checkers catch it; production code never sets them. Each disables the core assertion it breaks.
struct RaftBugs {
  bool count_prior_term_replicas = false;    // commit an earlier-term entry by counting replicas (Figure 8)
  bool vote_without_persist = false;         // grant a vote without putting it in the Ready's hard state
  bool apply_before_commit = false;          // hand out entries for application before they commit
  bool accept_mismatched_prev_term = false;  // follower accepts an append whose prev term mismatches
};

// Lease reads: a leader answers reads locally while a quorum acknowledged it within the lease.
// The lease is election_tick * tick_interval_ms - clock_drift_max_ms from the moment the
// acknowledged heartbeat round was sent. It holds because, with leases on, every node measures
// leader stickiness in time on the same kind of clock: a node that heard from a leader at t
// neither grants a vote nor campaigns on its own before t + election_tick * tick_interval_ms, and
// a node that restarts waits that long after it starts. Every node of the group must use the
// same options. validate() refuses leases without check_quorum or without a clock.
struct LeaseReadOptions {
  bool enabled = false;
  uint64_t tick_interval_ms = 100;   // the shell's tick period
  uint64_t clock_drift_max_ms = 20;  // bound on how far any two nodes' clocks drift over a lease
  // The node's monotonic clock, read when a heartbeat round is sent, when a lease read is
  // checked and when a leader is heard from. The shell keeps it current (it is read, not set);
  // it must outlive the RawNode and never go backwards.
  const Clock* clock = nullptr;
};

struct Config {
  NodeId id = kNoNode;
  // Membership for a brand-new group; ignored when storage already holds a ConfState.
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  uint32_t election_tick = 10;  // followers wait [election_tick, 2*election_tick) ticks
  uint32_t heartbeat_tick = 1;  // leader heartbeats every heartbeat_tick ticks
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t seed = 0;  // randomises the election timeout; 0 means "use id"
  // Last index the shell's state machine has applied (restarts); committed entries after it are
  // handed out again. Raised to the storage's snapshot index when lower.
  Index applied = 0;

  // Flow control per follower, and message size.
  uint32_t max_inflight_msgs = 64;
  uint64_t max_inflight_entries = 4096;
  uint64_t max_inflight_bytes = 8u << 20;
  uint64_t max_size_per_msg = 1u << 20;
  // Bound on proposals not yet committed; propose() returns kResourceExhausted beyond it.
  uint64_t max_uncommitted_entries = 16384;
  // Bound on committed entries handed out in one Ready.
  uint64_t max_committed_bytes_per_ready = 8u << 20;
  // Bound on pending reads (ReadIndex requests waiting for a quorum).
  uint32_t max_pending_reads = 4096;

  LeaseReadOptions lease_read;

  // When true the core never computes its commit index itself: a node-level driver batches many
  // groups' tally_input() through the offload engine's `tally` op and calls commit_to_quorum_index().
  bool external_tally = false;

  // A leader sends its appends and heartbeats before its own copy of the entries is durable (in
  // parallel with its disk write, Raft thesis 10.2.1), in Ready::early_messages. It then counts its
  // own copy toward a quorum only once persisted (advance()), so an entry commits only when a
  // majority's disks hold it, whoever they are.
  bool leader_sends_before_persist = false;

  RaftBugs bugs;

  Status validate() const;
};

struct NodeStatus {
  NodeId id = kNoNode;
  HardState hard_state;
  SoftState soft_state;
  Index applied = 0;
  Index last_index = 0;
  Index first_index = 0;
  NodeId lead_transferee = kNoNode;
  ConfState conf;
  std::map<NodeId, Progress> progress;  // leader only
};

// Everything the shell must do, in order:
//   0. send early_messages (may go before step 1; only with Config::leader_sends_before_persist);
//   1. persist snapshot (if any), entries and hard_state (if any), durably when must_sync;
//   2. send messages;
//   3. apply committed_entries (conf changes through apply_conf_change()), serve read_states and
//      fail failed_reads;
//   4. call advance().
struct Ready {
  std::optional<SoftState> soft_state;  // present when it changed
  std::optional<HardState> hard_state;  // present when it changed
  std::vector<Entry> entries;           // append to the log, replacing any suffix from entries[0].index
  std::optional<Snapshot> snapshot;     // install before the entries
  std::vector<Message> messages;
  // A leader's appends, heartbeats, snapshots and read answers that depend on nothing this Ready
  // persists (its term and vote are durable already): sent before persisting.
  std::vector<Message> early_messages;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;
  // Contexts of accepted reads that will never get a ReadState (leadership lost, the leader
  // refused or never answered a forwarded read): the shell fails them, and may retry.
  std::vector<std::string> failed_reads;
  bool must_sync = false;  // entries, term or vote changed: fsync before sending
};

class Core;

// Not thread-safe: one owner thread drives it. Operating errors (not leader, busy, full) are
// returned as Status; programmer errors (a Ready not advanced, a broken invariant) abort.
class RawNode {
 public:
  // The core reads `storage` (never writes it); the shell keeps it alive and writes it per Ready.
  static Result<std::unique_ptr<RawNode>> create(const Config& config, const Storage* storage);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // One logical clock tick: election timeout, heartbeats, check-quorum, transfer timeout.
  void tick();

  // A message from a peer. Messages from an older term are answered or dropped, never errors.
  Status step(const Message& m);

  // Start an election now (pre-vote first when configured). With leases on, refused while this
  // node heard from a leader within an election timeout (its vote may hold up that leader's lease).
  Status campaign();
  // Leader only: append a batch of normal entries. kUnavailable when not leader or transferring.
  Status propose(std::span<const std::string> batch);
  Status propose(std::string data);
  // Leader only: one membership change; refused while another is pending, or before the leader
  // committed an entry of its term.
  Status propose_conf_change(const ConfChange& cc);
  // The shell calls this when it applies a committed conf-change entry; returns the new ConfState.
  ConfState apply_conf_change(const ConfChange& cc);
  // Linearizable read: once accepted (ok), `context` comes back in a later Ready exactly once,
  // either as a ReadState or in failed_reads, within an election timeout of ticks unless this
  // node's leadership is confirmed round after round. Uses the lease when enabled and valid, else
  // waits for the next heartbeat round (reads between two rounds share it). Followers forward it
  // to the leader.
  Status read_index(std::string context);
  // Leader only: hand leadership to `target` once it has caught up (aborts after election_tick).
  Status transfer_leader(NodeId target);
  // Leader only: the shell could not deliver a snapshot to `to`; fall back to probing.
  void report_unreachable(NodeId to);

  bool has_ready() const;
  Ready ready();
  // Acknowledge the last Ready: everything in it was persisted, sent and applied.
  void advance();

  NodeStatus status() const;
  NodeId id() const;
  NodeId leader() const;
  Role role() const;
  Term term() const;
  Index commit_index() const;
  Index applied_index() const;
  Index last_index() const;  // the last entry of this node's log (persisted or not); after propose(): the batch's last

  // Tally seam for node-level batching (see Config::external_tally). tally_input() is valid on
  // the leader only; commit_to_quorum_index() takes the quorum index the tally op computed from
  // `input` and commits it if this node still leads in input's term and configuration (a batch
  // may run asynchronously) and the index holds an entry of the current term (or any term under
  // bugs.count_prior_term_replicas). Returns whether the commit index advanced.
  bool is_leader() const;
  TallyInput tally_input() const;
  bool commit_to_quorum_index(const TallyInput& input, Index quorum_index);

 private:
  explicit RawNode(std::unique_ptr<Core> core);
  std::unique_ptr<Core> core_;
};

}  // namespace tally::raft
