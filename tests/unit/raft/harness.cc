// The in-memory Raft test cluster: a shell that follows the Ready contract exactly.
#include "tests/unit/raft/harness.h"

#include <algorithm>
#include <sstream>

namespace tally::raft::testing {

namespace {

const char* entry_type_name(EntryType t) {
  switch (t) {
    case EntryType::kNormal: return "";
    case EntryType::kNoop: return "noop";
    case EntryType::kConfChange: return "conf";
  }
  return "?";
}

std::string format_conf_change(const std::string& data) {
  auto cc = ConfChange::decode(data);
  if (!cc.is_ok()) return "bad-conf-change";
  const char* what = cc->type == ConfChangeType::kAddVoter     ? "add-voter"
                     : cc->type == ConfChangeType::kAddLearner ? "add-learner"
                                                               : "remove";
  return std::string(what) + " " + std::to_string(cc->node);
}

std::string join_applied(const std::vector<std::string>& applied) {
  std::string out;
  for (size_t i = 0; i < applied.size(); ++i) out += (i ? "," : "") + applied[i];
  return out;
}

std::vector<std::string> split_applied(const std::string& data) {
  std::vector<std::string> out;
  if (data.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t comma = data.find(',', start);
    out.push_back(data.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string format_ids(const std::vector<NodeId>& ids) {
  std::string out = "(";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + ")";
}

std::string format_entry(const Entry& e) {
  std::string out = std::to_string(e.term) + "/" + std::to_string(e.index) + " ";
  if (e.type == EntryType::kNormal) return out + "\"" + e.data + "\"";
  if (e.type == EntryType::kConfChange) return out + "conf(" + format_conf_change(e.data) + ")";
  return out + entry_type_name(e.type);
}

std::string format_message(const Message& m) {
  std::ostringstream o;
  o << m.from << "->" << m.to << " " << message_type_name(m.type) << " term=" << m.term;
  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      o << " last=" << m.log_term << "/" << m.index << (m.transfer ? " transfer" : "");
      break;
    case MessageType::kPreVoteResp:
    case MessageType::kVoteResp:
      o << (m.reject ? " rejected" : " granted");
      break;
    case MessageType::kAppend: {
      o << " prev=" << m.log_term << "/" << m.index << " commit=" << m.commit;
      if (!m.entries.empty()) {
        o << " entries=[";
        for (size_t i = 0; i < m.entries.size(); ++i) o << (i ? ", " : "") << format_entry(m.entries[i]);
        o << "]";
      }
      break;
    }
    case MessageType::kAppendResp:
      if (m.reject) {
        o << " reject index=" << m.index << " hint=" << m.log_term << "/" << m.reject_hint;
      } else {
        o << " index=" << m.index;
      }
      break;
    case MessageType::kHeartbeat:
      o << " commit=" << m.commit << " round=" << m.round;
      break;
    case MessageType::kHeartbeatResp:
      o << " round=" << m.round;
      break;
    case MessageType::kSnapshot:
      o << " snapshot=" << m.snapshot.metadata.term << "/" << m.snapshot.metadata.index
        << " voters=" << format_ids(m.snapshot.metadata.conf.voters);
      break;
    case MessageType::kReadIndex:
      o << " context=" << m.context;
      break;
    case MessageType::kReadIndexResp:
      if (m.reject) {
        o << " rejected context=" << m.context;
      } else {
        o << " index=" << m.index << " context=" << m.context;
      }
      break;
    case MessageType::kTimeoutNow:
      break;
  }
  return o.str();
}

void TestClock::set_ms(uint64_t ms) {
  TALLY_ASSERT_MSG(ms >= ms_, "test clock set backwards");
  ms_ = ms;
}

void Cluster::set_time_ms(NodeId id, uint64_t ms) { node(id).clock->set_ms(ms); }

void Cluster::add_nodes(const std::vector<NodeId>& ids, const std::vector<NodeId>& voters,
                        const std::vector<NodeId>& learners, const Config& base) {
  for (NodeId id : ids) {
    TALLY_ASSERT(!has(id));
    Node n;
    n.config = base;
    n.config.id = id;
    // Distinct election-timeout streams per node even when the caller gives one seed to all.
    if (base.seed != 0) n.config.seed = base.seed * 1000003 + id;
    n.config.voters = voters;
    n.config.learners = learners;
    n.clock = std::make_unique<TestClock>();
    n.config.lease_read.clock = n.clock.get();
    n.storage = std::make_unique<MemoryStorage>();
    auto raw = RawNode::create(n.config, n.storage.get());
    TALLY_ASSERT_MSG(raw.is_ok(), raw.status().to_string().c_str());
    n.raw = std::move(raw.value());
    nodes_.emplace(id, std::move(n));
  }
}

Cluster::Node& Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  TALLY_ASSERT(it != nodes_.end());
  return it->second;
}

RawNode& Cluster::raw(NodeId id) {
  Node& n = node(id);
  TALLY_ASSERT_MSG(n.raw != nullptr, "node is crashed");
  return *n.raw;
}

std::vector<NodeId> Cluster::ids() const {
  std::vector<NodeId> out;
  for (auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

bool Cluster::process_ready(NodeId id, std::string* out) {
  Node& n = node(id);
  if (!n.raw || !n.raw->has_ready()) return false;
  Ready rd = n.raw->ready();
  std::ostringstream o;
  o << "> " << id << " handling Ready\n";
  if (rd.soft_state) {
    o << "  soft: leader=" << rd.soft_state->leader << " role=" << role_name(rd.soft_state->role) << "\n";
  }
  if (rd.hard_state) {
    o << "  hard: term=" << rd.hard_state->term << " vote=" << rd.hard_state->vote
      << " commit=" << rd.hard_state->commit << "\n";
  }
  // 0. A leader's messages that may leave before it persists.
  for (const Message& m : rd.early_messages) {
    o << "  send early: " << format_message(m) << "\n";
    queue_.push_back(m);
  }
  // 1. Persist: snapshot, entries, hard state.
  if (rd.snapshot) {
    const SnapshotMetadata& md = rd.snapshot->metadata;
    o << "  snapshot: " << md.term << "/" << md.index << " voters=" << format_ids(md.conf.voters)
      << " learners=" << format_ids(md.conf.learners) << " data=\"" << rd.snapshot->data << "\"\n";
    TALLY_ASSERT(n.storage->apply_snapshot(*rd.snapshot).is_ok());
    n.applied = split_applied(rd.snapshot->data);
    n.applied_index = md.index;
    if (on_snapshot) on_snapshot(id, *rd.snapshot);
  }
  if (!rd.entries.empty()) {
    o << "  entries:";
    for (const Entry& e : rd.entries) o << " " << format_entry(e);
    o << "\n";
    TALLY_ASSERT(n.storage->append(rd.entries).is_ok());
  }
  if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
  // 2. Send.
  for (const Message& m : rd.messages) {
    o << "  send: " << format_message(m) << "\n";
    queue_.push_back(m);
  }
  // 3. Apply.
  if (!rd.committed_entries.empty()) {
    o << "  apply:";
    for (const Entry& e : rd.committed_entries) {
      o << " " << format_entry(e);
      if (on_apply) on_apply(id, e);
      if (e.type == EntryType::kNormal) n.applied.push_back(e.data);
      if (e.type == EntryType::kConfChange) {
        auto cc = ConfChange::decode(e.data);
        TALLY_ASSERT(cc.is_ok());
        n.storage->set_conf(n.raw->apply_conf_change(cc.value()));
      }
      n.applied_index = e.index;
    }
    o << "\n";
  }
  for (const ReadState& r : rd.read_states) {
    o << "  read: index=" << r.index << " context=" << r.context << "\n";
    n.reads.push_back(r);
  }
  for (const std::string& context : rd.failed_reads) {
    o << "  read failed: context=" << context << "\n";
    n.failed_reads.push_back(context);
  }
  // 4. Advance.
  n.raw->advance();
  if (out) *out += o.str();
  return true;
}

bool Cluster::connected(NodeId from, NodeId to) const {
  if (cuts_.count({from, to})) return false;
  if (partition_.empty()) return true;
  for (const auto& g : partition_) {
    if (g.count(from) && g.count(to)) return true;
  }
  return false;
}

size_t Cluster::deliver(const std::set<NodeId>& to, const std::set<NodeId>& drop, std::string* out) {
  std::vector<Message> keep;
  std::vector<Message> now;
  for (Message& m : queue_) {
    if (to.empty() || to.count(m.to)) {
      now.push_back(std::move(m));
    } else {
      keep.push_back(std::move(m));
    }
  }
  queue_ = std::move(keep);
  size_t delivered = 0;
  for (const Message& m : now) {
    const bool live = has(m.to) && node(m.to).raw != nullptr;
    if (drop.count(m.to) || !connected(m.from, m.to) || !live) {
      if (out) *out += "  dropped: " + format_message(m) + "\n";
      continue;
    }
    if (out) *out += "  deliver: " + format_message(m) + "\n";
    Status st = node(m.to).raw->step(m);
    if (!st.is_ok() && out) *out += "  step error: " + st.to_string() + "\n";
    ++delivered;
  }
  return delivered;
}

void Cluster::stabilize(const std::set<NodeId>& only, std::string* out) {
  for (int round = 0; round < kStabilizeRoundsMax; ++round) {
    bool moved = false;
    for (auto& [id, n] : nodes_) {
      if (only.empty() || only.count(id)) moved |= process_ready(id, out);
    }
    const bool pending = std::any_of(queue_.begin(), queue_.end(),
                                     [&](const Message& m) { return only.empty() || only.count(m.to); });
    if (pending) {
      deliver(only, {}, out);
      moved = true;
    }
    if (!moved) return;
  }
  TALLY_ASSERT_MSG(false, "cluster did not stabilize");
}

void Cluster::tick_all(int times) {
  for (int t = 0; t < times; ++t) {
    for (auto& [id, n] : nodes_) {
      if (n.raw) n.raw->tick();
    }
    settle();
  }
}

void Cluster::partition(const std::vector<std::set<NodeId>>& groups) { partition_ = groups; }

void Cluster::cut(const std::set<NodeId>& from, const std::set<NodeId>& to) {
  for (NodeId f : from) {
    for (NodeId t : to) cuts_.insert({f, t});
  }
}

void Cluster::heal() {
  partition_.clear();
  cuts_.clear();
}

void Cluster::crash(NodeId id) {
  Node& n = node(id);
  // Whatever the node had not persisted is gone; its state machine is rebuilt on restart.
  n.raw.reset();
  n.applied.clear();
  n.applied_index = 0;
  n.reads.clear();
  n.failed_reads.clear();
}

Status Cluster::restart(NodeId id) {
  Node& n = node(id);
  TALLY_ASSERT(n.raw == nullptr);
  auto snap = n.storage->snapshot();
  TALLY_ASSERT(snap.is_ok());
  n.applied = split_applied(snap->data);
  n.applied_index = snap->metadata.index;
  Config c = n.config;
  c.applied = n.applied_index;
  auto raw = RawNode::create(c, n.storage.get());
  if (!raw.is_ok()) return raw.status();
  n.raw = std::move(raw.value());
  return Status::ok();
}

Status Cluster::compact(NodeId id, Index i) {
  Node& n = node(id);
  if (i > n.applied_index) return Status::invalid("compact past the applied index");
  if (i < n.storage->first_index()) return Status(Code::kAlreadyExists, "already compacted");
  // The applied values up to i: entries after i were applied after it, so rebuild from the log.
  std::vector<std::string> upto = split_applied(n.storage->snapshot()->data);
  auto ents = n.storage->entries(n.storage->first_index(), i + 1, UINT64_MAX);
  if (!ents.is_ok()) return ents.status();
  for (const Entry& e : ents.value()) {
    if (e.type == EntryType::kNormal) upto.push_back(e.data);
  }
  auto snap = n.storage->create_snapshot(i, n.raw ? n.raw->status().conf : n.storage->initial_state().conf,
                                         join_applied(upto));
  if (!snap.is_ok()) return snap.status();
  return n.storage->compact(i);
}

std::string Cluster::status_line(NodeId id) {
  Node& n = node(id);
  std::ostringstream o;
  if (!n.raw) {
    o << id << ": crashed\n";
    return o.str();
  }
  const NodeStatus st = n.raw->status();
  o << id << ": term=" << st.hard_state.term << " vote=" << st.hard_state.vote << " commit=" << st.hard_state.commit
    << " applied=" << st.applied << " last=" << st.last_index << " role=" << role_name(st.soft_state.role)
    << " leader=" << st.soft_state.leader << " voters=" << format_ids(st.conf.voters)
    << " learners=" << format_ids(st.conf.learners) << "\n";
  for (const auto& [peer, pr] : st.progress) {
    if (peer == id) continue;
    o << "  " << peer << ": match=" << pr.match << " next=" << pr.next << " " << progress_state_name(pr.state)
      << (pr.learner ? " learner" : "") << " inflight=" << pr.inflights.msgs() << "\n";
  }
  o << "  applied: [" << join_applied(n.applied) << "]\n";
  return o.str();
}

std::string Cluster::log_lines(NodeId id) {
  Node& n = node(id);
  std::ostringstream o;
  auto snap = n.storage->snapshot();
  if (snap.is_ok() && !snap->empty()) {
    o << "snapshot " << snap->metadata.term << "/" << snap->metadata.index << "\n";
  }
  auto ents = n.storage->entries(n.storage->first_index(), n.storage->last_index() + 1, UINT64_MAX);
  TALLY_ASSERT(ents.is_ok());
  if (ents->empty() && (!snap.is_ok() || snap->empty())) o << "(empty)\n";
  for (const Entry& e : ents.value()) o << format_entry(e) << "\n";
  return o.str();
}

NodeId Cluster::leader() const {
  NodeId best = kNoNode;
  Term best_term = 0;
  for (auto& [id, n] : nodes_) {
    if (n.raw && n.raw->role() == Role::kLeader && n.raw->term() >= best_term) {
      best = id;
      best_term = n.raw->term();
    }
  }
  return best;
}

}  // namespace tally::raft::testing
