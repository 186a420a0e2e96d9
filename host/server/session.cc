#include "host/server/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "host/common/log.h"
#include "host/server/commands/util.h"
#include "host/server/server.h"

namespace tally::server {

namespace {

// Inputs beyond this many unparsed bytes are compacted away from the front of the buffer.
constexpr size_t kCompactThresholdBytes = 64 * 1024;

std::string unknown_command_text(std::span<const std::string_view> argv) {
  std::string msg = "ERR unknown command '";
  msg.append(argv[0].substr(0, 128));
  msg.append("', with args beginning with: ");
  for (size_t i = 1; i < argv.size() && i < 16; ++i) {
    msg.push_back('\'');
    msg.append(argv[i].substr(0, 128));
    msg.append("' ");
  }
  return msg;
}

}  // namespace

Session::Session(Server& server, Shard& home, net::Conn& conn)
    : server_(server),
      home_(home),
      conn_(&conn),
      conn_id_(conn.id()),
      client_id_(server.next_client_id()),
      created_ms_(server.env().wall_ms()),
      last_active_ms_(created_ms_),
      parser_(proto::RespLimits{.max_bulk_bytes = server.config().proto_max_bulk_len}),
      engine_(server, home, *this, conn.id(), /*batch_remote=*/true, /*cluster_client=*/true) {
  acl_generation_ = server.acl().generation();
  user_ = server.acl().find("default");
  set_authenticated(user_->enabled() && user_->nopass());
  home_.sessions.push_back(this);
  home_.metrics->connection_opened();
}

Session::~Session() {
  if (bcall_ != nullptr) {
    // A probe still running may yet pop an element for nobody: as Redis, the element a closing
    // client was about to get is gone with it.
    block_unregister();
    block_stop_timers();
  }
  for (int k = 0; k < 3; ++k) {
    for (const std::string& n : subs_[k]) home_.pubsub.remove(static_cast<PubSubRegistry::Kind>(k), n, conn_id_);
  }  // (reset_state does the same and more; a closing session needs only this)
  auto& v = home_.sessions;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void Session::push_message(const proto::Reply& r) {
  write_in_order(r);
  if (pending_.empty()) conn_->mark_output();
}

void Session::write_in_order(const proto::Reply& r) {
  std::string* target = &conn_->out();
  if (!pending_.empty()) {
    if (!pending_.back().done) pending_.push_back(Pending{{}, true, false});
    target = &pending_.back().bytes;
  }
  proto::ReplyWriter w(*target, resp_);
  r.write_resp(w);
}

void Session::set_authenticated(bool yes) {
  authenticated_ = yes;
  parser_.set_authenticated(yes);
}

void Session::login(std::shared_ptr<const AclUser> u) {
  user_ = std::move(u);
  set_authenticated(true);
}

bool Session::refresh_user() {
  acl_generation_ = server_.acl().generation();
  std::shared_ptr<const AclUser> u = server_.acl().find(user_->name());
  if (u == nullptr) return false;  // ACL DELUSER: its connections close
  // A subscriber whose channels were taken away is disconnected, as Redis does.
  for (const std::string& ch : subs_[PubSubRegistry::kChannel]) {
    if (!u->channel_allowed(ch, false)) return false;
  }
  for (const std::string& ch : subs_[PubSubRegistry::kShardChannel]) {
    if (!u->channel_allowed(ch, false)) return false;
  }
  for (const std::string& p : subs_[PubSubRegistry::kPattern]) {
    if (!u->channel_allowed(p, true)) return false;
  }
  user_ = std::move(u);
  return true;
}

void Session::log_acl_denial(std::string_view reason, std::string object, std::string_view username) {
  AclLogEntry entry;
  entry.reason = std::string(reason);
  entry.context = in_multi_ ? "multi" : "toplevel";
  entry.object = std::move(object);
  entry.username = std::string(username);
  const uint64_t now = server_.env().wall_ms();
  entry.client_info = describe(now);
  if (!entry.client_info.empty() && entry.client_info.back() == '\n') entry.client_info.pop_back();
  server_.acl().log(std::move(entry), now);
}

bool Session::acl_permits(const CommandEntry& e, std::span<const std::string_view> argv) {
  if (!authenticated_) return true;  // only AUTH, HELLO, QUIT and RESET get here
  if (acl_generation_ != server_.acl().generation() && !refresh_user()) {
    engine_.flush();
    close_after_reply_ = true;
    return false;
  }
  if (user_->unrestricted()) return true;
  std::string object;
  const AclDenied d = user_->check(e, argv, &object);
  if (d == AclDenied::kNone) return true;
  engine_.flush();
  AclCounters& c = server_.acl().counters();
  std::string_view reason;
  std::string text;
  switch (d) {
    case AclDenied::kCommand:
      c.denied_cmd.fetch_add(1, std::memory_order_relaxed);
      reason = "command";
      text = "NOPERM this user has no permissions to run the '" + object + "' command";
      break;
    case AclDenied::kKey:
      c.denied_key.fetch_add(1, std::memory_order_relaxed);
      reason = "key";
      text = "NOPERM this user has no permissions to access one of the keys used as arguments";
      break;
    default:
      c.denied_channel.fetch_add(1, std::memory_order_relaxed);
      reason = "channel";
      text = "NOPERM this user has no permissions to access one of the channels used as arguments";
      break;
  }
  log_acl_denial(reason, std::move(object), user_->name());
  if (in_multi_) multi_error_ = true;
  emit_error(text);
  return false;
}

void Session::set_lib(std::string_view attr, std::string_view value) {
  if (attr == "lib-name") lib_name_ = std::string(value);
  if (attr == "lib-ver") lib_ver_ = std::string(value);
}

std::string Session::describe(uint64_t now_ms) const {
  // Redis 7's fields, in its order (redis-py's CLIENT INFO parser needs each numeric one).
  const uint64_t omem = conn_->pending_output_bytes();
  std::string s = "id=" + std::to_string(client_id_) + " addr=" + conn_->peer() +
                  " laddr=127.0.0.1:" + std::to_string(conn_->local_port()) + " fd=-1 name=" + name_ +
                  " age=" + std::to_string((now_ms - created_ms_) / 1000) +
                  " idle=" + std::to_string((now_ms - last_active_ms_) / 1000) + " flags=" + (engine_.replica_reads() ? "r" : "N") + " db=0" +
                  " sub=" + std::to_string(subs_[PubSubRegistry::kChannel].size()) +
                  " psub=" + std::to_string(subs_[PubSubRegistry::kPattern].size()) +
                  " ssub=" + std::to_string(subs_[PubSubRegistry::kShardChannel].size()) +
                  " multi=" + (in_multi_ ? std::to_string(queued_.size()) : std::string("-1")) +
                  " qbuf=" + std::to_string(in_.size()) + " qbuf-free=" + std::to_string(in_.capacity() - in_.size()) +
                  " argv-mem=0 multi-mem=0 rbs=" + std::to_string(in_.capacity()) + " rbp=" + std::to_string(in_.size()) +
                  " obl=0 oll=" + std::to_string(pending_.size()) + " omem=" + std::to_string(omem) +
                  " tot-mem=" + std::to_string(in_.capacity() + omem) + " events=r cmd=" + std::string(last_command_) +
                  " user=" + user_->name() + " redir=-1 resp=" + std::to_string(resp_) + " lib-name=" + lib_name_ +
                  " lib-ver=" + lib_ver_ + " shard=" + std::to_string(home_.id) + "\n";
  return s;
}

std::function<bool()> Session::alive_check() const {
  Shard* home = &home_;
  uint64_t id = conn_id_;
  return [home, id] { return lookup(*home, id) != nullptr; };
}

Session* Session::lookup(Shard& home, uint64_t conn_id) {
  net::Conn* c = home.reactor->find(conn_id);
  if (c == nullptr) return nullptr;
  return static_cast<Session*>(c->handler());
}

void Session::on_close(net::Conn& c) {
  closed_ = true;
  home_.metrics->connection_closed();
  delete this;
}

void Session::on_data(net::Conn& c, std::string_view data) {
  TALLY_ASSERT(&c == conn_);
  CommandCounters::bump(home_.metrics->net_input_bytes, data.size());
  last_active_ms_ = server_.env().wall_ms();
  if (in_.size() + data.size() > server_.config().client_query_buffer_limit_bytes) {
    TALLY_LOG_WARN("closing client {}: query buffer over {} bytes", c.peer(),
                   server_.config().client_query_buffer_limit_bytes);
    c.close_now();
    return;
  }
  if (blocked_ || waiting_) {
    in_.append(data);  // processed once the partition move (or the blocking command) ends
    return;
  }
  if (in_.empty()) {
    // The common case: parse straight from the receive buffer and keep only an unfinished tail.
    const size_t used = process(data);
    if (!closed_ && used < data.size()) in_.assign(data.substr(used));
  } else {
    in_.append(data);
    process_input();
  }
}

bool Session::over_inflight_limit() const { return pending_.size() >= server_.config().pipeline_inflight_max; }

void Session::process_input() {
  const size_t pos = process(in_);
  if (closed_) return;
  if (pos > 0) {
    if (pos >= in_.size()) {
      in_.clear();
      if (in_.capacity() > kCompactThresholdBytes) in_.shrink_to_fit();
    } else {
      in_.erase(0, pos);
    }
  }
}

size_t Session::process(std::string_view input) {
  size_t pos = 0;
  while (!closed_ && !close_after_reply_ && !blocked_ && !waiting_ && pos < input.size()) {
    if (over_inflight_limit()) {
      // Back-pressure: stop reading until earlier replies come back.
      if (!paused_) {
        paused_ = true;
        conn_->pause_reading();
      }
      break;
    }
    std::string_view view = input.substr(pos);
    cmd_.clear();
    proto::ParseStatus st = parser_.parse(view, cmd_);
    if (st == proto::ParseStatus::kIncomplete) {
      // A prefix of empty commands may have been consumed; the parser restarts after it.
      const size_t skipped = parser_.consumed();
      if (size_t need = parser_.bytes_needed_hint(); need > view.size()) {
        in_.reserve(std::min<size_t>(need, server_.config().client_query_buffer_limit_bytes));
      }
      pos += skipped;
      break;
    }
    if (st == proto::ParseStatus::kError) {
      engine_.flush();
      CommandCounters::bump(home_.metrics->protocol_errors);
      emit_error(parser_.error());
      close_after_reply_ = true;
      pos = input.size();
      break;
    }
    const size_t consumed = parser_.consumed();
    // Inline arguments may live in the parser's scratch space: run the command before reset().
    const bool ran = cmd_.argv.empty() || execute(cmd_.argv);
    parser_.reset();
    if (!ran) break;  // held back: parsed again when the session resumes
    pos += consumed;
  }
  engine_.flush();
  if (close_after_reply_ && pending_.empty() && !closed_) conn_->close_after_flush();
  return pos;
}

void Session::emit(const proto::Reply& r) {
  if (r.empty()) return;  // the command replies later, or not at all (CLIENT REPLY OFF)
  if (reply_mode_ != ReplyMode::kOn) {
    if (reply_mode_ == ReplyMode::kSkip) reply_mode_ = ReplyMode::kOn;
    return;
  }
  write_in_order(r);
}

void Session::emit_error(std::string_view text) {
  proto::Reply& r = home_.scratch;
  r.clear();
  r.error(text);
  emit(r);
}

uint64_t Session::reserve_reply() {
  const bool discard = reply_mode_ != ReplyMode::kOn;
  if (reply_mode_ == ReplyMode::kSkip) reply_mode_ = ReplyMode::kOn;
  pending_.push_back(Pending{{}, false, discard});
  return pending_base_ + pending_.size() - 1;
}

void Session::complete_reply(uint64_t seq, proto::Reply& reply) {
  if (bcall_ != nullptr && bcall_->probing && seq == bcall_->probe_seq) {
    block_on_probe(reply);  // a blocking command's probe: it decides what to answer
    return;
  }
  if (watch_pending_ && seq == watch_seq_) {
    watch_pending_ = false;
    watch_answered(reply, &seq);  // WATCH's CAS values: kept, and OK answered
    return;
  }
  fill_slot(seq, &reply);
}

void Session::fill_slot(uint64_t seq, const proto::Reply* reply) {
  TALLY_ASSERT(seq >= pending_base_);
  TALLY_ASSERT(seq - pending_base_ < pending_.size());
  Pending& p = pending_[seq - pending_base_];
  TALLY_ASSERT(!p.done);
  if (!p.discard && reply != nullptr) {
    proto::ReplyWriter w(p.bytes, resp_);
    reply->write_resp(w);
  }
  p.done = true;
  flush_completed();
}

void Session::resume_processing() {
  if (!blocked_ || closed_) return;
  blocked_ = false;
  process_input();
  if (!closed_) conn_->mark_output();
}

void Session::flush_completed() {
  bool wrote = false;
  while (!pending_.empty() && pending_.front().done) {
    conn_->out().append(pending_.front().bytes);
    pending_.pop_front();
    ++pending_base_;
    wrote = true;
  }
  if (wrote) conn_->mark_output();
  if (pending_.empty() && close_after_reply_ && !closed_) {
    conn_->close_after_flush();
    return;
  }
  if (paused_ && !over_inflight_limit()) {
    paused_ = false;
    conn_->resume_reading();
    process_input();
    // Replies of the commands that waited were appended after the mark above.
    if (!closed_) conn_->mark_output();
  }
}

bool Session::execute(std::span<const std::string_view> argv) {
  const CommandEntry* e = CommandTable::instance().find(argv[0]);
  if (e == nullptr || (e->flags & kCmdInternal)) {
    engine_.flush();
    if (in_multi_) multi_error_ = true;
    if (!authenticated_) {
      emit_error("NOAUTH Authentication required.");
    } else {
      emit_error(unknown_command_text(argv));
    }
    return true;
  }
  last_command_ = e->name;
  if (!authenticated_ && !(e->flags & kCmdNoAuth)) {
    engine_.flush();
    CommandCounters::bump(home_.metrics->per_command[e->index].rejected);
    emit_error("NOAUTH Authentication required.");
    return true;
  }
  if (!CommandTable::arity_ok(*e, argv.size())) {
    engine_.flush();
    if (in_multi_) multi_error_ = true;
    CommandCounters::bump(home_.metrics->per_command[e->index].rejected);
    emit_error("ERR wrong number of arguments for '" + cmd::lower_ascii(argv[0]) + "' command");
    return true;
  }
  if (!acl_permits(*e, argv)) {
    CommandCounters::bump(home_.metrics->per_command[e->index].rejected);
    return true;
  }
  if (resp_ == 2 && subscription_count() > 0 && !(e->flags & kCmdPubSubContext)) {
    // RESP2 subscribed mode: the connection carries messages; only these commands may run on it.
    engine_.flush();
    emit_error("ERR Can't execute '" + cmd::lower_ascii(argv[0]) +
               "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    return true;
  }
  if (in_multi_ || (e->flags & kCmdTransaction) != 0) {
    bool ran = false;
    const bool go_on = run_transaction_command(*e, argv, ran);
    if (ran) return go_on;
  }
  proto::Reply& r = home_.scratch;
  r.clear();
  SessionHandler handler = e->session;
  if (handler == nullptr && (e->flags & kCmdBlockOption) && stream_read_blocks(argv)) {
    handler = cmd_stream_blocking;  // XREAD/XREADGROUP BLOCK: a blocking command
  }
  if (handler != nullptr) {
    engine_.flush();
    const Clock& clock = server_.env().clock();
    const uint64_t t0 = clock.monotonic_ns();
    out_ = &r;
    handler(*this, argv);
    out_ = nullptr;
    home_.metrics->per_command[e->index].record(clock.monotonic_ns() - t0, r.is_error());
    CommandCounters::bump(home_.metrics->commands_processed);
    emit(r);
    return true;
  }
  switch (engine_.run(*e, argv, r)) {
    case CommandEngine::Outcome::kDone:
      emit(r);
      return true;
    case CommandEngine::Outcome::kQueued:
      return true;
    case CommandEngine::Outcome::kBlocked:
      blocked_ = true;
      home_.blocked.push_back(conn_id_);
      return false;
  }
  TALLY_UNREACHABLE();
}

}  // namespace tally::server
