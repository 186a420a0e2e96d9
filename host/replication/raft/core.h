// Core: the Raft protocol (roles, elections, replication, reads, membership, transfer), internal
// to tally_raft; RawNode is its public face. One class whose member functions live in one file
// per concern (see docs/raft.md); the pieces with state of their own are small classes beside it:
// Progress/Inflights (progress.h), the majority rule (quorum.h), ReadOnly (read_only.h),
// membership arithmetic (confchange.h) and the log (raft_log.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/replication/raft/mutant.h"
#include "host/replication/raft/raft.h"
#include "host/replication/raft/raft_log.h"
#include "host/replication/raft/read_only.h"

namespace tally::raft {

// Heartbeat responses a follower may answer while its snapshot is outstanding before the leader
// assumes the snapshot was lost and probes again.
inline constexpr uint32_t kSnapshotWaitHeartbeatsMax = 20;
// Outgoing messages buffered between two Readys; exceeding it is a shell that stopped calling ready().
inline constexpr size_t kOutboxMessagesMax = 1u << 16;

class Core {
 public:
  Core(const Config& config, const Storage* storage);

  void tick();
  Status step(const Message& m);
  Status campaign();
  Status propose(std::span<const std::string> batch);
  Status propose_one(std::string data);  // the entry takes the string (no copy)
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
  bool commit_to_quorum_index(const TallyInput& input, Index quorum_index);

 private:
  // Whether `entries` more proposals are accepted now (leader, no transfer, uncommitted bound).
  Status may_propose(size_t entries) const;
  // core.cc: inputs, dispatch, the outbox and the Ready.
  void send(Message m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void tick_leader();
  void tick_election();
  HardState hard_state() const;

  // election.cc: roles, campaigns, votes, check-quorum.
  void reset(Term term);
  void become_follower(Term term, NodeId lead);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void hup(bool transfer);
  void start_campaign(bool pre_vote, bool transfer);
  bool promotable() const;
  // Leader stickiness: a node that heard from a live leader within an election timeout ignores
  // vote requests that would disrupt it. With leases on, the timeout is also measured in time.
  bool heard_from_leader_recently();
  // With leases on: no vote for another node, and no campaign of our own, before this time.
  bool sticky_in_time();
  void note_leader_contact();
  // The lease clock in nanoseconds (leases on only); asserts it never goes backwards.
  uint64_t lease_clock_ns();
  // Election timeout in time: how long a node stays sticky after hearing from a leader.
  uint64_t stickiness_ns() const;
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  // Check-quorum: false when a majority of voters has not been heard from since the last call.
  bool quorum_recently_active();

  // replication.cc: appends, heartbeats and the commit rule (leader), and the follower's side.
  FlowLimits flow_limits() const;
  bool send_append(NodeId to, bool send_if_empty);
  void bcast_append();
  void bcast_heartbeat();
  void handle_append_resp(const Message& m);
  void handle_heartbeat_resp(const Message& m);
  void become_probe(NodeId peer);
  void append_entries(std::vector<Entry> ents);
  void maybe_commit();
  // This node's own copy in the commit quorum: its whole log, or with leader_sends_before_persist
  // only what is durable.
  Index own_match() const {
    return config_.leader_sends_before_persist && !TALLY_MUTANT(count_unpersisted_self) ? log_.persisted_last()
                                                                                         : log_.last_index();
  }
  bool commit_quorum_index(Index quorum_index);
  bool committed_in_term() const;
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);

  // reads.cc: ReadIndex and leases.
  void handle_leader_read(ReadOnly::PendingRead read);
  void complete_read(ReadOnly::PendingRead read);
  void refuse_forwarded_read(const Message& m);
  void handle_read_index_resp(const Message& m);
  // Leadership or the term is lost: every read this node was waiting on fails.
  void fail_waiting_reads();
  void tick_forwarded_reads();
  uint64_t quorum_acked_round() const;
  void confirm_rounds();
  bool lease_valid();

  // membership.cc.
  void apply_conf_state(const ConfState& cs);
  bool is_voter(NodeId n) const;
  bool is_learner(NodeId n) const;
  // Replica slots in tally order (node id), with a bit per voter.
  uint32_t voter_mask() const;

  // transfer.cc: leadership transfer.
  void send_timeout_now(NodeId to);
  void maybe_finish_transfer(NodeId from);

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
  uint64_t conf_version_ = 0;  // bumped by every apply_conf_state()
  std::map<NodeId, Progress> prs_;  // every replica, this node included; leader only
  std::map<NodeId, bool> votes_;    // granted (true) or refused, by voter; candidates only

  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_timeout_ = 0;
  Index pending_conf_index_ = 0;
  NodeId lead_transferee_ = kNoNode;
  bool timeout_now_sent_ = false;

  ReadOnly read_only_;
  uint64_t last_clock_ns_ = 0;   // last reading of the lease clock
  uint64_t sticky_until_ns_ = 0;  // leases on: see sticky_in_time()
  std::vector<ReadState> read_states_;
  std::vector<std::string> failed_reads_;
  bool round_requested_ = false;  // reads wait for a heartbeat round: send one with the next Ready

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
