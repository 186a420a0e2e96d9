#include "host/server/command_engine.h"

#include <charconv>
#include <memory>

#include "host/common/log.h"
#include "host/server/client_session.h"
#include "host/server/server.h"

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

// A split command whose parts run on other shards: what travels, and what comes back.
struct SplitState {
  const CommandEntry* entry = nullptr;
  std::vector<std::string> owned;         // the request's arguments, owned: the parts outlive its buffer
  std::vector<std::string_view> request;  // views of `owned`
  std::vector<Part> parts;
  std::vector<uint32_t> part_of_key;
  std::vector<proto::Reply> replies;  // per part
  uint32_t shards_left = 0;
  Shard* home = nullptr;
  uint64_t conn_id = 0;
  uint64_t seq = 0;
  uint64_t t0_ns = 0;
  uint64_t rng_pick = 0;
};

// Runs the parts of `st` held by `s` (on its thread) into st.replies.
void run_parts_on(Shard& s, SplitState& st) {
  std::vector<std::string_view> argv;
  for (size_t j = 0; j < st.parts.size(); ++j) {
    if (s.server->shard_of_partition(st.parts[j].partition) != s.id) continue;
    Partition* p = s.partition(st.parts[j].partition);
    TALLY_ASSERT_MSG(p != nullptr, "split part reached a shard that does not hold its partition");
    part_argv(st.parts[j], st.request, argv);
    run_on_partition(s, *p, *st.entry, argv, st.replies[j], /*record=*/false);
  }
}

void finish_split(SplitState& st) {
  proto::Reply merged;
  merge_parts(st.entry->split, st.replies, st.part_of_key, st.rng_pick, merged);
  Shard& home = *st.home;
  home.metrics->per_command[st.entry->index].record(home.server->env().monotonic_ns() - st.t0_ns,
                                                     merged.is_error());
  CommandCounters::bump(home.metrics->commands_processed);
  if (ClientSession* s = ClientSession::lookup(home, st.conn_id)) s->complete_reply(st.seq, merged);
}

std::shared_ptr<SplitState> new_split_state(const CommandEntry& e, Argv argv) {
  auto st = std::make_shared<SplitState>();
  st->entry = &e;
  st->owned.assign(argv.begin(), argv.end());
  st->request.assign(st->owned.begin(), st->owned.end());
  return st;
}

// Posts the parts held by other shards to them and runs home's own; the last shard to finish merges.
void run_split_state(Server& server, Shard& home, std::shared_ptr<SplitState> st, const std::vector<bool>& involved) {
  st->replies.resize(st->parts.size());
  for (uint32_t s = 0; s < server.shard_count(); ++s) st->shards_left += involved[s] ? 1 : 0;
  TALLY_ASSERT(st->shards_left > 0);
  for (uint32_t s = 0; s < server.shard_count(); ++s) {
    if (!involved[s] || s == home.id) continue;
    Shard* remote = &server.shard(s);
    remote->reactor->post([remote, st] {
      run_parts_on(*remote, *st);
      st->home->reactor->post([st] {
        if (--st->shards_left == 0) finish_split(*st);
      });
    });
  }
  if (involved[home.id]) {
    run_parts_on(home, *st);
    if (--st->shards_left == 0) finish_split(*st);
  }
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
  e.data->handler(ctx, argv);
  if (!record) return;
  const bool error = out.size() > first && out.node(first).type == proto::ReplyType::kError;
  counters.record(clock.monotonic_ns() - t0, error);
  CommandCounters::bump(shard.metrics->commands_processed);
}

CommandEngine::CommandEngine(Server& server, Shard& home, ClientSession& session, uint64_t conn_id,
                             bool batch_remote)
    : server_(server), home_(home), session_(session), conn_id_(conn_id), batch_remote_(batch_remote) {}

