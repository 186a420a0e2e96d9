#include "host/server/memcache_session.h"

#include <charconv>
#include <memory>
#include <unistd.h>

#include "host/common/clock.h"
#include "host/common/log.h"
#include "host/server/info.h"
#include "host/server/server.h"
#include "host/server/store_glue.h"

namespace tally::server {

namespace {

using proto::McOp;
using proto::McRequest;

// memcached reads an exptime up to 30 days as relative seconds, anything larger as a Unix time.
constexpr int64_t kRelativeExptimeMaxS = 60 * 60 * 24 * 30;

// 0: no expiry; otherwise the absolute wall time in ms (in the past when the item is already dead).
uint64_t expire_at_ms(int64_t exptime, uint64_t now_ms) {
  if (exptime == 0) return 0;
  if (exptime < 0) return 1;
  if (exptime <= kRelativeExptimeMaxS) return now_ms + static_cast<uint64_t>(exptime) * 1000;
  return static_cast<uint64_t>(exptime) * 1000;
}

bool is_write(McOp op) {
  switch (op) {
    case McOp::kSet: case McOp::kAdd: case McOp::kReplace: case McOp::kAppend: case McOp::kPrepend:
    case McOp::kCas: case McOp::kIncr: case McOp::kDecr: case McOp::kMetaSet: case McOp::kMetaArithmetic:
      return true;
    default:
      return false;
  }
}

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_i64(std::string_view s, int64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

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

// A live string entry for `key`, or nullptr (other types are invisible to memcached).
store::Entry* find_string(store::Store& st, std::string_view key, uint64_t now_ms,
                          store::Access access = store::Access::kRead) {
  store::Entry* e = st.lookup(key, now_ms, access);
  if (e == nullptr || e->type() != store::ValueType::kString) return nullptr;
  return e;
}

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, p);
}

void append_value(std::string& out, const store::Entry& e, bool with_cas) {
  out.append("VALUE ");
  out.append(e.key());
  out.push_back(' ');
  append_u64(out, e.client_flags());
  out.push_back(' ');
  append_u64(out, e.value_bytes());
  if (with_cas) {
    out.push_back(' ');
    append_u64(out, e.cas());
  }
  out.append("\r\n");
  out.append(e.string_value());
  out.append("\r\n");
}

// Meta return flags shared by mg, ms, md and ma.
void append_meta_flags(std::string& out, const McRequest& req, const store::Entry* e, uint64_t now_ms) {
  for (const auto& f : req.meta_flags) {
    switch (f.flag) {
      case 'O':
        out.append(" O");
        out.append(f.token);
        break;
      case 'k':
        if (e != nullptr) {
          out.append(" k");
          out.append(e->key());
        }
        break;
      case 'b':
        out.append(" b");
        break;
      case 'c':
        if (e != nullptr) {
          out.append(" c");
          append_u64(out, e->cas());
        }
        break;
      case 'f':
        if (e != nullptr) {
          out.append(" f");
          append_u64(out, e->client_flags());
        }
        break;
      case 's':
        if (e != nullptr) {
          out.append(" s");
          append_u64(out, e->value_bytes());
        }
        break;
      case 't':
        if (e != nullptr) {
          out.append(" t");
          if (!e->has_expire()) {
            out.append("-1");
          } else {
            append_u64(out, e->expire_at_ms() > now_ms ? (e->expire_at_ms() - now_ms + 999) / 1000 : 0);
          }
        }
        break;
      default:
        break;
    }
  }
  out.append("\r\n");
}

void run_storage(store::Store& st, const McRequest& req, std::string_view key, uint64_t now_ms, std::string& out) {
  store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
  const uint64_t exp = expire_at_ms(req.exptime, now_ms);
  const char* reply = "STORED\r\n";
  switch (req.op) {
    case McOp::kSet:
      st.set_string(key, req.value, exp, false, req.client_flags);
      break;
    case McOp::kAdd:
      if (e != nullptr) {
        reply = "NOT_STORED\r\n";
      } else {
        st.set_string(key, req.value, exp, false, req.client_flags);
      }
      break;
    case McOp::kReplace:
      if (e == nullptr) {
        reply = "NOT_STORED\r\n";
      } else {
        st.set_string(key, req.value, exp, false, req.client_flags);
      }
      break;
    case McOp::kAppend:
    case McOp::kPrepend:
      if (e == nullptr) {
        reply = "NOT_STORED\r\n";
      } else {
        std::string v = req.op == McOp::kAppend ? std::string(e->string_value()) + std::string(req.value)
                                                : std::string(req.value) + std::string(e->string_value());
        st.set_string(key, v, 0, true, e->client_flags());
      }
      break;
    case McOp::kCas:
      if (e == nullptr) {
        reply = "NOT_FOUND\r\n";
      } else if (e->cas() != req.cas_unique) {
        reply = "EXISTS\r\n";
      } else {
        st.set_string(key, req.value, exp, false, req.client_flags);
      }
      break;
    default:
      TALLY_UNREACHABLE();
  }
  out.append(reply);
}

// incr/decr: memcached's unsigned 64-bit arithmetic (incr wraps, decr stops at 0).
// Returns false with `err` set when the value is not a number.
bool arith(store::Store& st, store::Entry* e, bool incr, uint64_t delta, uint64_t& result, const char*& err) {
  uint64_t cur = 0;
  if (!parse_u64(e->string_value(), cur)) {
    err = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    return false;
  }
  result = incr ? cur + delta : (delta > cur ? 0 : cur - delta);
  char buf[24];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, result);
  st.set_string(e->key(), std::string_view(buf, static_cast<size_t>(p - buf)), 0, true, e->client_flags());
  return true;
}

