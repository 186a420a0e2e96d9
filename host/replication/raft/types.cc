// Names and the conf-change encoding of the Raft value types.
#include "host/replication/raft/types.h"

namespace tally::raft {

namespace {
// Encoded conf change: type byte, node id (8 bytes little-endian), then conf_after as a voter
// count byte, voter ids, a learner count byte and learner ids.
constexpr size_t kConfChangeHeaderBytes = 9;
constexpr size_t kConfMembersMax = 255;

void put_u64(std::string& out, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(std::string_view b, size_t at) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

bool get_ids(std::string_view b, size_t* at, std::vector<NodeId>* out) {
  if (*at >= b.size()) return false;
  const size_t n = static_cast<uint8_t>(b[(*at)++]);
  if (b.size() - *at < n * 8) return false;
  for (size_t i = 0; i < n; ++i, *at += 8) out->push_back(get_u64(b, *at));
  return true;
}
}  // namespace

std::string ConfChange::encode() const {
  TALLY_ASSERT(node != kNoNode);
  TALLY_ASSERT(conf_after.voters.size() <= kConfMembersMax && conf_after.learners.size() <= kConfMembersMax);
  std::string out;
  out.push_back(static_cast<char>(type));
  put_u64(out, node);
  out.push_back(static_cast<char>(conf_after.voters.size()));
  for (NodeId n : conf_after.voters) put_u64(out, n);
  out.push_back(static_cast<char>(conf_after.learners.size()));
  for (NodeId n : conf_after.learners) put_u64(out, n);
  return out;
}

Result<ConfChange> ConfChange::decode(std::string_view bytes) {
  if (bytes.size() < kConfChangeHeaderBytes) return Status::corruption("conf change: too short");
  const auto type = static_cast<uint8_t>(bytes[0]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemoveNode)) {
    return Status::corruption("conf change: bad type");
  }
  ConfChange cc;
  cc.type = static_cast<ConfChangeType>(type);
  cc.node = get_u64(bytes, 1);
  if (cc.node == kNoNode) return Status::corruption("conf change: node 0");
  size_t at = kConfChangeHeaderBytes;
  if (at == bytes.size()) return cc;  // no conf_after recorded
  if (!get_ids(bytes, &at, &cc.conf_after.voters) || !get_ids(bytes, &at, &cc.conf_after.learners) ||
      at != bytes.size()) {
    return Status::corruption("conf change: bad member list");
  }
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
