// Blocking commands: the registry of waiters on the shard holding the keys, and the session's side
// (probe, wait, wake, timeout). See blocking.h.
#include "host/server/blocking.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "host/common/assert.h"
#include "host/server/command_table.h"
#include "host/server/commands/util.h"
#include "host/server/server.h"
#include "host/server/session.h"

namespace tally::server {

using cmd::iequals;

namespace {

// A probe held back by a partition move is tried again after this long.
constexpr uint64_t kRetryAfterMoveMs = 20;
// Timeouts above this are treated as forever (Redis bounds them by its clock's range).
constexpr long double kTimeoutSecondsMax = 1e12L;

const char* const kErrTimeoutFloat = "ERR timeout is not a float or out of range";
const char* const kErrTimeoutNegative = "ERR timeout is negative";

// Redis's timeout argument: seconds as a float, not negative. false after replying the error.
bool parse_timeout(Session& s, std::string_view arg, uint64_t& ms) {
  char buf[128];
  if (arg.empty() || arg.size() >= sizeof buf) {
    s.out().error(kErrTimeoutFloat);
    return false;
  }
  std::memcpy(buf, arg.data(), arg.size());
  buf[arg.size()] = '\0';
  char* end = nullptr;
  errno = 0;
  const long double v = std::strtold(buf, &end);
  if (end != buf + arg.size() || std::isnan(v) || std::isinf(v) || errno == ERANGE) {
    s.out().error(kErrTimeoutFloat);
    return false;
  }
  if (v < 0) {
    s.out().error(kErrTimeoutNegative);
    return false;
  }
  if (v == 0 || v > kTimeoutSecondsMax) {
    ms = 0;
  } else {
    ms = std::max<uint64_t>(1, static_cast<uint64_t>(std::llround(v * 1000)));
  }
  return true;
}

bool reply_is_empty(const proto::Reply& r) {
  if (r.empty()) return true;
  const proto::ReplyType t = r.node(0).type;
  return t == proto::ReplyType::kNull || t == proto::ReplyType::kNullArray;
}

// The blocking command's reply from its probe's non-empty reply.
void shape_reply(BlockingCall::Shape shape, const proto::Reply& in, proto::Reply& out) {
  out.clear();
  if (in.is_error() || shape == BlockingCall::Shape::kAsIs) {
    out.append(in);
    return;
  }
  if (shape == BlockingCall::Shape::kKeyValue) {
    // [key, [value]]
    TALLY_ASSERT(in.size() == 4 && in.node(0).type == proto::ReplyType::kArray);
    out.array(2);
    out.bulk(in.text(1));
    out.bulk(in.text(3));
    return;
  }
  // [key, [[member, score]]]
  TALLY_ASSERT(in.size() == 6 && in.node(5).type == proto::ReplyType::kDouble);
  out.array(3);
  out.bulk(in.text(1));
  out.bulk(in.text(4));
  out.dbl(in.node(5).dbl);
}

}  // namespace

// ---- the registry, on the shard holding the keys ----

void BlockingRegistry::add(std::string_view key, const BlockWaiter& w) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) it = by_key_.emplace(std::string(key), std::vector<BlockWaiter>{}).first;
  it->second.push_back(w);
}

void BlockingRegistry::remove(std::string_view key, uint64_t token) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  auto& v = it->second;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].token == token) {
      v[i] = v.back();
      v.pop_back();
      break;
    }
  }
  if (v.empty()) by_key_.erase(it);
}

void BlockingRegistry::written(std::string_view key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  std::vector<BlockWaiter> waiters = std::move(it->second);
  by_key_.erase(it);
  wake(waiters);
}

void BlockingRegistry::wake_all() {
  std::vector<BlockWaiter> all;
  for (auto& [k, v] : by_key_) all.insert(all.end(), v.begin(), v.end());
  by_key_.clear();
  wake(all);
}