void run_meta_get(store::Store& st, const McRequest& req, std::string_view key, uint64_t now_ms, std::string& out) {
  store::Entry* e = find_string(st, key, now_ms);
  if (e == nullptr) {
    if (!req.quiet) out.append("EN\r\n");
    return;
  }
  if (const auto* t = req.find_flag('T')) {
    int64_t ttl = 0;
    if (parse_i64(t->token, ttl)) {
      uint64_t exp = expire_at_ms(ttl, now_ms);
      e = exp == 0 ? st.persist(e) : st.set_expire(e, exp);
    }
  }
  const bool want_value = req.find_flag('v') != nullptr;
  if (want_value) {
    out.append("VA ");
    append_u64(out, e->value_bytes());
  } else {
    if (req.quiet) return;  // a hit with nothing to return is the common case mg q suppresses
    out.append("HD");
  }
  append_meta_flags(out, req, e, now_ms);
  if (want_value) {
    out.append(e->string_value());
    out.append("\r\n");
  }
}

void run_meta_set(store::Store& st, const McRequest& req, std::string_view key, uint64_t now_ms, std::string& out) {
  store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
  uint32_t flags = 0;
  int64_t ttl = 0;
  uint64_t cas = 0;
  char mode = 'S';
  if (const auto* f = req.find_flag('F')) {
    uint64_t v = 0;
    if (!parse_u64(f->token, v) || v > UINT32_MAX) {
      out.append("CLIENT_ERROR bad token in command line format\r\n");
      return;
    }
    flags = static_cast<uint32_t>(v);
  }
  if (const auto* t = req.find_flag('T')) parse_i64(t->token, ttl);
  const bool cas_check = req.find_flag('C') != nullptr;
  if (cas_check) parse_u64(req.find_flag('C')->token, cas);
  if (const auto* m = req.find_flag('M')) mode = m->token.empty() ? 'S' : static_cast<char>(std::toupper(m->token[0]));
  const uint64_t exp = expire_at_ms(ttl, now_ms);
  const char* code = "HD";
  if (cas_check && e == nullptr) {
    code = "NF";
  } else if (cas_check && e->cas() != cas) {
    code = "EX";
  } else {
    switch (mode) {
      case 'S':
        e = st.set_string(key, req.value, exp, false, flags);
        break;
      case 'E':  // add
        if (e != nullptr) {
          code = "NS";
        } else {
          e = st.set_string(key, req.value, exp, false, flags);
        }
        break;
      case 'R':
        if (e == nullptr) {
          code = "NS";
        } else {
          e = st.set_string(key, req.value, exp, false, flags);
        }
        break;
      case 'A':
      case 'P':
        if (e == nullptr) {
          code = "NS";
        } else {
          std::string v = mode == 'A' ? std::string(e->string_value()) + std::string(req.value)
                                      : std::string(req.value) + std::string(e->string_value());
          e = st.set_string(key, v, 0, true, e->client_flags());
        }
        break;
      default:
        out.append("CLIENT_ERROR invalid mode for ms\r\n");
        return;
    }
  }
  if (req.quiet && code[0] == 'H') return;
  out.append(code);
  append_meta_flags(out, req, code[0] == 'H' ? e : nullptr, now_ms);
}

