// Value types of the Raft core: log entries, hard state, snapshots, membership and peer messages.
// Plain data with no behaviour beyond small helpers; the shell serialises them for the WAL and wire.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "host/common/status.h"

namespace tally::raft {

using NodeId = uint64_t;
using Term = uint64_t;
using Index = uint64_t;

// Node id 0 means "nobody" (no vote, no known leader); real nodes are numbered from 1.
inline constexpr NodeId kNoNode = 0;

enum class EntryType : uint8_t {
  kNormal = 0,      // client data, applied by the state machine
  kNoop = 1,        // appended by a new leader so it can commit entries of its term
  kConfChange = 2,  // data holds an encoded ConfChange
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// Bytes an entry counts for in flow control and message size limits.
inline uint64_t entry_bytes(const Entry& e) { return e.data.size() + 24; }

// What must be on stable storage before any message that depends on it is sent.
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  bool operator==(const HardState&) const = default;
  bool empty() const { return term == 0 && vote == kNoNode && commit == 0; }
};

// Membership: voters decide elections and commits; learners only receive the log.
struct ConfState {
  std::vector<NodeId> voters;    // sorted, unique
  std::vector<NodeId> learners;  // sorted, unique, disjoint from voters

  bool operator==(const ConfState&) const = default;
  bool empty() const { return voters.empty() && learners.empty(); }
};

// Single-server membership change: one node added, promoted or removed per entry.
enum class ConfChangeType : uint8_t {
  kAddVoter = 0,    // also promotes an existing learner
  kAddLearner = 1,  // also demotes an existing voter
  kRemoveNode = 2,
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddVoter;
  NodeId node = kNoNode;
  // The full membership once applied, filled in by the leader at proposal time, so a node that
  // joins with an empty configuration learns the whole group from the entry itself.
  ConfState conf_after;

  bool operator==(const ConfChange&) const = default;
  std::string encode() const;
  static Result<ConfChange> decode(std::string_view bytes);
};

struct SnapshotMetadata {
  Index index = 0;  // last log index the snapshot covers
  Term term = 0;    // term of that entry
  ConfState conf;   // membership as of index

  bool operator==(const SnapshotMetadata&) const = default;
};

struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;  // the state machine image, opaque to the core

  bool operator==(const Snapshot&) const = default;
  bool empty() const { return metadata.index == 0; }
};

enum class MessageType : uint8_t {
  kPreVote = 0,        // "would you vote for me at term+1?"; changes no state on the receiver
  kPreVoteResp = 1,
  kVote = 2,           // RequestVote
  kVoteResp = 3,
  kAppend = 4,         // AppendEntries: index/log_term name the entry before `entries`
  kAppendResp = 5,     // index = receiver's last matching index, or reject with reject_hint
  kHeartbeat = 6,      // carries commit (clamped to the follower's match) and a round number
  kHeartbeatResp = 7,
  kSnapshot = 8,       // InstallSnapshot, whole snapshot in one message
  kReadIndex = 9,      // follower asks the leader for a read index; context identifies the read
  kReadIndexResp = 10,
  kTimeoutNow = 11,    // leadership transfer: campaign now, past pre-vote and leader stickiness
};

const char* message_type_name(MessageType t);

// Response types, and pre-vote (sent at a future term), do not move the receiver's term by themselves.
inline bool is_response(MessageType t) {
  return t == MessageType::kPreVoteResp || t == MessageType::kVoteResp ||
         t == MessageType::kAppendResp || t == MessageType::kHeartbeatResp ||
         t == MessageType::kReadIndexResp;
}

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  Term log_term = 0;  // kAppend: term at index; kVote/kPreVote: candidate's last term; kAppendResp: hint's term
  Index index = 0;    // kAppend: previous index; kVote: candidate's last index; kAppendResp: match
  Index commit = 0;
  std::vector<Entry> entries;
  bool reject = false;
  Index reject_hint = 0;  // kAppendResp reject: where the receiver's log may match (log_term: its term)
  uint64_t round = 0;     // kHeartbeat/-Resp: leader's heartbeat round, for ReadIndex and leases
  bool transfer = false;  // kVote/kPreVote: campaign caused by leadership transfer
  std::string context;    // kReadIndex/-Resp: the read's identifier
  Snapshot snapshot;      // kSnapshot only

  bool operator==(const Message&) const = default;
};

// One completed linearizable read: serve it once the state machine has applied `index`.
struct ReadState {
  Index index = 0;
  std::string context;

  bool operator==(const ReadState&) const = default;
};

enum class Role : uint8_t { kFollower = 0, kPreCandidate = 1, kCandidate = 2, kLeader = 3 };

const char* role_name(Role r);

// Volatile state the shell may want to observe (who leads); never persisted.
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;

  bool operator==(const SoftState&) const = default;
};

}  // namespace tally::raft