void BlockingRegistry::wake(const std::vector<BlockWaiter>& waiters) {
  for (const BlockWaiter& w : waiters) {
    // Posted even to this shard: the wake runs after the write's own command has finished.
    Shard* home = w.home;
    const uint64_t conn_id = w.conn_id, token = w.token;
    home->reactor->post([home, conn_id, token] {
      if (Session* s = Session::lookup(*home, conn_id)) s->block_wake(token);
    });
  }
}

void notify_written(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv) {
  if (shard.blocking.empty() || !(e.flags & kCmdWrite)) return;
  thread_local std::vector<size_t> pos;
  // (A transaction names the keys of all its commands: CommandTable::key_positions knows them.)
  CommandTable::key_positions(e, argv, pos);
  for (size_t i : pos) shard.blocking.written(argv[i]);
}

// ---- the command ----

void cmd_blocking(Session& s, std::span<const std::string_view> argv) {
  const std::string_view name = argv[0];
  auto call = std::make_unique<BlockingCall>();
  const CommandTable& table = CommandTable::instance();
  uint64_t timeout_ms = 0;
  if (iequals(name, "blpop") || iequals(name, "brpop") || iequals(name, "bzpopmin") || iequals(name, "bzpopmax")) {
    // KEY [KEY ...] TIMEOUT: probe with LMPOP/ZMPOP over the keys, one element.
    if (!parse_timeout(s, argv.back(), timeout_ms)) return;
    const bool list = iequals(name, "blpop") || iequals(name, "brpop");
    call->probe = table.find(list ? "lmpop" : "zmpop");
    call->shape = list ? BlockingCall::Shape::kKeyValue : BlockingCall::Shape::kKeyMemberScore;
    call->args.emplace_back(list ? "lmpop" : "zmpop");
    call->args.push_back(std::to_string(argv.size() - 2));
    for (size_t i = 1; i + 1 < argv.size(); ++i) {
      call->args.emplace_back(argv[i]);
      call->keys.emplace_back(argv[i]);
    }
    call->args.emplace_back(iequals(name, "blpop") ? "left" : iequals(name, "brpop") ? "right"
                            : iequals(name, "bzpopmin") ? "min" : "max");
  } else if (iequals(name, "blmove") || iequals(name, "brpoplpush")) {
    // SRC DST [FROM TO] TIMEOUT: probe with LMOVE / RPOPLPUSH.
    if (!parse_timeout(s, argv.back(), timeout_ms)) return;
    const bool move = iequals(name, "blmove");
    call->probe = table.find(move ? "lmove" : "rpoplpush");
    call->args.emplace_back(move ? "lmove" : "rpoplpush");
    for (size_t i = 1; i + 1 < argv.size(); ++i) call->args.emplace_back(argv[i]);
    call->keys = {std::string(argv[1]), std::string(argv[2])};
    call->timeout_is_null_array = false;
  } else {
    // BLMPOP / BZMPOP TIMEOUT NUMKEYS KEY... ...: probe with LMPOP / ZMPOP.
    if (!parse_timeout(s, argv[1], timeout_ms)) return;
    const bool list = iequals(name, "blmpop");
    call->probe = table.find(list ? "lmpop" : "zmpop");
    call->args.emplace_back(list ? "lmpop" : "zmpop");
    for (size_t i = 2; i < argv.size(); ++i) call->args.emplace_back(argv[i]);
    std::vector<std::string_view> views(call->args.begin(), call->args.end());
    std::vector<size_t> pos;
    CommandTable::key_positions(*call->probe, views, pos);
    for (size_t i : pos) call->keys.emplace_back(views[i]);
  }
  TALLY_ASSERT(call->probe != nullptr);
  call->timeout_ms = timeout_ms;
  s.begin_blocking(std::move(call));
}

bool stream_read_blocks(std::span<const std::string_view> argv) {
  for (size_t i = 1; i + 1 < argv.size(); ++i) {
    if (iequals(argv[i], "streams")) return false;
    if (iequals(argv[i], "block")) return true;
  }
  return false;
}