void run_meta_delete(store::Store& st, const McRequest& req, std::string_view key, uint64_t now_ms,
                     std::string& out) {
  store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
  const char* code = "HD";
  if (e == nullptr) {
    code = "NF";
  } else if (const auto* c = req.find_flag('C'); c != nullptr) {
    uint64_t cas = 0;
    if (!parse_u64(c->token, cas) || cas != e->cas()) code = "EX";
  }
  if (code[0] == 'H') st.erase(e);
  if (req.quiet && code[0] != 'E') return;
  out.append(code);
  append_meta_flags(out, req, nullptr, now_ms);
}

void run_meta_arith(store::Store& st, const McRequest& req, std::string_view key, uint64_t now_ms,
                    std::string& out) {
  store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
  uint64_t delta = 1, initial = 0;
  bool incr = true;
  if (const auto* d = req.find_flag('D'); d != nullptr && !parse_u64(d->token, delta)) {
    out.append("CLIENT_ERROR bad token in command line format\r\n");
    return;
  }
  if (const auto* m = req.find_flag('M'); m != nullptr && !m->token.empty()) {
    char c = static_cast<char>(std::toupper(m->token[0]));
    incr = !(c == 'D' || c == '-');
  }
  if (const auto* j = req.find_flag('J')) parse_u64(j->token, initial);
  uint64_t result = 0;
  if (e == nullptr) {
    const auto* n = req.find_flag('N');
    if (n == nullptr) {
      out.append("NF\r\n");
      return;
    }
    int64_t ttl = 0;
    parse_i64(n->token, ttl);
    result = initial;
    std::string v = std::to_string(initial);
    e = st.set_string(key, v, expire_at_ms(ttl, now_ms), false, 0);
  } else {
    const char* err = nullptr;
    if (!arith(st, e, incr, delta, result, err)) {
      out.append(err);
      return;
    }
    e = find_string(st, key, now_ms, store::Access::kPeek);
  }
  const bool want_value = req.find_flag('v') != nullptr;
  if (want_value) {
    std::string v = std::to_string(result);
    out.append("VA ");
    append_u64(out, v.size());
    append_meta_flags(out, req, e, now_ms);
    out.append(v);
    out.append("\r\n");
  } else if (!req.quiet) {
    out.append("HD");
    append_meta_flags(out, req, e, now_ms);
  }
}

}  // namespace

void run_memcache_request(Shard& shard, const McRequest& req, std::string& out) {
  store::Store& st = *shard.store;
  const uint64_t now_ms = SystemClock::instance().wall_ms();
  std::string decoded;
  std::string_view key = req.key();
  if (req.key_base64) {
    if (!base64_decode(key, decoded)) {
      out.append("CLIENT_ERROR bad data chunk\r\n");
      return;
    }
    key = decoded;
  }
  if (is_write(req.op) && !store_admit_write(st, now_ms)) {
    out.append("SERVER_ERROR out of memory storing object\r\n");
    return;
  }
  const size_t before = out.size();
  switch (req.op) {
    case McOp::kGet:
    case McOp::kGets:
    case McOp::kGat:
    case McOp::kGats: {
      const bool with_cas = req.op == McOp::kGets || req.op == McOp::kGats;
      const bool touch = req.op == McOp::kGat || req.op == McOp::kGats;
      for (std::string_view k : req.keys) {
        store::Entry* e = find_string(st, k, now_ms);
        if (e == nullptr) continue;
        if (touch) {
          uint64_t exp = expire_at_ms(req.exptime, now_ms);
          e = exp == 0 ? st.persist(e) : st.set_expire(e, exp);
        }
        append_value(out, *e, with_cas);
      }
      break;  // the caller appends END once for all shards
    }
    case McOp::kSet:
    case McOp::kAdd:
    case McOp::kReplace:
    case McOp::kAppend:
    case McOp::kPrepend:
    case McOp::kCas:
      run_storage(st, req, key, now_ms, out);
      break;
    case McOp::kDelete:
      out.append(st.erase(key, now_ms) ? "DELETED\r\n" : "NOT_FOUND\r\n");
      break;
    case McOp::kIncr:
    case McOp::kDecr: {
      store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
      if (e == nullptr) {
        out.append("NOT_FOUND\r\n");
        break;
      }
      uint64_t result = 0;
      const char* err = nullptr;
      if (!arith(st, e, req.op == McOp::kIncr, req.delta, result, err)) {
        out.append(err);
      } else {
        append_u64(out, result);
        out.append("\r\n");
      }
      break;
    }
    case McOp::kTouch: {
      store::Entry* e = find_string(st, key, now_ms, store::Access::kWrite);
      if (e == nullptr) {
        out.append("NOT_FOUND\r\n");
      } else {
        uint64_t exp = expire_at_ms(req.exptime, now_ms);
        if (exp == 0) {
          st.persist(e);
        } else {
          st.set_expire(e, exp);
        }
        out.append("TOUCHED\r\n");
      }
      break;
    }
    case McOp::kMetaGet:
      run_meta_get(st, req, key, now_ms, out);
      break;
    case McOp::kMetaSet:
      run_meta_set(st, req, key, now_ms, out);
      break;
    case McOp::kMetaDelete:
      run_meta_delete(st, req, key, now_ms, out);
      break;
    case McOp::kMetaArithmetic:
      run_meta_arith(st, req, key, now_ms, out);
      break;
    case McOp::kFlushAll:
      st.flush();
      out.append("OK\r\n");
      break;
    default:
      TALLY_UNREACHABLE();
  }
  if (req.noreply) out.resize(before);
}