CommandEngine::Outcome CommandEngine::run(const CommandEntry& e, Argv argv, proto::Reply& out) {
  TALLY_ASSERT(e.data != nullptr && !argv.empty());
  if (e.first_key == 1 && e.last_key == 1 && e.numkeys_at == 0) {
    // One key at argv[1] (most commands): no key lists to build.
    TALLY_ASSERT(argv.size() >= 2);
    return run_on(server_.partition_of_key(argv[1]), e, argv, out);
  }
  CommandTable::key_positions(e, argv, key_pos_);
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
    run_everywhere(e, argv);
    return Outcome::kQueued;
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
    out.error(kCrossSlot);
    return Outcome::kDone;
  }
  bool done = false;
  run_split(e, argv, out, done);
  return done ? Outcome::kDone : Outcome::kQueued;
}

CommandEngine::Outcome CommandEngine::run_on(uint32_t p, const CommandEntry& e, Argv argv, proto::Reply& out) {
  if (server_.partition_paused(p)) {
    flush();
    return Outcome::kBlocked;
  }
  const uint32_t owner = server_.shard_of_partition(p);
  if (owner == home_.id) {
    Partition* part = home_.partition(p);
    TALLY_ASSERT_MSG(part != nullptr, "the partition map names this shard but it does not hold the partition");
    flush();
    run_on_partition(home_, *part, e, argv, out);
    return Outcome::kDone;
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
  if (!batch_remote_ || batch_.entries.size() >= kRemoteBatchCommandsMax) flush();
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
    proto::Reply reply;
    std::vector<std::string_view> argv;
    size_t arg = 0, off = 0;
    for (size_t c = 0; c < b.argc.size(); ++c) {
      argv.clear();
      for (uint32_t i = 0; i < b.argc[c]; ++i, ++arg) {
        argv.emplace_back(b.blob.data() + off, b.arg_lens[arg]);
        off += b.arg_lens[arg];
      }
      Partition* p = remote->partition(b.partition[c]);
      TALLY_ASSERT_MSG(p != nullptr, "a command reached a shard that does not hold its partition");
      run_on_partition(*remote, *p, *b.entries[c], argv, reply);
    }
    home->reactor->post([home, conn_id, seq, r = std::move(reply)]() mutable {
      if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
    });
  });
  batch_ = RemoteBatch{};
}