void cmd_stream_blocking(Session& s, std::span<const std::string_view> argv) {
  const CommandTable& table = CommandTable::instance();
  const CommandEntry* e = table.find(argv[0]);
  TALLY_ASSERT(e != nullptr && e->data != nullptr);
  auto call = std::make_unique<BlockingCall>();
  // BLOCK's milliseconds (the last BLOCK before STREAMS counts, as in Redis); other errors are the
  // probe's to answer.
  uint64_t timeout_ms = 0;
  for (size_t i = 1; i + 1 < argv.size(); ++i) {
    if (iequals(argv[i], "streams")) break;
    if (!iequals(argv[i], "block")) continue;
    int64_t ms = 0;
    if (!cmd::parse_i64(argv[i + 1], ms)) {
      s.out().error("ERR timeout is not an integer or out of range");
      return;
    }
    if (ms < 0) {
      s.out().error("ERR timeout is negative");
      return;
    }
    timeout_ms = static_cast<uint64_t>(ms);
    ++i;
  }
  call->probe = e;
  call->args.assign(argv.begin(), argv.end());
  std::vector<size_t> pos;
  CommandTable::key_positions(*e, argv, pos);
  for (size_t i : pos) call->keys.emplace_back(argv[i]);
  if (call->keys.empty()) call->keys.emplace_back();  // no STREAMS: the probe answers the error
  if (!pos.empty() && !iequals(argv[0], "xreadgroup")) {
    // "$": the last ids when the wait begins, found before the first probe.
    const size_t n = pos.size(), ids_at = pos.back() + 1;
    bool dollar = false;
    for (size_t i = 0; i < n && ids_at + i < argv.size(); ++i) dollar |= argv[ids_at + i] == "$";
    if (dollar) {
      call->resolve = table.find("x.lastids");
      call->resolve_args.emplace_back("x.lastids");
      for (size_t i = 0; i < n; ++i) {
        call->resolve_args.emplace_back(argv[pos[i]]);
        call->resolve_into.push_back(ids_at + i);
      }
    }
  }
  call->timeout_ms = timeout_ms;
  s.begin_blocking(std::move(call));
}

// ---- the session's side ----

void Session::begin_blocking(std::unique_ptr<BlockingCall> call) {
  TALLY_ASSERT(bcall_ == nullptr && !call->keys.empty());
  bcall_ = std::move(call);
  waiting_ = true;
  bcall_->slot_seq = reserve_reply();
  if (bcall_->timeout_ms > 0) {
    bcall_->timer = home_.reactor->add_timer(bcall_->timeout_ms, [this] {
      if (bcall_ == nullptr) return;
      home_.reactor->cancel_timer(bcall_->timer);
      bcall_->timer = 0;
      bcall_->timed_out = true;
      if (bcall_->probing) return;  // its reply decides: an element found now is still delivered
      proto::Reply none;
      bcall_->timeout_is_null_array ? none.null_array() : none.null();
      block_finish(none);
    });
  }
  block_probe();
}

void Session::block_register() {
  BlockingCall& c = *bcall_;
  static uint64_t next_token = 0;  // tokens only need to differ per session: any increasing counter does
  c.token = __atomic_add_fetch(&next_token, 1, __ATOMIC_RELAXED);
  c.owner = server_.shard_of_partition(server_.partition_of_key(c.keys[0]));
  const BlockWaiter w{&home_, conn_id_, c.token};
  on_owner_registry([keys = c.keys, w](BlockingRegistry& reg) {
    for (const std::string& k : keys) reg.add(k, w);
  });
}

void Session::on_owner_registry(std::function<void(BlockingRegistry&)> fn) {
  if (bcall_->owner == home_.id) return fn(home_.blocking);
  Shard* owner = &server_.shard(bcall_->owner);
  owner->reactor->post([owner, fn = std::move(fn)] { fn(owner->blocking); });
}

void Session::block_unregister() {
  BlockingCall& c = *bcall_;
  if (c.token == 0) return;
  const uint64_t token = c.token;
  c.token = 0;
  on_owner_registry([keys = c.keys, token](BlockingRegistry& reg) {
    for (const std::string& k : keys) reg.remove(k, token);
  });
}