MemcacheSession::MemcacheSession(Server& server, Shard& home, net::Conn& conn)
    : server_(server),
      home_(home),
      conn_(&conn),
      conn_id_(conn.id()),
      parser_(proto::McLimits{.max_value_bytes = server.config().memcached_item_max_bytes}),
      authenticated_(server.requirepass().empty()) {
  home_.metrics->connection_opened();
}

MemcacheSession::~MemcacheSession() = default;

MemcacheSession* MemcacheSession::lookup(Shard& home, uint64_t conn_id) {
  net::Conn* c = home.reactor->find(conn_id);
  return c == nullptr ? nullptr : static_cast<MemcacheSession*>(c->handler());
}

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
  if (!waiting_) process_input();
}

void MemcacheSession::process_input() {
  size_t pos = 0;
  while (!closed_ && !waiting_ && pos < in_.size()) {
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
        conn_->out().append(parser_.error());
        conn_->out().append("\r\n");
      }
      pos += consumed;
      if (parser_.error_closes()) {
        conn_->close_after_flush();
        pos = in_.size();
        break;
      }
      continue;
    }
    std::string_view raw = view.substr(0, consumed);
    bool done = handle(req_, raw);
    pos += consumed;
    if (!done) break;
  }
  if (pos >= in_.size()) {
    in_.clear();
  } else if (pos > 0) {
    in_.erase(0, pos);
  }
}

