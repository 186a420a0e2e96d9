#include "host/server/memcache_session.h"

#include <charconv>
#include <memory>
#include <unistd.h>

#include "host/common/log.h"
#include "host/proto/memcache_writer.h"
#include "host/server/info.h"
#include "host/server/server.h"

namespace tally::server {

namespace {

using proto::McOp;
using proto::McRequest;
using proto::ReplyType;

// Room for the numbers and the decoded key a request's command carries (keys are at most 250 bytes).
constexpr size_t kArgBytesMax = 1024;

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool base64_decode(std::string_view in, std::string& out) {
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_i64(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}


// The fields of an item record (see memcache_commands.cc) starting at node `at`.
struct Record {
  bool present = false;
  uint32_t flags = 0;
  uint64_t cas = 0;
  int64_t ttl_s = -1;
  uint64_t size = 0;
  std::string_view value;
};

Record read_record(const proto::Reply& r, size_t at) {
  Record rec;
  if (at >= r.size() || r.node(at).type != ReplyType::kArray) return rec;
  TALLY_ASSERT(r.node(at).count == 5);
  rec.present = true;
  rec.flags = static_cast<uint32_t>(r.node(at + 1).integer);
  rec.cas = static_cast<uint64_t>(r.node(at + 2).integer);
  rec.ttl_s = r.node(at + 3).integer;
  rec.size = static_cast<uint64_t>(r.node(at + 4).integer);
  if (r.node(at + 5).type == ReplyType::kBulk) rec.value = r.text(at + 5);
  return rec;
}

// Meta return flags in request order, from the item's record (absent: only those that need no item).
void meta_flags(const McRequest& req, const Record& rec, std::string& out) {
  proto::McMetaFlags f;
  for (const auto& flag : req.meta_flags) {
    switch (flag.flag) {
      case 'O': f.add('O', flag.token); break;
      case 'b': f.add('b'); break;
      case 'k': if (rec.present) f.add('k', req.key()); break;
      case 'c': if (rec.present) f.add('c', rec.cas); break;
      case 'f': if (rec.present) f.add('f', rec.flags); break;
      case 's': if (rec.present) f.add('s', rec.size); break;
      case 't': if (rec.present) f.add_signed('t', rec.ttl_s); break;
      default: break;
    }
  }
  out.append(f.str());
  out.append("\r\n");
}

std::string_view meta_code(std::string_view status) {
  if (status == "STORED" || status == "DELETED" || status == "OK" || status == "TOUCHED") return "HD";
  if (status == "NOT_STORED") return "NS";
  if (status == "EXISTS") return "EX";
  return "NF";
}

bool is_string_node(const proto::Reply& r, size_t i) {
  if (i >= r.size()) return false;
  const ReplyType t = r.node(i).type;
  return t == ReplyType::kSimple || t == ReplyType::kBulk || t == ReplyType::kError || t == ReplyType::kVerbatim;
}

// An item record at `at` as read_record reads it: absent (not an array), or [flags cas ttl size value].
bool record_ok(const proto::Reply& r, size_t at) {
  if (at >= r.size() || r.node(at).type != ReplyType::kArray) return true;
  if (r.node(at).count != 5 || at + 5 >= r.size()) return false;
  for (size_t i = at + 1; i <= at + 4; ++i) {
    if (r.node(i).type != ReplyType::kInteger) return false;
  }
  return true;
}

// Whether `reply` has the shape render() reads for `req`. Replies built here always do; one that
// came from another member (a forwarded command) is checked, since a peer may lie.
bool well_shaped(const McRequest& req, const proto::Reply& reply) {
  if (reply.empty()) return false;
  if (reply.is_error()) return true;
  // Storage commands (set, add, replace, append, prepend, cas: adjacent in McOp) answer a status line.
  static_assert(static_cast<int>(McOp::kCas) - static_cast<int>(McOp::kSet) == 5);
  if (req.op >= McOp::kSet && req.op <= McOp::kCas) return is_string_node(reply, 1);
  switch (req.op) {
    case McOp::kGet:
    case McOp::kGets:
    case McOp::kGat:
    case McOp::kGats: {
      if (reply.node(0).type != ReplyType::kArray || reply.node(0).count != req.keys.size()) return false;
      for (size_t at = 1, k = 0; k < req.keys.size(); ++k, at = reply.skip(at)) {
        if (!record_ok(reply, at)) return false;
      }
      return true;
    }
    case McOp::kDelete:
    case McOp::kTouch:
    case McOp::kMetaDelete:
      return is_string_node(reply, 0);
    case McOp::kIncr:
    case McOp::kDecr:
    case McOp::kMetaArithmetic:
      return record_ok(reply, 2);
    case McOp::kMetaGet:
      return reply.node(0).type == ReplyType::kArray && reply.node(0).count == 1 && record_ok(reply, 1);
    case McOp::kMetaSet:
      return is_string_node(reply, 1) && record_ok(reply, 2);
    default:
      return true;
  }
}

void render(const McRequest& req, const proto::Reply& reply, std::string& out) {
  if (!well_shaped(req, reply)) {
    proto::mc_error(out, "SERVER_ERROR malformed reply from the cluster (the command's outcome is unknown)");
    return;
  }
  if (reply.is_error()) {
    const std::string_view text = reply.text(0);
    if (text.starts_with("OOM")) {
      // The store's out-of-memory refusal, in memcached's words.
      proto::mc_error(out, "SERVER_ERROR out of memory storing object");
    } else if (text.starts_with("CLIENT_ERROR") || text.starts_with("SERVER_ERROR") || text == "ERROR") {
      proto::mc_error(out, text);
    } else {
      // The server's own refusals (TRYAGAIN, CLUSTERDOWN, BUSY...) as a memcached client reads them.
      proto::mc_error(out, "SERVER_ERROR " + std::string(text));
    }
    return;
  }
  switch (req.op) {
    case McOp::kGet:
    case McOp::kGets:
    case McOp::kGat:
    case McOp::kGats: {
      const bool with_cas = req.op == McOp::kGets || req.op == McOp::kGats;
      TALLY_ASSERT(reply.node(0).type == ReplyType::kArray && reply.node(0).count == req.keys.size());
      size_t at = 1;
      for (std::string_view key : req.keys) {
        const Record rec = read_record(reply, at);
        if (rec.present) {
          if (with_cas) {
            proto::mc_value_cas(out, key, rec.flags, rec.value, rec.cas);
          } else {
            proto::mc_value(out, key, rec.flags, rec.value);
          }
        }
        at = reply.skip(at);
      }
      proto::mc_end(out);
      return;
    }
    case McOp::kSet:
    case McOp::kAdd:
    case McOp::kReplace:
    case McOp::kAppend:
    case McOp::kPrepend:
    case McOp::kCas:
      out.append(reply.text(1));
      out.append("\r\n");
      return;
    case McOp::kDelete:
    case McOp::kTouch:
      out.append(reply.text(0));
      out.append("\r\n");
      return;
    case McOp::kIncr:
    case McOp::kDecr: {
      const Record rec = read_record(reply, 2);
      if (!rec.present) {
        proto::mc_status(out, proto::McStatus::kNotFound);
      } else {
        out.append(rec.value);
        out.append("\r\n");
      }
      return;
    }
    case McOp::kFlushAll:
      proto::mc_status(out, proto::McStatus::kOk);
      return;
    case McOp::kMetaGet: {
      TALLY_ASSERT(reply.node(0).type == ReplyType::kArray && reply.node(0).count == 1);
      const Record rec = read_record(reply, 1);
      if (!rec.present) {
        if (!req.quiet) out.append("EN\r\n");
        return;
      }
      if (req.find_flag('v') != nullptr) {
        out.append("VA ");
        out.append(std::to_string(rec.size));
        meta_flags(req, rec, out);
        out.append(rec.value);
        out.append("\r\n");
      } else if (!req.quiet) {  // a hit with nothing to return is the common case mg q suppresses
        out.append("HD");
        meta_flags(req, rec, out);
      }
      return;
    }
    case McOp::kMetaSet: {
      const std::string_view code = meta_code(reply.text(1));
      if (req.quiet && code == "HD") return;
      out.append(code);
      meta_flags(req, code == "HD" ? read_record(reply, 2) : Record{}, out);
      return;
    }
    case McOp::kMetaDelete: {
      const std::string_view code = meta_code(reply.text(0));
      if (req.quiet && code != "EX") return;
      out.append(code);
      meta_flags(req, Record{}, out);
      return;
    }
    case McOp::kMetaArithmetic: {
      const Record rec = read_record(reply, 2);
      if (!rec.present) {
        out.append("NF\r\n");
        return;
      }
      if (req.find_flag('v') != nullptr) {
        out.append("VA ");
        out.append(std::to_string(rec.value.size()));
        meta_flags(req, rec, out);
        out.append(rec.value);
        out.append("\r\n");
      } else if (!req.quiet) {
        out.append("HD");
        meta_flags(req, rec, out);
      }
      return;
    }
    default:
      break;
  }
  TALLY_UNREACHABLE();
}

// Copies the views of `req` that rendering reads (keys, meta flags) into `owned` and points them there.
void own_request(const McRequest& req, McRequest& copy, std::string& owned) {
  size_t bytes = 0;
  for (std::string_view k : req.keys) bytes += k.size();
  for (const auto& f : req.meta_flags) bytes += f.token.size();
  owned.clear();
  owned.reserve(bytes);
  auto keep = [&owned](std::string_view v) {
    const size_t at = owned.size();
    owned.append(v);
    return std::string_view(owned.data() + at, v.size());
  };
  copy.clear();
  copy.op = req.op;
  copy.noreply = req.noreply;
  copy.quiet = req.quiet;
  copy.key_base64 = req.key_base64;
  for (std::string_view k : req.keys) copy.keys.push_back(keep(k));
  for (const auto& f : req.meta_flags) copy.meta_flags.push_back(proto::McMetaFlag{f.flag, keep(f.token)});
  TALLY_ASSERT(owned.size() == bytes);  // no reallocation moved the views
}

}  // namespace

void render_memcache_reply(const McRequest& req, const proto::Reply& reply, std::string& out) {
  if (req.noreply) return;
  render(req, reply, out);
}

MemcacheSession::MemcacheSession(Server& server, Shard& home, net::Conn& conn)
    : server_(server),
      home_(home),
      conn_(&conn),
      conn_id_(conn.id()),
      parser_(proto::McLimits{.max_value_bytes = server.config().memcached_item_max_bytes}),
      engine_(server, home, *this, conn.id(), /*batch_remote=*/false, /*cluster_client=*/false),
      authenticated_(server.acl().default_open()) {
  args_.reserve(kArgBytesMax);
  home_.metrics->connection_opened();
}

MemcacheSession::~MemcacheSession() = default;

void MemcacheSession::on_close(net::Conn&) {
  closed_ = true;
  home_.metrics->connection_closed();
  delete this;
}

void MemcacheSession::on_data(net::Conn& c, std::string_view data) {
  CommandCounters::bump(home_.metrics->net_input_bytes, data.size());
  if (in_.size() + data.size() > server_.config().client_query_buffer_limit_bytes) {
    c.close_now();
    return;
  }
  in_.append(data);
  process_input();
}

void MemcacheSession::process_input() {
  size_t pos = 0;
  while (!closed_ && !blocked_ && pos < in_.size()) {
    if (pending_.size() >= server_.config().pipeline_inflight_max) {
      if (!paused_) {
        paused_ = true;
        conn_->pause_reading();
      }
      break;
    }
    std::string_view view(in_.data() + pos, in_.size() - pos);
    req_.clear();
    proto::ParseStatus st = parser_.parse(view, req_);
    const size_t consumed = parser_.consumed();
    if (st == proto::ParseStatus::kIncomplete) {
      pos += consumed;
      break;
    }
    if (st == proto::ParseStatus::kError) {
      CommandCounters::bump(home_.metrics->protocol_errors);
      if (!req_.noreply || parser_.error_closes()) {
        std::string text;
        proto::mc_error(text, parser_.error());
        emit(text);
      }
      pos += consumed;
      if (parser_.error_closes()) {
        conn_->close_after_flush();
        pos = in_.size();
        break;
      }
      continue;
    }
    if (!handle(req_)) {
      parser_.reset();
      break;  // held back: parsed again when the session resumes
    }
    pos += consumed;
  }
  engine_.flush();
  if (pos >= in_.size()) {
    in_.clear();
  } else if (pos > 0) {
    in_.erase(0, pos);
  }
}

void MemcacheSession::emit(std::string_view bytes) {
  if (bytes.empty()) return;
  if (pending_.empty()) {
    conn_->out().append(bytes);
    return;
  }
  if (!pending_.back().done) pending_.push_back(Pending{{}, true, {}, {}});
  pending_.back().bytes.append(bytes);
}

uint64_t MemcacheSession::reserve_reply() {
  TALLY_ASSERT(current_ != nullptr);
  pending_.emplace_back();
  own_request(*current_, pending_.back().req, pending_.back().owned);
  return pending_base_ + pending_.size() - 1;
}

void MemcacheSession::complete_reply(uint64_t seq, proto::Reply& reply) {
  TALLY_ASSERT(seq >= pending_base_ && seq - pending_base_ < pending_.size());
  Pending& p = pending_[seq - pending_base_];
  TALLY_ASSERT(!p.done);
  render_memcache_reply(p.req, reply, p.bytes);
  p.done = true;
  flush_completed();
}

void MemcacheSession::flush_completed() {
  bool wrote = false;
  while (!pending_.empty() && pending_.front().done) {
    conn_->out().append(pending_.front().bytes);
    pending_.pop_front();
    ++pending_base_;
    wrote = true;
  }
  if (wrote) conn_->mark_output();
  if (paused_ && pending_.size() < server_.config().pipeline_inflight_max) {
    paused_ = false;
    conn_->resume_reading();
    process_input();
    if (!closed_) conn_->mark_output();
  }
}

void MemcacheSession::resume_processing() {
  if (!blocked_ || closed_) return;
  blocked_ = false;
  process_input();
  if (!closed_) conn_->mark_output();
}

void MemcacheSession::stats(std::string& out) {
  const uint64_t now = server_.env().wall_ms();
  proto::mc_stat(out, "pid", static_cast<uint64_t>(getpid()));
  proto::mc_stat(out, "uptime", (now - server_.start_time_ms()) / 1000);
  proto::mc_stat(out, "time", now / 1000);
  proto::mc_stat(out, "version", std::string("1.6.18 tally-") + kTallyVersion);
  proto::mc_stat(out, "pointer_size", uint64_t{64});
  proto::mc_stat(out, "curr_connections", server_.published(&ShardMetrics::connected));
  proto::mc_stat(out, "total_connections", server_.published(&ShardMetrics::connections_received));
  proto::mc_stat(out, "curr_items", server_.published(&ShardMetrics::keys));
  proto::mc_stat(out, "bytes", server_.published(&ShardMetrics::used_memory_bytes));
  proto::mc_stat(out, "get_hits", server_.published(&ShardMetrics::keyspace_hits));
  proto::mc_stat(out, "get_misses", server_.published(&ShardMetrics::keyspace_misses));
  proto::mc_stat(out, "evictions", server_.published(&ShardMetrics::evicted_keys));
  proto::mc_stat(out, "limit_maxbytes", server_.config_snapshot().maxmemory_bytes);
  proto::mc_stat(out, "threads", server_.shard_count());
  proto::mc_end(out);
}

bool MemcacheSession::handle(const McRequest& req) {
  scratch_.clear();
  if (!authenticated_) {
    // memcached's text-protocol authentication: a first "set" whose data is "username password".
    if (req.op == McOp::kSet) {
      std::string_view v = req.value;
      // The user must be allowed everything: memcached requests are not checked command by command.
      size_t sp = v.find(' ');
      std::shared_ptr<const AclUser> u;
      if (sp != std::string_view::npos) u = server_.acl().authenticate(v.substr(0, sp), v.substr(sp + 1));
      if (u != nullptr && u->unrestricted()) {
        authenticated_ = true;
        emit("STORED\r\n");
      } else {
        server_.acl().counters().denied_auth.fetch_add(1, std::memory_order_relaxed);
        emit("CLIENT_ERROR authentication failure\r\n");
      }
    } else if (req.op == McOp::kQuit) {
      conn_->close_after_flush();
    } else {
      emit("CLIENT_ERROR unauthenticated\r\n");
    }
    return true;
  }
  switch (req.op) {
    case McOp::kVersion:
      CommandCounters::bump(home_.metrics->commands_processed);
      proto::mc_version(scratch_, std::string("1.6.18 tally-") + kTallyVersion);
      emit(scratch_);
      return true;
    case McOp::kQuit:
      conn_->close_after_flush();
      closed_ = true;
      return true;
    case McOp::kVerbosity:
      if (!req.noreply) emit("OK\r\n");
      return true;
    case McOp::kMetaNoop:
      emit("MN\r\n");
      return true;
    case McOp::kStats:
      CommandCounters::bump(home_.metrics->commands_processed);
      stats(scratch_);
      emit(scratch_);
      return true;
    default:
      break;
  }

  // The command this request means.
  args_.clear();
  // Appends without reallocating, so earlier views into args_ stay valid.
  auto keep = [this](std::string_view piece) {
    TALLY_ASSERT(args_.size() + piece.size() <= args_.capacity());
    const size_t at = args_.size();
    args_.append(piece);
    return std::string_view(args_.data() + at, piece.size());
  };
  auto number = [&keep](int64_t v) {
    char buf[24];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return keep(std::string_view(buf, static_cast<size_t>(p - buf)));
  };
  std::string_view key = req.key();
  if (req.key_base64) {
    std::string decoded;
    if (!base64_decode(key, decoded) || decoded.empty() || decoded.size() > 250) {
      if (!req.noreply) emit("CLIENT_ERROR bad data chunk\r\n");
      return true;
    }
    key = keep(decoded);
  }
  argv_.clear();
  auto cmd = [this](std::string_view name) { argv_.push_back(name); };
  switch (req.op) {
    case McOp::kGet:
    case McOp::kGets:
      cmd("mc.get");
      for (std::string_view k : req.keys) argv_.push_back(k);
      break;
    case McOp::kGat:
    case McOp::kGats:
      cmd("mc.gat");
      argv_.push_back(number(req.exptime));
      for (std::string_view k : req.keys) argv_.push_back(k);
      break;
    case McOp::kSet:
    case McOp::kAdd:
    case McOp::kReplace:
    case McOp::kAppend:
    case McOp::kPrepend:
    case McOp::kCas: {
      static constexpr std::string_view kModes[] = {"S", "E", "R", "A", "P", "S"};
      const size_t m = static_cast<size_t>(req.op) - static_cast<size_t>(McOp::kSet);
      cmd("mc.store");
      argv_.push_back(key);
      argv_.push_back(req.value);
      argv_.push_back(kModes[m]);
      argv_.push_back(number(req.client_flags));
      argv_.push_back(number(req.exptime));
      argv_.push_back(req.op == McOp::kCas ? keep(std::to_string(req.cas_unique)) : std::string_view());
      break;
    }
    case McOp::kDelete:
      cmd("mc.delete");
      argv_.push_back(key);
      break;
    case McOp::kIncr:
    case McOp::kDecr:
      cmd("mc.arith");
      argv_.push_back(key);
      argv_.push_back(req.op == McOp::kIncr ? "incr" : "decr");
      argv_.push_back(keep(std::to_string(req.delta)));
      break;
    case McOp::kTouch:
      cmd("mc.touch");
      argv_.push_back(key);
      argv_.push_back(number(req.exptime));
      break;
    case McOp::kFlushAll:
      cmd("flushall");
      break;
    case McOp::kMetaGet: {
      int64_t ttl = 0;
      const auto* t = req.find_flag('T');
      if (t != nullptr && parse_i64(t->token, ttl)) {
        cmd("mc.gat");
        argv_.push_back(number(ttl));
      } else {
        cmd("mc.get");
      }
      argv_.push_back(key);
      break;
    }
    case McOp::kMetaSet: {
      uint64_t flags = 0;
      if (const auto* f = req.find_flag('F'); f != nullptr && (!parse_u64(f->token, flags) || flags > UINT32_MAX)) {
        emit("CLIENT_ERROR bad token in command line format\r\n");
        return true;
      }
      int64_t ttl = 0;
      if (const auto* t = req.find_flag('T')) parse_i64(t->token, ttl);
      char mode = 'S';
      if (const auto* m = req.find_flag('M'); m != nullptr && !m->token.empty()) {
        mode = static_cast<char>(std::toupper(static_cast<unsigned char>(m->token[0])));
      }
      const auto* c = req.find_flag('C');
      cmd("mc.store");
      argv_.push_back(key);
      argv_.push_back(req.value);
      argv_.push_back(keep(std::string_view(&mode, 1)));
      argv_.push_back(number(static_cast<int64_t>(flags)));
      argv_.push_back(number(ttl));
      argv_.push_back(c != nullptr ? (c->token.empty() ? std::string_view("0") : c->token) : std::string_view());
      break;
    }
    case McOp::kMetaDelete: {
      cmd("mc.delete");
      argv_.push_back(key);
      if (const auto* c = req.find_flag('C')) argv_.push_back(c->token);
      break;
    }
    case McOp::kMetaArithmetic: {
      uint64_t delta = 1;
      if (const auto* d = req.find_flag('D'); d != nullptr && !parse_u64(d->token, delta)) {
        emit("CLIENT_ERROR bad token in command line format\r\n");
        return true;
      }
      bool incr = true;
      if (const auto* m = req.find_flag('M'); m != nullptr && !m->token.empty()) {
        const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(m->token[0])));
        incr = !(c == 'D' || c == '-');
      }
      cmd("mc.arith");
      argv_.push_back(key);
      argv_.push_back(incr ? "incr" : "decr");
      argv_.push_back(keep(std::to_string(delta)));
      if (const auto* n = req.find_flag('N')) {
        int64_t ttl = 0;
        parse_i64(n->token, ttl);
        uint64_t initial = 0;
        if (const auto* j = req.find_flag('J')) parse_u64(j->token, initial);
        argv_.push_back(number(ttl));
        argv_.push_back(keep(std::to_string(initial)));
      }
      break;
    }
    default:
      TALLY_UNREACHABLE();
  }
  const CommandEntry* e = CommandTable::instance().find(argv_[0]);
  TALLY_ASSERT(e != nullptr && e->data != nullptr && CommandTable::arity_ok(*e, argv_.size()));
  proto::Reply& r = home_.scratch;
  r.clear();
  current_ = &req;
  const CommandEngine::Outcome outcome = engine_.run(*e, argv_, r);
  current_ = nullptr;
  switch (outcome) {
    case CommandEngine::Outcome::kDone:
      render_memcache_reply(req, r, scratch_);
      emit(scratch_);
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