void CommandEngine::run_split(const CommandEntry& e, Argv argv, proto::Reply& out, bool& done) {
  const size_t step = e.split == Split::kKeysOk ? static_cast<size_t>(std::max(1, e.key_step)) : 1;
  std::vector<Part> parts;
  std::vector<uint32_t> part_of_key;
  make_parts(argv.size(), key_pos_, key_partitions_, step, parts, part_of_key);
  bool local = true;
  for (const Part& part : parts) local &= server_.shard_of_partition(part.partition) == home_.id;
  const Clock& clock = server_.env().clock();
  if (local) {
    // Every part is here: run them now on views of the request and merge.
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
  st->parts = std::move(parts);
  st->part_of_key = std::move(part_of_key);
  st->home = &home_;
  st->conn_id = conn_id_;
  st->seq = session_.reserve_reply();
  st->t0_ns = clock.monotonic_ns();
  std::vector<bool> involved(server_.shard_count(), false);
  for (const Part& part : st->parts) involved[server_.shard_of_partition(part.partition)] = true;
  run_split_state(server_, home_, std::move(st), involved);
  done = false;
}

void CommandEngine::run_everywhere(const CommandEntry& e, Argv argv) {
  // One part per partition, each run by the shard holding it; merged on this shard.
  auto st = new_split_state(e, argv);
  const uint32_t partitions = server_.layout().count();
  st->parts.resize(partitions);
  for (uint32_t p = 0; p < partitions; ++p) {
    st->parts[p].partition = p;
    for (uint32_t i = 0; i < argv.size(); ++i) st->parts[p].args.push_back(i);
  }
  st->home = &home_;
  st->conn_id = conn_id_;
  st->seq = session_.reserve_reply();
  st->t0_ns = server_.env().monotonic_ns();
  st->rng_pick = home_.rng.uniform(partitions);
  run_split_state(server_, home_, std::move(st), std::vector<bool>(server_.shard_count(), true));
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

// One SCAN step on shard s from partition p at the store's cursor `inner`: it walks on through the
// next partitions s holds until COUNT keys are found or a partition held elsewhere comes next.
void scan_step(Shard& s, const CommandEntry& e, std::vector<std::string> args, uint32_t p, uint64_t inner,
               proto::Reply& out) {
  Server& server = *s.server;
  const size_t count = scan_count(std::vector<std::string_view>(args.begin(), args.end()));
  const uint32_t partitions = server.layout().count();
  proto::Reply keys;
  uint64_t found = 0;
  uint64_t cursor = 0;
  std::vector<std::string_view> argv;
  for (;;) {
    Partition* part = s.partition(p);
    TALLY_ASSERT_MSG(part != nullptr, "a SCAN step reached a shard that does not hold its partition");
    args[1] = std::to_string(inner);
    argv.assign(args.begin(), args.end());
    proto::Reply r;
    run_on_partition(s, *part, e, argv, r, /*record=*/false);
    if (r.is_error()) {
      out.append(r);
      return;
    }
    // [cursor, [key...]]
    TALLY_ASSERT(r.size() >= 3 && r.node(0).count == 2 && r.node(2).type == proto::ReplyType::kArray);
    const std::string_view next = r.text(1);
    uint64_t next_inner = 0;
    std::from_chars(next.data(), next.data() + next.size(), next_inner);
    keys.append(r, 3, r.size());
    found += r.node(2).count;
    if (next_inner != 0) {
      cursor = (uint64_t{p} << kScanPartitionShift) | next_inner;
      break;
    }
    ++p;
    inner = 0;
    if (p == partitions) {
      cursor = 0;
      break;
    }
    if (server.shard_of_partition(p) != s.id || found >= count) {
      cursor = uint64_t{p} << kScanPartitionShift;
      break;
    }
  }
  out.array(2);
  out.bulk(std::to_string(cursor));
  out.array(found);
  out.append(keys);
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
    out.array(2);
    out.bulk("0");
    out.array(0);
    return;
  }
  const uint32_t partition = static_cast<uint32_t>(p);
  const uint64_t inner = cursor & kScanInnerMask;
  const Clock& clock = server_.env().clock();
  const uint64_t t0 = clock.monotonic_ns();
  std::vector<std::string> args(argv.begin(), argv.end());
  const uint32_t owner = server_.shard_of_partition(partition);
  if (owner == home_.id) {
    const size_t first = out.size();
    scan_step(home_, e, std::move(args), partition, inner, out);
    home_.metrics->per_command[e.index].record(clock.monotonic_ns() - t0,
                                               out.node(first).type == proto::ReplyType::kError);
    CommandCounters::bump(home_.metrics->commands_processed);
    return;
  }
  done = false;
  const uint64_t seq = session_.reserve_reply();
  Shard* home = &home_;
  Shard* remote = &server_.shard(owner);
  const uint64_t conn_id = conn_id_;
  remote->reactor->post([home, remote, conn_id, seq, &e, partition, inner, t0, args = std::move(args)]() mutable {
    proto::Reply r;
    scan_step(*remote, e, std::move(args), partition, inner, r);
    home->reactor->post([home, conn_id, seq, &e, t0, r = std::move(r)]() mutable {
      home->metrics->per_command[e.index].record(home->server->env().monotonic_ns() - t0, r.is_error());
      CommandCounters::bump(home->metrics->commands_processed);
      if (ClientSession* s = ClientSession::lookup(*home, conn_id)) s->complete_reply(seq, r);
    });
  });
}

}  // namespace tally::server