bool MemcacheSession::handle(const McRequest& req, std::string_view raw) {
  std::string& out = conn_->out();
  if (!authenticated_) {
    // memcached's text-protocol authentication: a first "set" whose data is "username password".
    if (req.op == McOp::kSet) {
      std::string_view v = req.value;
      size_t sp = v.find(' ');
      if (sp != std::string_view::npos && v.substr(sp + 1) == server_.requirepass()) {
        authenticated_ = true;
        out.append("STORED\r\n");
      } else {
        out.append("CLIENT_ERROR authentication failure\r\n");
      }
    } else if (req.op == McOp::kQuit) {
      conn_->close_after_flush();
    } else {
      out.append("CLIENT_ERROR unauthenticated\r\n");
    }
    return true;
  }
  CommandCounters::bump(home_.metrics->commands_processed);
  switch (req.op) {
    case McOp::kVersion:
      out.append("VERSION 1.6.18 tally-");
      out.append(kTallyVersion);
      out.append("\r\n");
      return true;
    case McOp::kQuit:
      conn_->close_after_flush();
      closed_ = true;
      return true;
    case McOp::kVerbosity:
      if (!req.noreply) out.append("OK\r\n");
      return true;
    case McOp::kMetaNoop:
      out.append("MN\r\n");
      return true;
    case McOp::kStats: {
      const uint64_t now = SystemClock::instance().wall_ms();
      auto stat = [&out](const char* k, uint64_t v) {
        out.append("STAT ");
        out.append(k);
        out.push_back(' ');
        append_u64(out, v);
        out.append("\r\n");
      };
      stat("pid", static_cast<uint64_t>(getpid()));
      stat("uptime", (now - server_.start_time_ms()) / 1000);
      stat("time", now / 1000);
      out.append("STAT version 1.6.18 tally-");
      out.append(kTallyVersion);
      out.append("\r\n");
      stat("pointer_size", 64);
      stat("curr_connections", server_.published(&ShardMetrics::connected));
      stat("total_connections", server_.published(&ShardMetrics::connections_received));
      stat("curr_items", server_.published(&ShardMetrics::keys));
      stat("bytes", server_.published(&ShardMetrics::used_memory_bytes));
      stat("get_hits", server_.published(&ShardMetrics::keyspace_hits));
      stat("get_misses", server_.published(&ShardMetrics::keyspace_misses));
      stat("evictions", server_.published(&ShardMetrics::evicted_keys));
      stat("limit_maxbytes", server_.config_snapshot().maxmemory_bytes);
      stat("threads", server_.shard_count());
      out.append("END\r\n");
      return true;
    }
    default:
      break;
  }

  const bool retrieval = req.op == McOp::kGet || req.op == McOp::kGets || req.op == McOp::kGat ||
                         req.op == McOp::kGats;
  const bool all_shards = req.op == McOp::kFlushAll;
  uint32_t target = home_.id;
  bool several = all_shards && server_.shard_count() > 1;
  if (!all_shards && !req.keys.empty() && !req.key_base64) {
    server_.shards_of_keys(home_, req.keys, key_shards_);
    target = key_shards_[0];
    for (uint32_t s : key_shards_) several |= s != target;
  } else if (req.key_base64) {
    std::string decoded;
    base64_decode(req.key(), decoded);
    target = server_.shard_of_key(decoded);
  }
  if (!several && target == home_.id) {
    run_memcache_request(home_, req, out);
    if (retrieval) out.append("END\r\n");
    return true;
  }
  // Away on other shards: each re-parses its copy of the request (or of its own keys' part). The
  // consumed bytes can begin with the tail of a rejected data block: the request starts at the line
  // holding its first key (or, keyless, at the last line).
  {
    size_t anchor = req.keys.empty() ? raw.size() - 1 : static_cast<size_t>(req.keys[0].data() - raw.data());
    size_t nl = anchor == 0 ? std::string_view::npos : raw.rfind('\n', anchor - 1);
    if (nl != std::string_view::npos) raw.remove_prefix(nl + 1);
  }
  waiting_ = true;
  auto parts = std::make_shared<std::vector<std::string>>(server_.shard_count());
  if (several && retrieval) {
    // "<cmd> [exptime] key...": keep the words before the keys, give each shard its own keys.
    std::string_view line = raw.substr(0, raw.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view head = line.substr(0, static_cast<size_t>(req.keys[0].data() - raw.data()));
    for (size_t i = 0; i < req.keys.size(); ++i) {
      const std::string_view k = req.keys[i];
      auto& p = (*parts)[key_shards_[i]];
      if (p.empty()) p.append(head);
      p.append(k);
      p.push_back(' ');
    }
    for (auto& p : *parts) {
      if (!p.empty()) {
        p.pop_back();
        p.append("\r\n");
      }
    }
  } else if (several) {
    for (auto& p : *parts) p.assign(raw);
  } else {
    (*parts)[target].assign(raw);
  }
  Shard* home = &home_;
  const uint64_t conn_id = conn_id_;
  const uint64_t item_max = server_.config().memcached_item_max_bytes;
  server_.fan_out<std::string>(
      home_.id,
      [parts, item_max](Shard& s) -> std::string {
        const std::string& text = (*parts)[s.id];
        if (text.empty()) return {};
        proto::McParser p(proto::McLimits{.max_value_bytes = item_max});
        McRequest r;
        std::string out;
        if (p.parse(text, r) != proto::ParseStatus::kOk) return "SERVER_ERROR internal re-parse failed\r\n";
        run_memcache_request(s, r, out);
        return out;
      },
      [home, conn_id] { return lookup(*home, conn_id) != nullptr; },
      [home, conn_id, retrieval, all_shards, noreply = req.noreply](std::vector<std::string>& replies) {
        std::string merged;
        if (all_shards) {
          merged = noreply ? "" : "OK\r\n";
        } else {
          for (const auto& r : replies) merged += r;
          if (retrieval) merged += "END\r\n";
        }
        if (MemcacheSession* s = lookup(*home, conn_id)) s->resume(merged);
      });
  return !waiting_;
}

void MemcacheSession::resume(std::string_view reply) {
  waiting_ = false;
  conn_->out().append(reply);
  process_input();
  // After the requests that waited behind this one have added their replies too: the reactor only
  // flushes output it was told about from outside on_data.
  if (!closed_) conn_->mark_output();
}

}  // namespace tally::server