void Session::block_stop_timers() {
  if (bcall_->timer != 0) home_.reactor->cancel_timer(bcall_->timer);
  if (bcall_->retry_timer != 0) home_.reactor->cancel_timer(bcall_->retry_timer);
  bcall_->timer = bcall_->retry_timer = 0;
}

void Session::block_probe() {
  BlockingCall& c = *bcall_;
  TALLY_ASSERT(!c.probing);
  // Register first: a write after this point wakes us, whether or not the probe below saw it.
  block_unregister();
  block_register();
  c.woken = false;
  const std::vector<std::string>& args = c.resolve != nullptr ? c.resolve_args : c.args;
  std::vector<std::string_view> argv(args.begin(), args.end());
  probe_reply_.clear();
  // The probe's own reply place, if the engine needs one, is the next one reserved.
  c.probe_seq = pending_base_ + pending_.size();
  c.probing = true;
  const CommandEngine::Outcome o = engine_.run(c.resolve != nullptr ? *c.resolve : *c.probe, argv, probe_reply_);
  engine_.flush();
  if (bcall_ == nullptr) return;  // the probe answered inside run() and finished the call
  switch (o) {
    case CommandEngine::Outcome::kDone: {
      c.probing = false;
      proto::Reply r = std::move(probe_reply_);
      probe_reply_.clear();
      block_on_probe_done(r);
      return;
    }
    case CommandEngine::Outcome::kQueued:
      return;  // complete_reply(probe_seq) brings the answer
    case CommandEngine::Outcome::kBlocked:
      // A partition moves: nothing ran. Try again shortly (the move wakes every waiter of its shard
      // too, but the move may not have ended by then).
      c.probing = false;
      if (c.retry_timer == 0) {
        c.retry_timer = home_.reactor->add_timer(kRetryAfterMoveMs, [this] {
          home_.reactor->cancel_timer(bcall_->retry_timer);
          bcall_->retry_timer = 0;
          if (!bcall_->probing) block_probe();
        });
      }
      return;
  }
}

void Session::block_on_probe(const proto::Reply& r) {
  BlockingCall& c = *bcall_;
  TALLY_ASSERT(c.probing);
  c.probing = false;
  fill_slot(c.probe_seq, nullptr);  // the probe's place carries nothing
  if (bcall_ == nullptr) return;
  block_on_probe_done(r);
}

void Session::block_on_probe_done(const proto::Reply& r) {
  BlockingCall& c = *bcall_;
  if (c.resolve != nullptr && !r.is_error()) {
    // x.lastids answered: "$" becomes each stream's last id, and the real probe runs now.
    TALLY_ASSERT(r.size() == c.resolve_into.size() + 1);
    for (size_t i = 0; i < c.resolve_into.size(); ++i) {
      std::string& arg = c.args[c.resolve_into[i]];
      if (arg == "$") arg = std::string(r.text(1 + i));
    }
    c.resolve = nullptr;
    if (c.timed_out) {
      proto::Reply none;
      none.null_array();
      block_finish(none);
      return;
    }
    block_probe();
    return;
  }
  if (!reply_is_empty(r)) {
    proto::Reply shaped;
    shape_reply(c.shape, r, shaped);
    block_finish(shaped);
    return;
  }
  if (c.timed_out) {
    proto::Reply none;
    c.timeout_is_null_array ? none.null_array() : none.null();
    block_finish(none);
    return;
  }
  if (c.woken) block_probe();  // a write came while the probe ran
}

void Session::block_wake(uint64_t token) {
  if (bcall_ == nullptr || token != bcall_->token) return;  // an old registration
  if (bcall_->probing) {
    bcall_->woken = true;  // probe again once this one answers
    return;
  }
  block_probe();  // unregisters what is left of this token and registers anew
}

void Session::block_finish(const proto::Reply& r) {
  block_unregister();
  block_stop_timers();
  const uint64_t seq = bcall_->slot_seq;
  bcall_.reset();
  waiting_ = false;
  fill_slot(seq, &r);
  if (closed_) return;
  process_input();
  if (!closed_) conn_->mark_output();
}

}  // namespace tally::server
