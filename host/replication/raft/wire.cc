#include "host/replication/raft/wire.h"

namespace tally::raft {

namespace {

// Fixed little-endian fields. A message: type u8, flags u8 (reject, transfer, snapshot follows),
// from, to, term, log_term, index, commit, reject_hint, round (u64 each), context (u32 length +
// bytes), entry count u32, entries (term u64, index u64, type u8, data u32 length + bytes), and, when
// flagged, the snapshot (index u64, term u64, voters and learners as u32 count + u64 ids, data u64
// length + bytes).
constexpr uint8_t kFlagReject = 1;
constexpr uint8_t kFlagTransfer = 2;
constexpr uint8_t kFlagSnapshot = 4;
constexpr uint8_t kFlagsKnown = kFlagReject | kFlagTransfer | kFlagSnapshot;
constexpr size_t kMessageFixedBytes = 2 + 8 * 8 + 4 + 4;
constexpr size_t kEntryFixedBytes = 8 + 8 + 1 + 4;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_ids(std::string& out, const std::vector<NodeId>& ids) {
  put_u32(out, static_cast<uint32_t>(ids.size()));
  for (NodeId n : ids) put_u64(out, n);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  size_t left() const { return b_.size() - at_; }
  bool u8(uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<uint8_t>(b_[at_++]);
    return true;
  }
  bool u32(uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(b_[at_ + i])) << (8 * i);
    at_ += 4;
    return true;
  }
  bool u64(uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(b_[at_ + i])) << (8 * i);
    at_ += 8;
    return true;
  }
  bool bytes(uint64_t n, std::string& out) {
    if (left() < n) return false;
    out.assign(b_.data() + at_, n);
    at_ += n;
    return true;
  }
  bool ids(std::vector<NodeId>& out) {
    uint32_t n = 0;
    if (!u32(n) || n > kWireMembersMax || left() < uint64_t{n} * 8) return false;
    out.resize(n);
    for (NodeId& id : out) u64(id);
    return true;
  }

 private:
  std::string_view b_;
  size_t at_ = 0;
};

Status bad(const std::string& what) { return Status::corruption("raft wire: " + what); }

bool sorted_unique(const std::vector<NodeId>& v) {
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i - 1] >= v[i]) return false;
  }
  return true;
}

Status decode_one(Reader& r, Message& m) {
  uint8_t type = 0, flags = 0;
  if (!r.u8(type) || !r.u8(flags)) return bad("message cut short");
  if (type > static_cast<uint8_t>(MessageType::kTimeoutNow)) return bad("unknown message type " + std::to_string(type));
  if ((flags & ~kFlagsKnown) != 0) return bad("unknown flags");
  m.type = static_cast<MessageType>(type);
  m.reject = (flags & kFlagReject) != 0;
  m.transfer = (flags & kFlagTransfer) != 0;
  uint32_t context_len = 0, entries = 0;
  if (!r.u64(m.from) || !r.u64(m.to) || !r.u64(m.term) || !r.u64(m.log_term) || !r.u64(m.index) ||
      !r.u64(m.commit) || !r.u64(m.reject_hint) || !r.u64(m.round) || !r.u32(context_len) ||
      !r.bytes(context_len, m.context) || !r.u32(entries)) {
    return bad("message cut short");
  }
  if (m.from == kNoNode || m.to == kNoNode) return bad("message from or to node 0");
  // Every entry takes at least its fixed bytes, so the count cannot promise more than is there.
  if (uint64_t{entries} * kEntryFixedBytes > r.left()) return bad("entry count beyond the batch");
  m.entries.resize(entries);
  for (Entry& e : m.entries) {
    uint8_t et = 0;
    uint32_t len = 0;
    if (!r.u64(e.term) || !r.u64(e.index) || !r.u8(et) || !r.u32(len) || !r.bytes(len, e.data)) {
      return bad("entry cut short");
    }
    if (et > static_cast<uint8_t>(EntryType::kConfChange)) return bad("unknown entry type " + std::to_string(et));
    e.type = static_cast<EntryType>(et);
  }
  for (size_t i = 1; i < m.entries.size(); ++i) {
    if (m.entries[i].index != m.entries[i - 1].index + 1) return bad("entries not consecutive");
  }
  if ((flags & kFlagSnapshot) != 0) {
    SnapshotMetadata& md = m.snapshot.metadata;
    uint64_t len = 0;
    if (!r.u64(md.index) || !r.u64(md.term) || !r.ids(md.conf.voters) || !r.ids(md.conf.learners) || !r.u64(len) ||
        !r.bytes(len, m.snapshot.data)) {
      return bad("snapshot cut short");
    }
    if (!sorted_unique(md.conf.voters) || !sorted_unique(md.conf.learners)) return bad("snapshot membership not sorted");
    if (md.index == 0) return bad("a snapshot at index 0");
  }
  return Status::ok();
}

}  // namespace

void encode_messages(std::span<const Message> messages, std::string& out) {
  out.push_back(static_cast<char>(kWireVersion));
  put_u32(out, static_cast<uint32_t>(messages.size()));
  for (const Message& m : messages) {
    const bool snap = !m.snapshot.empty();
    out.push_back(static_cast<char>(m.type));
    out.push_back(static_cast<char>((m.reject ? kFlagReject : 0) | (m.transfer ? kFlagTransfer : 0) |
                                    (snap ? kFlagSnapshot : 0)));
    for (uint64_t v : {m.from, m.to, m.term, m.log_term, m.index, m.commit, m.reject_hint, m.round}) put_u64(out, v);
    put_u32(out, static_cast<uint32_t>(m.context.size()));
    out.append(m.context);
    put_u32(out, static_cast<uint32_t>(m.entries.size()));
    for (const Entry& e : m.entries) {
      put_u64(out, e.term);
      put_u64(out, e.index);
      out.push_back(static_cast<char>(e.type));
      put_u32(out, static_cast<uint32_t>(e.data.size()));
      out.append(e.data);
    }
    if (snap) {
      const SnapshotMetadata& md = m.snapshot.metadata;
      put_u64(out, md.index);
      put_u64(out, md.term);
      put_ids(out, md.conf.voters);
      put_ids(out, md.conf.learners);
      put_u64(out, m.snapshot.data.size());
      out.append(m.snapshot.data);
    }
  }
}

Result<std::vector<Message>> decode_messages(std::string_view bytes) {
  Reader r(bytes);
  uint8_t version = 0;
  uint32_t count = 0;
  if (!r.u8(version) || !r.u32(count)) return bad("batch cut short");
  if (version != kWireVersion) return bad("version " + std::to_string(version) + ", expected " + std::to_string(kWireVersion));
  if (uint64_t{count} * kMessageFixedBytes > r.left()) return bad("message count beyond the batch");
  std::vector<Message> out(count);
  for (Message& m : out) TALLY_RETURN_IF_ERROR(decode_one(r, m));
  if (r.left() != 0) return bad(std::to_string(r.left()) + " bytes after the last message");
  return out;
}

}  // namespace tally::raft
