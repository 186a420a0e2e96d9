// Core: the Raft protocol itself (roles, elections, replication, reads, membership, transfer),
// internal to tally_raft; RawNode is its public face and the Ready/advance bookkeeping.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/raft/raft.h"
#include "host/replication/raft/raft_log.h"

namespace tally::raft {

// Heartbeat rounds remembered for lease reads; older rounds can no longer extend a lease.
inline constexpr size_t kLeaseRoundsMax = 256;
// Heartbeat responses a follower may answer while its snapshot is outstanding before the leader
// assumes the snapshot was lost and probes again.
inline constexpr uint32_t kSnapshotWaitHeartbeatsMax = 20;
// Outgoing messages buffered between two Readys; exceeding it is a shell that stopped calling ready().
inline constexpr size_t kOutboxMessagesMax = 1u << 16;

class Core {
 public:
  Core(const Config& config, const Storage* storage);

  void tick();
  void set_time_ms(uint64_t monotonic_ms);
  Status step(const Message& m);
  Status campaign();
  Status propose(std::span<const std::string> batch);
  Status propose_conf_change(const ConfChange& cc);
  ConfState apply_conf_change(const ConfChange& cc);
  Status read_index(std::string context);
  Status transfer_leader(NodeId target);
  void report_unreachable(NodeId to);

  bool has_ready() const;
  Ready ready();
  void advance();

  NodeStatus status() const;
  NodeId id() const { return id_; }
  NodeId leader() const { return lead_; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  const RaftLog& log() const { return log_; }

  TallyInput tally_input() const;
  bool commit_to_quorum_index(Index quorum_index);

 private:
  struct PendingRead {
    std::string context;
    Index index = 0;
    uint64_t round = 0;
    NodeId from = kNoNode;  // who asked: this node or a follower
  };
  struct Inflight {
    Index last = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
  };

  // Roles.
  void reset(Term term);
  void become_follower(Term term, NodeId lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void hup(bool transfer);
  void start_campaign(bool pre_vote, bool transfer);
  bool promotable() const;
  size_t quorum() const;

  // Message handling.
  void send(Message m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_append_resp(const Message& m);
  void handle_heartbeat_resp(const Message& m);
  void handle_leader_read(PendingRead read);

  // Replication.
  bool paused(const Progress& pr) const;
  bool send_append(NodeId to, bool send_if_empty);
  void bcast_append();
  void bcast_heartbeat();
  void become_probe(NodeId n);
  void become_replicate(Progress& pr);
  void free_inflights_to(NodeId to, Index index);
  void maybe_commit();
  void append_entries(std::vector<Entry> ents);
  bool committed_in_term() const;

  // Reads.
  uint64_t quorum_acked_round() const;
  void release_reads();
  bool lease_valid() const;

  // Membership.
  void apply_conf_state(const ConfState& cs);
  std::vector<NodeId> replicas() const;
  bool is_voter(NodeId n) const;
  bool is_learner(NodeId n) const;
  HardState hard_state() const;

  Config config_;
  const Storage* storage_;
  NodeId id_;
  RaftLog log_;
  Rng rng_;

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  ConfState conf_;
  std::map<NodeId, Progress> prs_;
  std::map<NodeId, std::deque<Inflight>> inflights_;
  std::map<NodeId, uint32_t> snapshot_wait_;
  std::map<NodeId, bool> votes_;

  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_timeout_ = 0;
  Index pending_conf_index_ = 0;
  NodeId lead_transferee_ = kNoNode;
  bool timeout_now_sent_ = false;

  // Reads: heartbeat rounds and the highest round each peer acknowledged.
  uint64_t round_ = 0;
  std::map<NodeId, uint64_t> acked_round_;
  std::deque<PendingRead> pending_reads_;
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ms_;  // (round, monotonic ms)
  uint64_t now_ms_ = 0;
  std::vector<ReadState> read_states_;

  // Ready bookkeeping.
  std::vector<Message> msgs_;
  bool pending_bcast_ = false;
  bool tally_dirty_ = false;
  HardState prev_hard_state_;
  SoftState prev_soft_state_;
  bool ready_in_progress_ = false;
  Index ready_last_index_ = 0;
  Term ready_last_term_ = 0;
  Index ready_snapshot_index_ = 0;
  Index ready_applied_to_ = 0;
};

}  // namespace tally::raft
