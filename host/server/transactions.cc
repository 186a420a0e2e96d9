// MULTI, EXEC, DISCARD, WATCH, UNWATCH on a session. Queued commands are checked as Redis checks them
// (unknown commands and wrong arities abort the EXEC); EXEC sends them, with the watched keys' CAS
// values, as one internal data command (tx.write / tx.read, host/server/commands/tx_commands.cc). The
// engine routes it by all those keys like any multi-key command: on one partition it runs there, atomic,
// one log entry when logged; over several partitions of one shard in memory mode it runs on their
// gathered copies, atomic too; otherwise (partitions on several shards, or logged ones) EXEC answers
// CROSSSLOT, as Redis Cluster does for keys of several slots.
#include <string>

#include "host/server/command_table.h"
#include "host/server/server.h"
#include "host/server/session.h"

namespace tally::server {
namespace {

const char* const kErrExecAbort = "EXECABORT Transaction discarded because of previous errors.";

}  // namespace

void Session::reset_state() {
  multi_reset();
  for (int k = 0; k < 3; ++k) {
    for (const std::string& n : subs_[k]) home_.pubsub.remove(static_cast<PubSubRegistry::Kind>(k), n, conn_id_);
    subs_[k].clear();
  }
  resp_ = 2;
  reply_mode_ = ReplyMode::kOn;
  name_.clear();
  acl_generation_ = server_.acl().generation();
  user_ = server_.acl().find("default");
  set_authenticated(user_->enabled() && user_->nopass());
}

void Session::multi_reset() {
  in_multi_ = false;
  multi_error_ = false;
  queued_.clear();
  watched_.clear();
}

bool Session::run_transaction_command(const CommandEntry& e, std::span<const std::string_view> argv, bool& ran) {
  ran = true;
  const std::string_view name = e.name;
  proto::Reply& r = home_.scratch;
  r.clear();
  if (name == "multi") {
    engine_.flush();
    if (in_multi_) {
      r.error("ERR MULTI calls can not be nested");
    } else {
      in_multi_ = true;
      r.ok();
    }
    emit(r);
    return true;
  }
  if (name == "discard") {
    engine_.flush();
    if (!in_multi_) {
      r.error("ERR DISCARD without MULTI");
    } else {
      multi_reset();
      r.ok();
    }
    emit(r);
    return true;
  }
  if (name == "exec") return exec_transaction();
  if (name == "watch") return watch_keys(argv);
  if (name == "unwatch" && !in_multi_) {
    engine_.flush();
    watched_.clear();
    r.ok();
    emit(r);
    return true;
  }
  if (!in_multi_ || name == "quit" || name == "reset") {  // these run even inside MULTI
    ran = false;
    return true;
  }
  // Inside MULTI: data commands with keys are queued; anything else would not be atomic with them.
  engine_.flush();
  if (e.data == nullptr || !e.has_keys()) {
    multi_error_ = true;
    r.error("ERR '" + std::string(name) + "' is not supported inside MULTI (only commands on keys)");
  } else {
    queued_.emplace_back(argv.begin(), argv.end());
    r.simple("QUEUED");
  }
  emit(r);
  return true;
}

bool Session::watch_keys(std::span<const std::string_view> argv) {
  engine_.flush();
  proto::Reply& r = home_.scratch;
  r.clear();
  if (in_multi_) {
    r.error("ERR WATCH inside MULTI is not allowed");
    emit(r);
    return true;
  }
  const CommandEntry* probe = CommandTable::instance().find("tx.cas");
  std::vector<std::string_view> args(argv.begin(), argv.end());
  args[0] = "tx.cas";
  watch_keys_.assign(argv.begin() + 1, argv.end());
  watch_seq_ = pending_base_ + pending_.size();  // the place the engine reserves, if it needs one
  watch_pending_ = true;
  const CommandEngine::Outcome o = engine_.run(*probe, args, r);
  engine_.flush();
  switch (o) {
    case CommandEngine::Outcome::kDone:
      watch_pending_ = false;
      watch_answered(r, nullptr);
      return true;
    case CommandEngine::Outcome::kQueued:
      // Later commands (an EXEC) need the CAS values: they wait for them.
      if (watch_pending_) waiting_ = true;
      return true;
    case CommandEngine::Outcome::kBlocked:
      watch_pending_ = false;
      blocked_ = true;
      home_.blocked.push_back(conn_id_);
      return false;
  }
  TALLY_UNREACHABLE();
}

// The CAS values came back: remember them and answer OK (or pass an error on). `seq` null: the reply
// goes out at once; else into that reply place, and processing resumes.
void Session::watch_answered(const proto::Reply& cas, const uint64_t* seq) {
  proto::Reply out;
  if (cas.is_error() || cas.empty() || cas.node(0).type != proto::ReplyType::kArray ||
      cas.node(0).count != watch_keys_.size()) {
    out.append(cas);
  } else {
    for (size_t i = 0; i < watch_keys_.size(); ++i) {
      watched_.emplace_back(std::move(watch_keys_[i]), static_cast<uint64_t>(cas.node(1 + i).integer));
    }
    out.ok();
  }
  watch_keys_.clear();
  if (seq == nullptr) {
    emit(out);
    return;
  }
  waiting_ = false;
  fill_slot(*seq, &out);
  if (closed_) return;
  process_input();
  if (!closed_) conn_->mark_output();
}

bool Session::exec_transaction() {
  engine_.flush();
  proto::Reply& r = home_.scratch;
  r.clear();
  if (!in_multi_) {
    r.error("ERR EXEC without MULTI");
    emit(r);
    return true;
  }
  if (multi_error_) {
    multi_reset();
    r.error(kErrExecAbort);
    emit(r);
    return true;
  }
  if (queued_.empty()) {
    multi_reset();
    r.array(0);
    emit(r);
    return true;
  }
  // Every key, queued and watched, in one partition (one slot in cluster mode).
  const CommandTable& table = CommandTable::instance();
  std::vector<std::string_view> keys;
  bool writes = false;
  std::vector<size_t> pos;
  std::vector<const CommandEntry*> entries;
  for (const auto& cmd : queued_) {
    std::vector<std::string_view> argv(cmd.begin(), cmd.end());
    const CommandEntry* e = table.find(argv[0]);
    TALLY_ASSERT(e != nullptr && e->data != nullptr);
    entries.push_back(e);
    writes |= (e->flags & kCmdWrite) != 0;
    CommandTable::key_positions(*e, argv, pos);
    for (size_t p : pos) keys.push_back(cmd[p]);
  }
  for (const auto& [k, cas] : watched_) keys.push_back(k);
  if (keys.empty()) {
    multi_reset();
    r.error("ERR a transaction needs at least one key");
    emit(r);
    return true;
  }
  // tx.write|tx.read ROUTE NWATCH (KEY CAS)* NCMDS (ARGC ARG...)*
  std::vector<std::string> numbers;  // reserved up front: args views its strings
  numbers.reserve(2 + watched_.size() + queued_.size());
  std::vector<std::string_view> args;
  args.push_back(writes ? "tx.write" : "tx.read");
  args.push_back(keys[0]);
  numbers.push_back(std::to_string(watched_.size()));
  args.push_back(numbers.back());
  for (const auto& [k, cas] : watched_) {
    args.push_back(k);
    numbers.push_back(std::to_string(cas));
    args.push_back(numbers.back());
  }
  numbers.push_back(std::to_string(queued_.size()));
  args.push_back(numbers.back());
  for (const auto& cmd : queued_) {
    numbers.push_back(std::to_string(cmd.size()));
    args.push_back(numbers.back());
    for (const std::string& a : cmd) args.push_back(a);
  }
  const CommandEntry* tx = table.find(args[0]);
  switch (engine_.run(*tx, args, r)) {
    case CommandEngine::Outcome::kDone:
      multi_reset();
      emit(r);
      return true;
    case CommandEngine::Outcome::kQueued:
      multi_reset();
      return true;
    case CommandEngine::Outcome::kBlocked:
      // A partition moves: the EXEC runs again, transaction intact, once it is over.
      blocked_ = true;
      home_.blocked.push_back(conn_id_);
      return false;
  }
  TALLY_UNREACHABLE();
}

}  // namespace tally::server
