#include "host/replication/group/group.h"

#include "host/common/assert.h"

namespace tally::group {

void StateMachine::apply_internal(uint32_t, const raft::Entry&, const raft::ConfState*) {}
void StateMachine::restore(uint32_t group, const raft::Snapshot&) {
  TALLY_ASSERT_MSG(false, "group: a snapshot was installed on a state machine that cannot restore one");
  (void)group;
}
void StateMachine::read_ready(uint32_t, const raft::ReadState&) {}
void StateMachine::read_failed(uint32_t, const std::string&) {}
void ReadyObserver::after_advance(uint32_t) {}

Result<std::unique_ptr<ReplicaGroup>> ReplicaGroup::create(uint32_t id, GroupOptions options,
                                                           std::unique_ptr<raft::MemoryStorage> storage,
                                                           GroupLog& log, Transport& transport, StateMachine& sm) {
  TALLY_ASSERT(storage != nullptr);
  auto raw = raft::RawNode::create(options.raft, storage.get());
  if (!raw.is_ok()) return raw.status();
  std::unique_ptr<ReplicaGroup> g(
      new ReplicaGroup(id, std::move(options), std::move(storage), std::move(raw).value(), log, transport, sm));
  const raft::NodeStatus st = g->raw_->status();
  if (st.conf.voters.size() == 1 && st.conf.voters[0] == g->options_.raft.id) {
    TALLY_RETURN_IF_ERROR(g->raw_->campaign());
  }
  return g;
}

ReplicaGroup::ReplicaGroup(uint32_t id, GroupOptions options, std::unique_ptr<raft::MemoryStorage> storage,
                           std::unique_ptr<raft::RawNode> raw, GroupLog& log, Transport& transport, StateMachine& sm)
    : id_(id),
      options_(std::move(options)),
      storage_(std::move(storage)),
      raw_(std::move(raw)),
      log_(log),
      transport_(transport),
      sm_(sm) {}

ReplicaGroup::~ReplicaGroup() = default;

Status ReplicaGroup::propose(std::string data) {
  const raft::Index before = raw_->last_index();
  TALLY_RETURN_IF_ERROR(raw_->propose(std::move(data)));
  TALLY_ASSERT(raw_->last_index() == before + 1);
  return Status::ok();
}

Status ReplicaGroup::compact(raft::Index index, std::string data, raft::Index compact_to) {
  TALLY_ASSERT(compact_to <= index && index <= applied());
  TALLY_ASSERT_MSG(!persisting_ || !ready_.snapshot.has_value(), "group: compact while a snapshot installs");
  auto snap = storage_->create_snapshot(index, raw_->status().conf, std::move(data));
  if (!snap.is_ok()) return snap.status();
  return storage_->compact(compact_to);
}

void ReplicaGroup::process() {
  // A log that completes inline calls on_persisted, which calls process() again: the flag turns that
  // recursion into this loop's next turn.
  if (in_process_) return;
  in_process_ = true;
  while (!persisting_ && !stopped_ && log_error_.is_ok() && raw_->has_ready()) {
    ready_ = raw_->ready();
    if (options_.observer != nullptr && !options_.observer->before_persist(id_, ready_)) {
      stopped_ = true;
      break;
    }
    persisting_ = true;
    // A leader's appends and heartbeats go out while its own disk writes (Config::
    // leader_sends_before_persist): the core counts its own copy only once this Ready is durable.
    if (!ready_.early_messages.empty()) transport_.send(id_, std::move(ready_.early_messages));
    ready_.early_messages.clear();
    log_.persist(id_, ready_, [this](Status st) { on_persisted(std::move(st)); });
  }
  in_process_ = false;
}

void ReplicaGroup::on_persisted(Status st) {
  TALLY_ASSERT(persisting_);
  if (!st.is_ok()) {
    // Nothing of this Ready may be sent or applied: it is not known durable. The log retries, and
    // completes this persist again once it is.
    log_error_ = std::move(st);
    return;
  }
  log_error_ = Status::ok();
  raft::Ready rd = std::move(ready_);
  ready_ = raft::Ready{};
  // 1. The in-memory copy of what is now durable, which the core reads.
  if (rd.snapshot) TALLY_ASSERT(storage_->apply_snapshot(*rd.snapshot).is_ok());
  if (!rd.entries.empty()) TALLY_ASSERT(storage_->append(std::move(rd.entries)).is_ok());
  if (rd.hard_state) storage_->set_hard_state(*rd.hard_state);
  if (rd.snapshot) sm_.restore(id_, *rd.snapshot);
  // 2. Messages (they may depend on what was just persisted).
  if (!rd.messages.empty()) transport_.send(id_, std::move(rd.messages));
  // 3. Committed entries, in order; then reads whose index is known, and reads that failed.
  raft::Index applied = 0;
  for (const raft::Entry& e : rd.committed_entries) {
    if (e.type == raft::EntryType::kNormal) {
      sm_.apply(id_, e);
    } else if (e.type == raft::EntryType::kConfChange) {
      auto cc = raft::ConfChange::decode(e.data);
      TALLY_ASSERT_MSG(cc.is_ok(), "a committed membership change does not decode");
      const raft::ConfState conf = raw_->apply_conf_change(*cc);
      storage_->set_conf(conf);
      sm_.apply_internal(id_, e, &conf);
    } else {
      sm_.apply_internal(id_, e, nullptr);
    }
    applied = e.index;
  }
  for (const raft::ReadState& rs : rd.read_states) sm_.read_ready(id_, rs);
  for (const std::string& context : rd.failed_reads) sm_.read_failed(id_, context);
  // 4. Advance, then drop what no peer needs from memory (it stays in the log on disk).
  raw_->advance();
  persisting_ = false;
  if (applied != 0) {
    sm_.applied_to(id_, applied);
    if (applied > options_.log_entries_kept) {
      const raft::Index upto = std::min(applied - options_.log_entries_kept, storage_->last_index());
      if (upto >= storage_->first_index()) {
        // The snapshot a lagging peer is sent from now on names the compaction point; its image is
        // the shell's to supply when it sends one (a state machine's image as applied, which is newer).
        if (upto > storage_->snapshot_index()) (void)storage_->create_snapshot(upto, storage_->conf(), std::string());
        TALLY_ASSERT(storage_->compact(upto).is_ok());
      }
    }
  }
  if (options_.observer != nullptr) options_.observer->after_advance(id_);
  process();
}

}  // namespace tally::group
