// Names and the conf-change encoding of the Raft value types.
#include "host/replication/raft/types.h"

namespace tally::raft {

namespace {
// Encoded conf change: one type byte, then the node id as 8 little-endian bytes.
constexpr size_t kConfChangeBytes = 9;
}  // namespace

std::string ConfChange::encode() const {
  TALLY_ASSERT(node != kNoNode);
  std::string out(kConfChangeBytes, '\0');
  out[0] = static_cast<char>(type);
  for (size_t i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((node >> (8 * i)) & 0xff);
  TALLY_ASSERT(out.size() == kConfChangeBytes);
  return out;
}

Result<ConfChange> ConfChange::decode(std::string_view bytes) {
  if (bytes.size() != kConfChangeBytes) return Status::corruption("conf change: bad length");
  const auto type = static_cast<uint8_t>(bytes[0]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) {
    return Status::corruption("conf change: bad type");
  }
  ConfChange cc;
  cc.type = static_cast<ConfChangeType>(type);
  cc.node = 0;
  for (size_t i = 0; i < 8; ++i) cc.node |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[1 + i])) << (8 * i);
  if (cc.node == kNoNode) return Status::corruption("conf change: node 0");
  return cc;
}

const char* message_type_name(MessageType t) {
  switch (t) {
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResp: return "PreVoteResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResp: return "VoteResp";
    case MessageType::kAppend: return "App";
    case MessageType::kAppendResp: return "AppResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResp: return "HeartbeatResp";
    case MessageType::kSnapshot: return "Snap";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResp: return "ReadIndexResp";
    case MessageType::kTimeoutNow: return "TimeoutNow";
  }
  TALLY_UNREACHABLE();
}

const char* role_name(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  TALLY_UNREACHABLE();
}

}  // namespace tally::raft
