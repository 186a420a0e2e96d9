#include "host/server/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "host/common/clock.h"
#include "host/common/log.h"
#include "host/server/server.h"
#include "host/server/store_glue.h"

namespace tally::server {

namespace {

// Inputs beyond this many unparsed bytes are compacted away from the front of the buffer.
constexpr size_t kCompactThresholdBytes = 64 * 1024;

uint64_t now_ns() { return SystemClock::instance().monotonic_ns(); }

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

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

}  // namespace

void run_data_command(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv,
                      proto::ReplyWriter& out, bool record) {
  TALLY_ASSERT(e.data != nullptr);
  TALLY_ASSERT(!argv.empty());
  CommandCounters& counters = shard.metrics->per_command[e.index];
  const uint64_t now_ms = SystemClock::instance().wall_ms();
  if ((e.flags & kCmdDenyOom) && !store_admit_write(*shard.store, now_ms)) {
    CommandCounters::bump(counters.rejected);
    out.error("OOM command not allowed when used memory > 'maxmemory'.");
    return;
  }
  const size_t before = out.buffer().size();
  const uint64_t t0 = now_ns();
  ExecContext ctx{*shard.store, out, now_ms};
  e.data->handler(ctx, argv);
  if (!record) return;
  const bool error = out.buffer().size() > before && out.buffer()[before] == '-';
  counters.record(now_ns() - t0, error);
  CommandCounters::bump(shard.metrics->commands_processed);
}

Session::Session(Server& server, Shard& home, net::Conn& conn)
    : server_(server),
      home_(home),
      conn_(&conn),
      conn_id_(conn.id()),
      client_id_(server.next_client_id()),
      created_ms_(SystemClock::instance().wall_ms()),
      last_active_ms_(created_ms_),
      parser_(proto::RespLimits{.max_bulk_bytes = server.config().proto_max_bulk_len}),
      writer_(conn.out(), 2) {
  authenticated_ = server.requirepass().empty();
  parser_.set_authenticated(authenticated_);
  home_.sessions.push_back(this);
  home_.metrics->connection_opened();
}

Session::~Session() {
  auto& v = home_.sessions;
  v.erase(std::remove(v.begin(), v.end(), this), v.end());
}

void Session::set_authenticated(bool yes) {
  authenticated_ = yes;
  parser_.set_authenticated(yes);
}

void Session::set_lib(std::string_view attr, std::string_view value) {
  if (attr == "lib-name") lib_name_ = std::string(value);
  if (attr == "lib-ver") lib_ver_ = std::string(value);
}

std::string Session::describe(uint64_t now_ms) const {
  std::string s = "id=" + std::to_string(client_id_) + " addr=" + conn_->peer() +
                  " laddr=127.0.0.1:" + std::to_string(conn_->local_port()) + " fd=-1 name=" + name_ +
                  " age=" + std::to_string((now_ms - created_ms_) / 1000) + " idle=" + std::to_string((now_ms - last_active_ms_) / 1000) + " flags=N db=0" +
                  " sub=0 psub=0 ssub=0 multi=-1 qbuf=" + std::to_string(in_.size()) +
                  " obl=0 oll=" + std::to_string(pending_.size()) +
                  " omem=" + std::to_string(conn_->pending_output_bytes()) + " resp=" + std::to_string(writer_.resp()) +
                  " lib-name=" + lib_name_ + " lib-ver=" + lib_ver_ + " cmd=" + std::string(last_command_) +
                  " user=default shard=" + std::to_string(home_.id) + "\n";
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
  last_active_ms_ = SystemClock::instance().wall_ms();
  if (in_.size() + data.size() > server_.config().client_query_buffer_limit_bytes) {
    TALLY_LOG_WARN("closing client {}: query buffer over {} bytes", c.peer(),
                   server_.config().client_query_buffer_limit_bytes);
    c.close_now();
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
  while (!closed_ && !close_after_reply_ && pos < input.size()) {
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
      flush_remote_batch();
      CommandCounters::bump(home_.metrics->protocol_errors);
      writer_.set_buffer(reply_target());
      writer_.error(parser_.error());
      writer_.set_buffer(conn_->out());
      close_after_reply_ = true;
      pos = input.size();
      break;
    }
    const size_t consumed = parser_.consumed();
    // Inline arguments may live in the parser's scratch space: run the command before reset().
    if (!cmd_.argv.empty()) execute(cmd_.argv);
    parser_.reset();
    pos += consumed;
  }
  flush_remote_batch();
  if (close_after_reply_ && pending_.empty() && !closed_) conn_->close_after_flush();
  return pos;
}

std::string& Session::reply_target() {
  if (reply_mode_ != ReplyMode::kOn) {
    scratch_.clear();
    if (reply_mode_ == ReplyMode::kSkip) reply_mode_ = ReplyMode::kOn;
    return scratch_;
  }
  if (pending_.empty()) return conn_->out();
  if (pending_.back().done) return pending_.back().bytes;
  pending_.push_back(Pending{{}, true});
  return pending_.back().bytes;
}

uint64_t Session::reserve_reply() {
  pending_.push_back(Pending{});
  return pending_base_ + pending_.size() - 1;
}

void Session::complete_reply(uint64_t seq, std::string_view bytes) {
  TALLY_ASSERT(seq >= pending_base_);
  TALLY_ASSERT(seq - pending_base_ < pending_.size());
  Pending& p = pending_[seq - pending_base_];
  TALLY_ASSERT(!p.done);
  p.bytes.assign(bytes);
  p.done = true;
  flush_completed();
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
  if (e == nullptr) {
    flush_remote_batch();
    proto::ReplyWriter w(reply_target(), writer_.resp());
    if (!authenticated_) {
      w.error("NOAUTH Authentication required.");
    } else {
      w.error(unknown_command_text(argv));
    }
    return true;
  }
  last_command_ = e->name;
  if (!authenticated_ && !(e->flags & kCmdNoAuth)) {
    flush_remote_batch();
    CommandCounters::bump(home_.metrics->per_command[e->index].rejected);
    proto::ReplyWriter w(reply_target(), writer_.resp());
    w.error("NOAUTH Authentication required.");
    return true;
  }
  if (!CommandTable::arity_ok(*e, argv.size())) {
    flush_remote_batch();
    CommandCounters::bump(home_.metrics->per_command[e->index].rejected);
    proto::ReplyWriter w(reply_target(), writer_.resp());
    w.error("ERR wrong number of arguments for '" + lower(argv[0]) + "' command");
    return true;
  }
  if (e->session != nullptr) {
    flush_remote_batch();
    const uint64_t t0 = now_ns();
    std::string& target = reply_target();
    const size_t before = target.size();
    writer_.set_buffer(target);
    e->session(*this, argv);
    writer_.set_buffer(conn_->out());
    const bool error = target.size() > before && target[before] == '-';
    home_.metrics->per_command[e->index].record(now_ns() - t0, error);
    CommandCounters::bump(home_.metrics->commands_processed);
    return true;
  }
  execute_data(*e, argv);
  return true;
}

void Session::execute_data(const CommandEntry& e, std::span<const std::string_view> argv) {
  CommandTable::key_positions(e, argv, key_pos_);
  uint32_t target = home_.id;
  bool multi = false;
  key_shards_.clear();
  if (!key_pos_.empty()) {
    key_views_.clear();
    for (size_t p : key_pos_) key_views_.push_back(argv[p]);
    server_.shards_of_keys(home_, key_views_, key_shards_);
    target = key_shards_[0];
    for (uint32_t s : key_shards_) multi |= s != target;
  }
  if (multi || (key_pos_.empty() && server_.shard_count() > 1)) {
    flush_remote_batch();
    execute_multi_shard(e, argv, key_shards_);
    return;
  }
  if (target == home_.id) {
    flush_remote_batch();
    proto::ReplyWriter w(reply_target(), writer_.resp());
    run_data_command(home_, e, argv, w);
    return;
  }
  if (batch_.shard != target) {
    flush_remote_batch();
    batch_.shard = target;
  }
  for (std::string_view a : argv) {
    batch_.blob.append(a);
    batch_.arg_lens.push_back(static_cast<uint32_t>(a.size()));
  }
  batch_.argc.push_back(static_cast<uint32_t>(argv.size()));
  batch_.entries.push_back(&e);
}

void Session::flush_remote_batch() {
  if (batch_.shard == UINT32_MAX) return;
  const uint32_t target = batch_.shard;
  const uint64_t seq = reserve_reply();
  const bool discard = reply_mode_ != ReplyMode::kOn;
  if (reply_mode_ == ReplyMode::kSkip) reply_mode_ = ReplyMode::kOn;
  const int resp = writer_.resp();
  Shard* home = &home_;
  Shard* remote = &server_.shard(target);
  const uint64_t conn_id = conn_id_;
  CommandCounters::bump(home_.metrics->remote_batches);
  remote->reactor->post([home, remote, conn_id, seq, discard, resp, b = std::move(batch_)]() mutable {
    std::string reply;
    proto::ReplyWriter w(reply, resp);
    std::vector<std::string_view> argv;
    size_t arg = 0, off = 0;
    for (size_t c = 0; c < b.argc.size(); ++c) {
      argv.clear();
      for (uint32_t i = 0; i < b.argc[c]; ++i, ++arg) {
        argv.emplace_back(b.blob.data() + off, b.arg_lens[arg]);
        off += b.arg_lens[arg];
      }
      run_data_command(*remote, *b.entries[c], argv, w);
    }
    if (discard) reply.clear();
    home->reactor->post([home, conn_id, seq, r = std::move(reply)] {
      if (Session* s = Session::lookup(*home, conn_id)) s->complete_reply(seq, r);
    });
  });
  batch_ = RemoteBatch{};
}

}  // namespace tally::server
