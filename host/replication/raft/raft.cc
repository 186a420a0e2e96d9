// RawNode: the public face of the Raft core; validates the config and forwards to Core.
#include "host/replication/raft/raft.h"

#include <algorithm>

#include "host/replication/raft/core.h"

namespace tally::raft {

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid("raft config: id must be non-zero");
  if (election_tick <= heartbeat_tick) return Status::invalid("raft config: election_tick must exceed heartbeat_tick");
  if (heartbeat_tick == 0) return Status::invalid("raft config: heartbeat_tick must be positive");
  if (max_inflight_msgs == 0 || max_inflight_entries == 0 || max_inflight_bytes == 0 || max_size_per_msg == 0) {
    return Status::invalid("raft config: flow-control limits must be positive");
  }
  if (max_uncommitted_entries == 0 || max_pending_reads == 0 || max_committed_bytes_per_ready == 0) {
    return Status::invalid("raft config: bounds must be positive");
  }
  if (voters.size() + learners.size() > kernels::kTallyReplicasMax) {
    return Status::invalid("raft config: more replicas than kTallyReplicasMax");
  }
  for (NodeId l : learners) {
    if (l == kNoNode || std::find(voters.begin(), voters.end(), l) != voters.end()) {
      return Status::invalid("raft config: a learner is also a voter, or node 0");
    }
  }
  if (lease_read.enabled) {
    if (!check_quorum) return Status::invalid("raft config: lease reads need check_quorum");
    if (lease_read.clock == nullptr) return Status::invalid("raft config: lease reads need a clock");
    if (lease_read.tick_interval_ms == 0) return Status::invalid("raft config: lease reads need a tick interval");
    if (lease_read.clock_drift_max_ms >= election_tick * lease_read.tick_interval_ms) {
      return Status::invalid("raft config: clock drift bound swallows the whole lease");
    }
  }
  return Status::ok();
}

Result<std::unique_ptr<RawNode>> RawNode::create(const Config& config, const Storage* storage) {
  if (storage == nullptr) return Status::invalid("raft: storage is null");
  TALLY_RETURN_IF_ERROR(config.validate());
  const InitialState init = storage->initial_state();
  if (init.hard_state.commit > storage->last_index() || init.hard_state.commit + 1 < storage->first_index()) {
    return Status::corruption("raft: hard state commit outside the stored log");
  }
  return std::unique_ptr<RawNode>(new RawNode(std::make_unique<Core>(config, storage)));
}

RawNode::RawNode(std::unique_ptr<Core> core) : core_(std::move(core)) { TALLY_ASSERT(core_ != nullptr); }
RawNode::~RawNode() = default;

void RawNode::tick() { core_->tick(); }
Status RawNode::step(const Message& m) { return core_->step(m); }
Status RawNode::campaign() { return core_->campaign(); }
Status RawNode::propose(std::span<const std::string> batch) { return core_->propose(batch); }
Status RawNode::propose(std::string data) { return core_->propose_one(std::move(data)); }
Status RawNode::propose_conf_change(const ConfChange& cc) { return core_->propose_conf_change(cc); }
ConfState RawNode::apply_conf_change(const ConfChange& cc) { return core_->apply_conf_change(cc); }
Status RawNode::read_index(std::string context) { return core_->read_index(std::move(context)); }
Status RawNode::transfer_leader(NodeId target) { return core_->transfer_leader(target); }
void RawNode::report_unreachable(NodeId to) { core_->report_unreachable(to); }
bool RawNode::has_ready() const { return core_->has_ready(); }
Ready RawNode::ready() { return core_->ready(); }
void RawNode::advance() { core_->advance(); }
NodeStatus RawNode::status() const { return core_->status(); }
NodeId RawNode::id() const { return core_->id(); }
NodeId RawNode::leader() const { return core_->leader(); }
Role RawNode::role() const { return core_->role(); }
Term RawNode::term() const { return core_->term(); }
Index RawNode::commit_index() const { return core_->log().committed(); }
Index RawNode::applied_index() const { return core_->log().applied(); }
Index RawNode::last_index() const { return core_->log().last_index(); }
bool RawNode::is_leader() const { return core_->role() == Role::kLeader; }
TallyInput RawNode::tally_input() const { return core_->tally_input(); }
bool RawNode::commit_to_quorum_index(const TallyInput& input, Index quorum_index) {
  return core_->commit_to_quorum_index(input, quorum_index);
}

}  // namespace tally::raft
