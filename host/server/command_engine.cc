#include "host/server/command_engine.h"

#include "host/server/blocking.h"
#include "host/server/changes.h"
#include "host/server/notify.h"

#include <charconv>
#include <memory>

#include "host/common/log.h"
#include "host/server/client_session.h"
#include "host/server/cluster_node.h"
#include "host/server/server.h"
#include "host/store/entry_record.h"

namespace tally::server {

namespace {

constexpr uint64_t kScanPartitionShift = 48;
constexpr uint64_t kScanInnerMask = (uint64_t{1} << kScanPartitionShift) - 1;
constexpr std::string_view kCrossSlot = "CROSSSLOT Keys in request don't hash to the same slot";

bool is_error(const proto::Reply& r) { return r.is_error(); }

// The first part whose reply is an error, or nullptr.
const proto::Reply* first_error(std::span<const proto::Reply> parts) {
  for (const proto::Reply& r : parts) {
    if (is_error(r)) return &r;
  }
  return nullptr;
}

// One part of a split command: a partition and the positions of the request's arguments it gets
// (the command name first).
struct Part {
  uint32_t partition = 0;
  std::vector<uint32_t> args;
};

// The parts of a command whose keys lie in several partitions, in first-appearance order of their
// partitions, each key carrying the `step` arguments that start at it (MSET: key and value).
void make_parts(size_t argc, std::span<const size_t> key_pos, std::span<const uint32_t> key_partitions, size_t step,
                std::vector<Part>& parts, std::vector<uint32_t>& part_of_key) {
  parts.clear();
  part_of_key.clear();
  for (size_t k = 0; k < key_pos.size(); ++k) {
    const uint32_t p = key_partitions[k];
    size_t j = 0;
    while (j < parts.size() && parts[j].partition != p) ++j;
    if (j == parts.size()) parts.push_back(Part{p, {0}});
    for (size_t a = 0; a < step && key_pos[k] + a < argc; ++a) {
      parts[j].args.push_back(static_cast<uint32_t>(key_pos[k] + a));
    }
    part_of_key.push_back(static_cast<uint32_t>(j));
  }
}

// The arguments of one part, as views of `request`.
void part_argv(const Part& part, std::span<const std::string_view> request, std::vector<std::string_view>& out) {
  out.clear();
  for (uint32_t i : part.args) out.push_back(request[i]);
}

// A command run in parts (split over partitions, or over every partition): what travels, and what
// comes back. Parts finish on the shards holding their partitions, inline or later (a part that waits
// for its log); each one is counted on the home shard, which merges once the last is in.
struct SplitState {
  const CommandEntry* entry = nullptr;
  std::vector<std::string> owned;         // the request's arguments, owned: the parts outlive its buffer
  std::vector<std::string_view> request;  // views of `owned`
  std::vector<Part> parts;
  std::vector<uint32_t> part_of_key;
  std::vector<proto::Reply> replies;  // per part, each written by the shard running the part
  size_t parts_left = 0;              // home shard's thread only
  Shard* home = nullptr;
  uint64_t conn_id = 0;
  uint64_t seq = 0;
  uint64_t t0_ns = 0;
  uint64_t rng_pick = 0;
  bool forward = false;  // parts led by other members go to their leaders (CommandEngine::forward_)
};

void finish_split(SplitState& st) {
  proto::Reply merged;
  merge_parts(st.entry->split, st.replies, st.part_of_key, st.rng_pick, merged);
  Shard& home = *st.home;
  home.metrics->per_command[st.entry->index].record(home.clock->monotonic_ns() - st.t0_ns, merged.is_error());
  CommandCounters::bump(home.metrics->commands_processed);
  if (ClientSession* s = ClientSession::lookup(home, st.conn_id)) s->complete_reply(st.seq, merged);
}

// `n` parts finished on shard `from`: counted on the home shard.
void parts_done(const std::shared_ptr<SplitState>& st, size_t n, Shard& from) {
  if (n == 0) return;
  auto count = [st, n] {
    TALLY_ASSERT(st->parts_left >= n);
    st->parts_left -= n;
    if (st->parts_left == 0) finish_split(*st);
  };
  if (&from == st->home) {
    count();
  } else {
    st->home->reactor->post(std::move(count));
  }
}

// Runs the parts of `st` held by `s` (on its thread): at once where the partition allows, else
// submitted to it.
void run_parts_on(Shard& s, const std::shared_ptr<SplitState>& st) {
  std::vector<std::string_view> argv;
  size_t inline_done = 0;
  for (size_t j = 0; j < st->parts.size(); ++j) {
    if (s.server->shard_of_partition(st->parts[j].partition) != s.id) continue;
    Partition* p = s.partition(st->parts[j].partition);
    TALLY_ASSERT_MSG(p != nullptr, "split part reached a shard that does not hold its partition");
    part_argv(st->parts[j], st->request, argv);
    if (ClusterNode* cn = s.server->cluster_node(); st->forward && cn->membership() != nullptr) {
      const uint32_t pid = st->parts[j].partition;
      const uint64_t leader = cn->leader(pid);
      if (leader != cn->self()) {
        Shard* shard = &s;
        cn->forward(s, !(st->entry->flags & kCmdWrite), pid, argv, [st, j, shard](proto::Reply& r) {
          st->replies[j].append(r);
          parts_done(st, 1, *shard);
        });
        continue;
      }
    }
    if (p->can_run_now(*st->entry, s.log_failed())) {
      run_on_partition(s, *p, *st->entry, argv, st->replies[j], /*record=*/false);
      ++inline_done;
    } else {
      Shard* shard = &s;
      p->submit(s, *st->entry, argv, [st, j, shard](proto::Reply& r) {
        st->replies[j].append(r);
        parts_done(st, 1, *shard);
      });
    }
  }
  parts_done(st, inline_done, s);
}

std::shared_ptr<SplitState> new_split_state(const CommandEntry& e, Argv argv) {
  auto st = std::make_shared<SplitState>();
  st->entry = &e;
  st->owned.assign(argv.begin(), argv.end());
  st->request.assign(st->owned.begin(), st->owned.end());
  return st;
}

// Sends the parts held by other shards to them and runs home's own.
void run_split_state(Server& server, Shard& home, std::shared_ptr<SplitState> st) {
  st->replies.resize(st->parts.size());
  st->parts_left = st->parts.size();
  TALLY_ASSERT(st->parts_left > 0);
  std::vector<bool> involved(server.shard_count(), false);
  for (const Part& part : st->parts) involved[server.shard_of_partition(part.partition)] = true;
  for (uint32_t s = 0; s < server.shard_count(); ++s) {
    if (!involved[s] || s == home.id) continue;
    Shard* remote = &server.shard(s);
    remote->reactor->post([remote, st] { run_parts_on(*remote, st); });
  }
  if (involved[home.id]) run_parts_on(home, st);
}

// A batch of commands for one remote shard whose replies do not all come at once: they are gathered
// in order and go home together.
struct BatchState {
  std::vector<proto::Reply> replies;
  size_t left = 0;
  Shard* home = nullptr;
  uint64_t conn_id = 0;
  uint64_t seq = 0;
};

void finish_batch(const std::shared_ptr<BatchState>& st) {
  proto::Reply all;
  for (const proto::Reply& r : st->replies) all.append(r);
  Shard* home = st->home;
  home->reactor->post([home, conn_id = st->conn_id, seq = st->seq, r = std::move(all)]() mutable {
    if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
  });
}

}  // namespace

void merge_parts(Split split, std::span<const proto::Reply> parts, std::span<const uint32_t> part_of_key,
                 uint64_t rng_pick, proto::Reply& out) {
  if (split != Split::kAllRandom) {
    if (const proto::Reply* err = first_error(parts)) {
      out.append(*err);
      return;
    }
  }
  switch (split) {
    case Split::kKeysArray: {
      // Each part answered an array with one element per key it got, in the order it got them.
      std::vector<size_t> taken(parts.size(), 0);
      std::vector<size_t> cursor(parts.size(), 1);  // node of each part's next element
      out.array(part_of_key.size());
      for (uint32_t j : part_of_key) {
        const proto::Reply& r = parts[j];
        TALLY_ASSERT(!r.empty() && r.node(0).type == proto::ReplyType::kArray && taken[j] < r.node(0).count);
        const size_t end = r.skip(cursor[j]);
        out.append(r, cursor[j], end);
        cursor[j] = end;
        ++taken[j];
      }
      return;
    }
    case Split::kKeysSum:
    case Split::kAllSum: {
      int64_t sum = 0;
      for (const proto::Reply& r : parts) {
        if (!r.empty() && r.node(0).type == proto::ReplyType::kInteger) sum += r.node(0).integer;
      }
      out.integer(sum);
      return;
    }
    case Split::kKeysOk:
    case Split::kAllOk:
      out.ok();
      return;
    case Split::kAllConcat: {
      uint64_t total = 0;
      for (const proto::Reply& r : parts) {
        if (!r.empty() && r.node(0).type == proto::ReplyType::kArray) total += r.node(0).count;
      }
      out.array(total);
      for (const proto::Reply& r : parts) {
        if (!r.empty() && r.node(0).type == proto::ReplyType::kArray) out.append(r, 1, r.size());
      }
      return;
    }
    case Split::kAllRandom: {
      // The first key found from a random part on; null when every part is empty.
      for (size_t i = 0; i < parts.size(); ++i) {
        const proto::Reply& r = parts[(rng_pick + i) % parts.size()];
        if (!r.empty() && r.node(0).type == proto::ReplyType::kBulk) {
          out.append(r);
          return;
        }
      }
      out.null();
      return;
    }
    case Split::kNone:
    case Split::kAllScan:
      break;
  }
  TALLY_UNREACHABLE();
}

void run_on_partition(Shard& shard, Partition& p, const CommandEntry& e, Argv argv, proto::Reply& out, bool record) {
  TALLY_ASSERT(e.data != nullptr);
  TALLY_ASSERT(!argv.empty());
  CommandCounters& counters = shard.metrics->per_command[e.index];
  const Clock& clock = *shard.clock;
  const uint64_t now_ms = clock.wall_ms();
  if ((e.flags & kCmdDenyOom) && !shard.admit_write(now_ms)) {
    CommandCounters::bump(counters.rejected);
    out.error(store::kOomError);
    return;
  }
  const size_t first = out.size();
  const uint64_t t0 = record ? clock.monotonic_ns() : 0;
  ExecContext ctx{p.store(), out, now_ms};
  const bool notify = (e.flags & kCmdWrite) && notifications_on();
  const uint64_t present = notify ? keys_present(p.store(), e, argv, now_ms) : 0;
  const uint64_t stamp0 = p.store().write_stamp();
  e.data->handler(ctx, argv);
  if (notify) notify_source_misses(shard, e, argv, present);
  if (p.store().write_stamp() != stamp0) {  // something was written
    notify_written(shard, e, argv);
    p.record_changes(shard, e, argv, 0, 0, now_ms);
    if (notify) notify_write(shard, p.store(), e, argv, now_ms, present);
  } else if (!(e.flags & kCmdWrite) && notifications_on()) {
    notify_misses(shard, p.store(), e, argv, now_ms);
  }
  if (!record) return;
  const bool error = out.size() > first && out.node(first).type == proto::ReplyType::kError;
  counters.record(clock.monotonic_ns() - t0, error);
  CommandCounters::bump(shard.metrics->commands_processed);
}

CommandEngine::CommandEngine(Server& server, Shard& home, ClientSession& session, uint64_t conn_id,
                             bool batch_remote, bool cluster_client)
    : server_(server),
      home_(home),
      session_(session),
      conn_id_(conn_id),
      batch_remote_(batch_remote),
      cluster_rules_(cluster_client && server.cluster_enabled()),
      forward_(server.cluster_node() != nullptr &&
               (cluster_client ? server.config().cluster_forward_resp : server.config().cluster_forward_memcache)) {}

CommandEngine::Outcome CommandEngine::run_cluster(const CommandEntry& e, Argv argv, proto::Reply& out) {
  uint32_t slot = 0;
  if (e.first_key == 1 && e.last_key == 1 && e.numkeys_at == 0 && !(e.flags & kCmdTransaction)) {
    TALLY_ASSERT(argv.size() >= 2);
    slot = kernels::key_slot(argv[1]);
  } else {
    CommandTable::key_positions(e, argv, key_pos_);
    if (key_pos_.empty()) return Outcome::kDone;  // keyless: the caller runs it on this node
    slot = kernels::key_slot(argv[key_pos_[0]]);
    for (size_t i = 1; i < key_pos_.size(); ++i) {
      if (kernels::key_slot(argv[key_pos_[i]]) != slot) {
        flush();
        out.error(kCrossSlot);
        return Outcome::kDone;
      }
    }
  }
  const uint32_t p = server_.layout().of_slot(slot);
  if (const ClusterNode* cn = server_.cluster_node()) {
    // A member: the partition's leader serves it; the others redirect there.
    const cluster::Membership* m = cn->membership();
    if (m == nullptr) {
      flush();
      out.error("CLUSTERDOWN the cluster is not formed yet (tallyctl cluster create)");
      return Outcome::kDone;
    }
    const uint64_t leader = cn->leader(p);
    if (leader != m->self && replica_reads_ && !(e.flags & (kCmdWrite | kCmdTransaction)) && m->holds(p)) {
      return run_on(p, e, argv, out, /*replica=*/true);
    }
    if (leader != m->self && forward_ && !(e.flags & kCmdTransaction)) {
      return forward_to(e, p, argv);
    }
    if (leader != m->self) {
      flush();
      if (leader == 0) {
        out.error("TRYAGAIN partition " + std::to_string(p) + " has no leader yet");
      } else {
        const cluster::MemberNode* n = m->node(leader);
        out.error(moved_error(slot, n->host, n->port));
      }
      return Outcome::kDone;
    }
    return run_on(p, e, argv, out);
  }
  const ClusterView& view = server_.cluster_view();
  if (view.map.owner(slot) != view.self) {
    flush();
    out.error(moved_error(view, slot));
    return Outcome::kDone;
  }
  return run_on(p, e, argv, out);
}

CommandEngine::Outcome CommandEngine::run(const CommandEntry& e, Argv argv, proto::Reply& out) {
  TALLY_ASSERT(e.data != nullptr && !argv.empty());
  if (server_.change_stream() && (e.flags & kCmdWrite) && refused_on_change_stream(e, argv)) {
    flush();
    out.error("ERR change streams (__tally:changes:*) are written by the server only; read them, or use "
              "XGROUP, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM");
    return Outcome::kDone;
  }
  if (cluster_rules_ && e.has_keys()) {
    const size_t before = out.size();
    const Outcome o = run_cluster(e, argv, out);
    if (o != Outcome::kDone || out.size() != before) return o;
    // A keyed command without keys in this request (a count of 0): on as usual, the handler answers.
  }
  if (e.first_key == 1 && e.last_key == 1 && e.numkeys_at == 0 && !(e.flags & kCmdTransaction)) {
    // One key at argv[1] (most commands): no key lists to build.
    TALLY_ASSERT(argv.size() >= 2);
    return run_on(server_.partition_of_key(argv[1]), e, argv, out);
  }
  CommandTable::key_positions(e, argv, key_pos_);
  if (key_pos_.empty() && e.split == Split::kNone) {
    // A keyed command whose request names no key (XGROUP HELP, XREAD without STREAMS): its handler
    // answers (help or the error) wherever it runs.
    return run_on(server_.partition_of_key({}), e, argv, out);
  }
  if (key_pos_.empty()) {
    flush();
    // Commands over the whole keyspace wait while any partition moves: a part could miss it.
    if (server_.moves_in_progress()) return Outcome::kBlocked;
    if (e.split == Split::kAllScan) {
      bool done = false;
      run_scan(e, argv, out, done);
      return done ? Outcome::kDone : Outcome::kQueued;
    }
    TALLY_ASSERT_MSG(e.split != Split::kNone, "a keyless data command needs a Split rule");
    return run_everywhere(e, argv, out);
  }
  key_views_.clear();
  for (size_t pos : key_pos_) key_views_.push_back(argv[pos]);
  server_.partitions_of_keys(home_, key_views_, key_partitions_);
  const uint32_t p = key_partitions_[0];
  bool one = true;
  for (uint32_t x : key_partitions_) one &= x == p;
  if (one) return run_on(p, e, argv, out);
  for (uint32_t x : key_partitions_) {
    if (server_.partition_paused(x)) {
      flush();
      return Outcome::kBlocked;
    }
  }
  flush();
  if (e.split == Split::kNone) {
    if (!run_gathered(e, argv, out)) out.error(kCrossSlot);
    return Outcome::kDone;
  }
  bool done = false;
  run_split(e, argv, out, done);
  return done ? Outcome::kDone : Outcome::kQueued;
}

CommandEngine::Outcome CommandEngine::run_on(uint32_t p, const CommandEntry& e, Argv argv, proto::Reply& out,
                                             bool replica) {
  if (server_.partition_paused(p)) {
    flush();
    return Outcome::kBlocked;
  }
  if (forward_ && !replica) {
    // A client that cannot follow redirects: a partition led elsewhere is served through its leader.
    const ClusterNode* cn = server_.cluster_node();
    const cluster::Membership* m = cn->membership();
    const uint64_t leader = cn->leader(p);
    // (Without a leader known yet, the forward waits for one.)
    if (m != nullptr && leader != m->self) return forward_to(e, p, argv);
  }
  const uint32_t owner = server_.shard_of_partition(p);
  if (owner == home_.id) {
    Partition* part = home_.partition(p);
    TALLY_ASSERT_MSG(part != nullptr, "the partition map names this shard but it does not hold the partition");
    flush();
    if (part->can_run_now(e, home_.log_failed()) || (replica && part->serves_replica_read(e))) {
      run_on_partition(home_, *part, e, argv, out);
      return Outcome::kDone;
    }
    // Waits for the log (a write) or for earlier writes to be applied (a read).
    part->submit(home_, e, argv, Partition::ReplyTo{&home_, conn_id_, session_.reserve_reply()});
    return Outcome::kQueued;
  }
  if (batch_.shard != owner) flush();
  batch_.shard = owner;
  for (std::string_view a : argv) {
    batch_.blob.append(a);
    batch_.arg_lens.push_back(static_cast<uint32_t>(a.size()));
  }
  batch_.argc.push_back(static_cast<uint32_t>(argv.size()));
  batch_.partition.push_back(p);
  batch_.entries.push_back(&e);
  batch_.replica.push_back(replica ? 1 : 0);
  if (!batch_remote_ || batch_.entries.size() >= kRemoteBatchCommandsMax) flush();
  return Outcome::kQueued;
}

CommandEngine::Outcome CommandEngine::forward_to(const CommandEntry& e, uint32_t p, Argv argv) {
  flush();
  const uint64_t seq = session_.reserve_reply();
  Shard* home = &home_;
  const uint64_t conn_id = conn_id_;
  const bool read = !(e.flags & kCmdWrite);
  server_.cluster_node()->forward(home_, read, p, argv, [home, conn_id, seq](proto::Reply& r) {
    if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
  });
  return Outcome::kQueued;
}

void CommandEngine::flush() {
  if (batch_.shard == UINT32_MAX) return;
  const uint64_t seq = session_.reserve_reply();
  Shard* home = &home_;
  Shard* remote = &server_.shard(batch_.shard);
  const uint64_t conn_id = conn_id_;
  CommandCounters::bump(home_.metrics->remote_batches);
  remote->reactor->post([home, remote, conn_id, seq, b = std::move(batch_)]() mutable {
    const size_t n = b.argc.size();
    std::vector<std::vector<std::string_view>> argvs(n);
    std::vector<Partition*> parts(n);
    size_t arg = 0, off = 0;
    bool all_now = true;
    for (size_t c = 0; c < n; ++c) {
      for (uint32_t i = 0; i < b.argc[c]; ++i, ++arg) {
        argvs[c].emplace_back(b.blob.data() + off, b.arg_lens[arg]);
        off += b.arg_lens[arg];
      }
      parts[c] = remote->partition(b.partition[c]);
      TALLY_ASSERT_MSG(parts[c] != nullptr, "a command reached a shard that does not hold its partition");
      all_now &= parts[c]->can_run_now(*b.entries[c], remote->log_failed()) ||
                 (b.replica[c] && parts[c]->serves_replica_read(*b.entries[c]));
    }
    if (all_now) {
      proto::Reply reply;
      for (size_t c = 0; c < n; ++c) run_on_partition(*remote, *parts[c], *b.entries[c], argvs[c], reply);
      home->reactor->post([home, conn_id, seq, r = std::move(reply)]() mutable {
        if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
      });
      return;
    }
    // Some wait for their log: every reply is gathered in request order, and they go home together.
    auto st = std::make_shared<BatchState>();
    st->replies.resize(n);
    st->left = n;
    st->home = home;
    st->conn_id = conn_id;
    st->seq = seq;
    for (size_t c = 0; c < n; ++c) {
      if (parts[c]->can_run_now(*b.entries[c], remote->log_failed()) ||
          (b.replica[c] && parts[c]->serves_replica_read(*b.entries[c]))) {
        run_on_partition(*remote, *parts[c], *b.entries[c], argvs[c], st->replies[c]);
        --st->left;
      } else {
        parts[c]->submit(*remote, *b.entries[c], argvs[c], [st, c](proto::Reply& r) {
          st->replies[c].append(r);
          if (--st->left == 0) finish_batch(st);
        });
      }
    }
    if (st->left == 0) finish_batch(st);
  });
  batch_ = RemoteBatch{};
}

bool CommandEngine::run_gathered(const CommandEntry& e, Argv argv, proto::Reply& out) {
  // Logged partitions are separate Raft groups: one command cannot change two of them atomically.
  std::vector<Partition*> parts(key_views_.size());
  for (size_t k = 0; k < key_views_.size(); ++k) {
    if (server_.shard_of_partition(key_partitions_[k]) != home_.id) return false;
    parts[k] = home_.partition(key_partitions_[k]);
    if (parts[k] == nullptr || parts[k]->group() != nullptr || !parts[k]->unavailable().empty()) return false;
  }
  const uint64_t now_ms = home_.clock->wall_ms();
  CommandCounters& counters = home_.metrics->per_command[e.index];
  if ((e.flags & kCmdDenyOom) && !home_.admit_write(now_ms)) {
    CommandCounters::bump(counters.rejected);
    out.error(store::kOomError);
    return true;
  }
  const uint64_t t0 = home_.clock->monotonic_ns();
  store::Store& tmp = *home_.gather;
  tmp.flush();
  // Copies of the keys (each once), in their snapshot records.
  std::string records;
  uint64_t cas = 0;
  for (size_t k = 0; k < key_views_.size(); ++k) {
    store::Store& st = parts[k]->store();
    cas = std::max(cas, st.cas_counter());
    if (tmp.lookup(key_views_[k], now_ms, store::Access::kPeek) != nullptr) continue;
    records.clear();
    if (const store::Entry* found = st.lookup(key_views_[k], now_ms, store::Access::kRead)) {
      TALLY_ASSERT(store::encode_entry(*found, records).is_ok());
      TALLY_ASSERT(store::load_entries(records, tmp).is_ok());
    }
  }
  // New CAS values continue every involved store's, so none is handed out twice for a key.
  tmp.set_cas_counter(std::max(cas, tmp.cas_counter()));
  ExecContext ctx{tmp, out, now_ms};
  const size_t first = out.size();
  e.data->handler(ctx, argv);
  if (e.flags & kCmdWrite) {
    for (size_t k = 0; k < key_views_.size(); ++k) {
      store::Store& st = parts[k]->store();
      st.erase(key_views_[k], now_ms);
      if (const store::Entry* result = tmp.lookup(key_views_[k], now_ms, store::Access::kPeek)) {
        records.clear();
        TALLY_ASSERT(store::encode_entry(*result, records).is_ok());
        TALLY_ASSERT(store::load_entries(records, st).is_ok());
      }
      st.set_cas_counter(tmp.cas_counter());
    }
    notify_written(home_, e, argv);
    for (size_t k = 0; k < parts.size(); ++k) {
      if (std::find(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(k), parts[k]) == parts.begin() + static_cast<ptrdiff_t>(k)) {
        parts[k]->record_changes(home_, e, argv, 0, 0, now_ms);
      }
    }
  }
  tmp.flush();
  counters.record(home_.clock->monotonic_ns() - t0, out.size() > first && out.node(first).type == proto::ReplyType::kError);
  CommandCounters::bump(home_.metrics->commands_processed);
  return true;
}

void CommandEngine::run_split(const CommandEntry& e, Argv argv, proto::Reply& out, bool& done) {
  const size_t step = e.split == Split::kKeysOk ? static_cast<size_t>(std::max(1, e.key_step)) : 1;
  std::vector<Part> parts;
  std::vector<uint32_t> part_of_key;
  make_parts(argv.size(), key_pos_, key_partitions_, step, parts, part_of_key);
  bool local = true;
  for (const Part& part : parts) {
    local &= server_.shard_of_partition(part.partition) == home_.id &&
             home_.partition(part.partition)->can_run_now(e, home_.log_failed());
  }
  const Clock& clock = server_.env().clock();
  if (local) {
    // Every part is here and may run now: run them on views of the request and merge.
    const uint64_t t0 = clock.monotonic_ns();
    std::vector<proto::Reply> replies(parts.size());
    std::vector<std::string_view> part_args;
    for (size_t j = 0; j < parts.size(); ++j) {
      part_argv(parts[j], argv, part_args);
      run_on_partition(home_, *home_.partition(parts[j].partition), e, part_args, replies[j], false);
    }
    const size_t first = out.size();
    merge_parts(e.split, replies, part_of_key, 0, out);
    home_.metrics->per_command[e.index].record(clock.monotonic_ns() - t0,
                                               out.node(first).type == proto::ReplyType::kError);
    CommandCounters::bump(home_.metrics->commands_processed);
    done = true;
    return;
  }
  auto st = new_split_state(e, argv);
  st->forward = forward_;
  st->parts = std::move(parts);
  st->part_of_key = std::move(part_of_key);
  st->home = &home_;
  st->conn_id = conn_id_;
  st->seq = session_.reserve_reply();
  st->t0_ns = clock.monotonic_ns();
  run_split_state(server_, home_, std::move(st));
  done = false;
}

CommandEngine::Outcome CommandEngine::run_everywhere(const CommandEntry& e, Argv argv, proto::Reply& out) {
  // One part per partition, each run by the shard holding it; merged on this shard. A cluster member
  // covers the partitions it leads, as a Redis Cluster master covers its slots (a client that asks
  // every master counts each key once).
  auto st = new_split_state(e, argv);
  const uint32_t partitions = server_.layout().count();
  const ClusterNode* cn = server_.cluster_node();
  const uint64_t self = cn != nullptr ? cn->self() : 0;
  // A client that cannot follow redirects sees the whole cluster: the parts led elsewhere are
  // forwarded to their leaders (memcached's flush_all empties every partition).
  const bool whole_cluster = forward_ && cn != nullptr && cn->membership() != nullptr &&
                             (e.split == Split::kAllOk || e.split == Split::kAllSum || e.split == Split::kAllConcat);
  st->forward = whole_cluster;
  for (uint32_t p = 0; p < partitions; ++p) {
    if (cn != nullptr && !whole_cluster && (self == 0 || cn->leader(p) != self)) continue;
    Part& part = st->parts.emplace_back();
    part.partition = p;
    for (uint32_t i = 0; i < argv.size(); ++i) part.args.push_back(i);
  }
  if (st->parts.empty()) {
    merge_parts(e.split, {}, {}, 0, out);
    return Outcome::kDone;
  }
  st->home = &home_;
  st->conn_id = conn_id_;
  st->seq = session_.reserve_reply();
  st->t0_ns = server_.env().monotonic_ns();
  st->rng_pick = home_.rng.uniform(st->parts.size());
  run_split_state(server_, home_, std::move(st));
  return Outcome::kQueued;
}

namespace {

// SCAN's COUNT (10 when absent or unreadable: the handler reports a bad one).
size_t scan_count(Argv argv) {
  for (size_t i = 2; i + 1 < argv.size(); i += 2) {
    if (argv[i].size() == 5 && (argv[i][0] | 0x20) == 'c' && (argv[i][1] | 0x20) == 'o' && (argv[i][2] | 0x20) == 'u' &&
        (argv[i][3] | 0x20) == 'n' && (argv[i][4] | 0x20) == 't') {
      size_t n = 0;
      auto [ptr, ec] = std::from_chars(argv[i + 1].data(), argv[i + 1].data() + argv[i + 1].size(), n);
      if (ec == std::errc() && n > 0) return n;
    }
  }
  return 10;
}

// The cursor after a partition's SCAN answered `next_inner`: on in the same partition, or from the
// start of the next one, or 0 at the end of the keyspace.
uint64_t next_scan_cursor(uint32_t p, uint64_t next_inner, uint32_t partitions) {
  if (next_inner != 0) return (uint64_t{p} << kScanPartitionShift) | next_inner;
  return p + 1 == partitions ? 0 : uint64_t{p + 1} << kScanPartitionShift;
}

void scan_reply(uint64_t cursor, uint64_t found, const proto::Reply& keys, proto::Reply& out) {
  out.array(2);
  out.bulk(std::to_string(cursor));
  out.array(found);
  out.append(keys);
}

// A partition's own SCAN reply, [cursor, [key...]]: its cursor and where its keys start.
uint64_t partition_scan_cursor(const proto::Reply& r) {
  TALLY_ASSERT(r.size() >= 3 && r.node(0).count == 2 && r.node(2).type == proto::ReplyType::kArray);
  const std::string_view next = r.text(1);
  uint64_t inner = 0;
  std::from_chars(next.data(), next.data() + next.size(), inner);
  return inner;
}

using ScanDone = std::function<void(proto::Reply&)>;

// One SCAN step on shard s from partition p at the store's cursor `inner`: it walks on through the
// next partitions s holds until COUNT keys are found or a partition held elsewhere (or one waiting for
// its log) comes next. True with the reply in `out`; false when the step's only partition waits for
// its log and `deliver` gets the reply later.
bool scan_step(Shard& s, const CommandEntry& e, std::vector<std::string> args, uint32_t p, uint64_t inner,
               proto::Reply& out, ScanDone deliver) {
  Server& server = *s.server;
  const size_t count = scan_count(std::vector<std::string_view>(args.begin(), args.end()));
  const uint32_t partitions = server.layout().count();
  proto::Reply keys;
  uint64_t found = 0;
  uint64_t cursor = 0;
  std::vector<std::string_view> argv;
  const ClusterNode* cn = server.cluster_node();
  for (bool first = true;; first = false) {
    if (cn != nullptr && (cn->self() == 0 || cn->leader(p) != cn->self())) {
      // A member scans the partitions it leads; the others' keys come from their leaders.
      cursor = next_scan_cursor(p, 0, partitions);
      if (cursor == 0) break;
      ++p;
      inner = 0;
      if (server.shard_of_partition(p) != s.id) break;
      continue;
    }
    Partition* part = s.partition(p);
    TALLY_ASSERT_MSG(part != nullptr, "a SCAN step reached a shard that does not hold its partition");
    args[1] = std::to_string(inner);
    argv.assign(args.begin(), args.end());
    if (!part->can_run_now(e, s.log_failed())) {
      if (!first) {
        cursor = uint64_t{p} << kScanPartitionShift;  // the next step starts (and waits) there
        break;
      }
      part->submit(s, e, argv, [p, partitions, deliver = std::move(deliver)](proto::Reply& r) {
        proto::Reply step;
        if (r.is_error()) {
          step.append(r);
        } else {
          proto::Reply found_keys;
          found_keys.append(r, 3, r.size());
          scan_reply(next_scan_cursor(p, partition_scan_cursor(r), partitions), r.node(2).count, found_keys, step);
        }
        deliver(step);
      });
      return false;
    }
    proto::Reply r;
    run_on_partition(s, *part, e, argv, r, /*record=*/false);
    if (r.is_error()) {
      out.append(r);
      return true;
    }
    const uint64_t next_inner = partition_scan_cursor(r);
    keys.append(r, 3, r.size());
    found += r.node(2).count;
    cursor = next_scan_cursor(p, next_inner, partitions);
    if (next_inner != 0 || cursor == 0) break;
    ++p;
    inner = 0;
    if (server.shard_of_partition(p) != s.id || found >= count) break;
  }
  scan_reply(cursor, found, keys, out);
  return true;
}

}  // namespace

void CommandEngine::run_scan(const CommandEntry& e, Argv argv, proto::Reply& out, bool& done) {
  done = true;
  uint64_t cursor = 0;
  auto [ptr, ec] = std::from_chars(argv[1].data(), argv[1].data() + argv[1].size(), cursor);
  if (ec != std::errc() || ptr != argv[1].data() + argv[1].size()) {
    out.error("ERR invalid cursor");
    return;
  }
  const uint64_t p = cursor >> kScanPartitionShift;
  if (p >= server_.layout().count()) {
    // A cursor from a server with more partitions: the iteration is over.
    scan_reply(0, 0, proto::Reply(), out);
    return;
  }
  const uint32_t partition = static_cast<uint32_t>(p);
  const uint64_t inner = cursor & kScanInnerMask;
  const uint64_t t0 = home_.clock->monotonic_ns();
  std::vector<std::string> args(argv.begin(), argv.end());
  Shard* home = &home_;
  const uint64_t conn_id = conn_id_;
  // Counted once, on the home shard, whenever and wherever the step finished.
  auto finish = [home, &e, t0](proto::Reply& r) {
    home->metrics->per_command[e.index].record(home->clock->monotonic_ns() - t0, r.is_error());
    CommandCounters::bump(home->metrics->commands_processed);
  };
  const uint32_t owner = server_.shard_of_partition(partition);
  if (owner == home_.id) {
    Partition* first = home_.partition(partition);
    TALLY_ASSERT(first != nullptr);
    if (first->can_run_now(e, home_.log_failed())) {
      // Walks only partitions that may run now, so it finishes here.
      const bool now = scan_step(home_, e, std::move(args), partition, inner, out, nullptr);
      TALLY_ASSERT(now);
      finish(out);
      return;
    }
    done = false;
    const uint64_t seq = session_.reserve_reply();
    auto deliver = [home, conn_id, seq, finish](proto::Reply& r) {
      finish(r);
      if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
    };
    // It may still finish now (a member skips partitions it does not lead).
    proto::Reply now;
    if (scan_step(home_, e, std::move(args), partition, inner, now, deliver)) deliver(now);
    return;
  }
  done = false;
  const uint64_t seq = session_.reserve_reply();
  Shard* remote = &server_.shard(owner);
  auto deliver_home = [home, conn_id, seq, finish](proto::Reply& r) {
    home->reactor->post([home, conn_id, seq, finish, r = std::move(r)]() mutable {
      finish(r);
      if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
    });
  };
  remote->reactor->post([remote, &e, partition, inner, args = std::move(args), deliver_home]() mutable {
    proto::Reply r;
    if (scan_step(*remote, e, std::move(args), partition, inner, r, deliver_home)) deliver_home(r);
  });
}

}  // namespace tally::server
