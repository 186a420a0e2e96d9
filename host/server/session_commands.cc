// Connection, introspection and administration commands. Replies go through Session::out(), which the
// session points at the right place in its reply order before calling.
#include "host/server/session_commands.h"

#include "host/server/blocking.h"
#include "host/server/pubsub.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <csignal>
#include <memory>
#include <mutex>

#include "host/common/log.h"
#include "host/server/acl_commands.h"
#include "host/server/cluster_commands.h"
#include "host/server/commands/util.h"
#include "host/server/notify.h"
#include "host/server/cluster_node.h"
#include "host/server/digest.h"
#include "host/server/info.h"
#include "host/server/server.h"
#include "host/server/session.h"
#include "host/server/snapshots.h"
#include "host/proto/resp_parser.h"
#include "host/store/glob.h"

namespace tally::server {

namespace {

using Argv = std::span<const std::string_view>;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

void cmd_ping(Session& s, Argv argv) {
  if (argv.size() > 2) {
    s.out().error("ERR wrong number of arguments for 'ping' command");
  } else if (s.resp() == 2 && s.subscription_count() > 0) {
    s.out().array(2);  // subscribed mode (RESP2): as a message
    s.out().bulk("pong");
    s.out().bulk(argv.size() == 2 ? argv[1] : std::string_view());
  } else if (argv.size() == 2) {
    s.out().bulk(argv[1]);
  } else {
    s.out().simple("PONG");
  }
}

void cmd_echo(Session& s, Argv argv) { s.out().bulk(argv[1]); }

void cmd_quit(Session& s, Argv) {
  s.out().ok();
  s.close_after_reply();
}

void cmd_reset(Session& s, Argv) {
  s.reset_state();
  s.out().simple("RESET");
}

void cmd_select(Session& s, Argv argv) {
  int64_t db = 0;
  if (!proto::parse_strict_int64(argv[1], db)) {
    s.out().error("ERR value is not an integer or out of range");
  } else if (db != 0) {
    s.out().error("ERR DB index is out of range");
  } else {
    s.out().ok();
  }
}

// WAIT numreplicas timeout: a write is acknowledged only once its partition's log has it on a majority
// of the partition's replicas (docs/cluster.md), so there is nothing left to wait for: the answer is how
// many other replicas that majority guarantees (0 on a single node), at once.
void cmd_wait(Session& s, Argv argv) {
  int64_t replicas = 0, timeout = 0;
  if (!proto::parse_strict_int64(argv[1], replicas) || !proto::parse_strict_int64(argv[2], timeout)) {
    s.out().error("ERR value is not an integer or out of range");
    return;
  }
  if (timeout < 0) {
    s.out().error("ERR timeout is negative");
    return;
  }
  int64_t others = 0;
  if (const ClusterNode* cn = s.server().cluster_node(); cn != nullptr && cn->membership() != nullptr) {
    others = static_cast<int64_t>(cn->membership()->replicas / 2);
  }
  s.out().integer(others);
}

// A login (AUTH, HELLO AUTH) against the ACL users; replies with the error when it fails. Failed logins
// are counted, logged (ACL LOG) and limited per client address (auth-fail-burst, auth-fail-per-sec).
bool check_password(Session& s, std::string_view user, std::string_view pass, bool named) {
  AclRegistry& acl = s.server().acl();
  if (!named && acl.default_open()) {
    s.out().error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return false;
  }
  const uint64_t now = s.server().env().clock().monotonic_ns() / 1000000;
  std::string addr = s.conn().peer();
  if (size_t colon = addr.rfind(':'); colon != std::string::npos) addr.resize(colon);
  if (!acl.login_allowed(addr, now)) {
    s.out().error("ERR too many failed logins from this address; try again later");
    return false;
  }
  std::shared_ptr<const AclUser> u = acl.authenticate(user, pass);
  if (u == nullptr) {
    acl.login_failed(addr, now);
    acl.counters().denied_auth.fetch_add(1, std::memory_order_relaxed);
    s.log_acl_denial("auth", "auth", user);
    s.out().error("WRONGPASS invalid username-password pair or user is disabled.");
    return false;
  }
  s.login(std::move(u));
  return true;
}

void cmd_auth(Session& s, Argv argv) {
  if (argv.size() > 3) {
    s.out().error("ERR syntax error");
    return;
  }
  std::string_view user = argv.size() == 3 ? argv[1] : std::string_view("default");
  if (check_password(s, user, argv.back(), argv.size() == 3)) s.out().ok();
}

void cmd_hello(Session& s, Argv argv) {
  int64_t ver = s.resp();
  size_t i = 1;
  if (argv.size() >= 2) {
    if (!proto::parse_strict_int64(argv[1], ver)) {
      s.out().error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (ver != 2 && ver != 3) {
      s.out().error("NOPROTO unsupported protocol version");
      return;
    }
    i = 2;
  }
  std::string_view setname;
  bool has_setname = false;
  for (; i < argv.size(); ++i) {
    if (iequals(argv[i], "auth") && i + 2 < argv.size()) {
      if (!check_password(s, argv[i + 1], argv[i + 2], true)) return;
      i += 2;
    } else if (iequals(argv[i], "setname") && i + 1 < argv.size()) {
      setname = argv[++i];
      has_setname = true;
    } else {
      s.out().error("ERR Syntax error in HELLO option '" + std::string(argv[i]) + "'");
      return;
    }
  }
  if (!s.authenticated()) {
    s.out().error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> "
        "AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol "
        "version at the same time");
    return;
  }
  if (has_setname) s.set_name(std::string(setname));
  s.set_resp(static_cast<int>(ver));
  proto::Reply& w = s.out();
  w.map(7);
  w.bulk("server");
  w.bulk("tally");
  w.bulk("version");
  w.bulk(kRedisCompatVersion);
  w.bulk("proto");
  w.integer(ver);
  w.bulk("id");
  w.integer(static_cast<int64_t>(s.client_id()));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

void cmd_time(Session& s, Argv) {
  const Clock& clock = s.server().env().clock();
  // Microseconds from the wall clock's milliseconds and the monotonic clock's sub-millisecond part.
  const uint64_t us = clock.wall_ms() * 1000 + clock.monotonic_ns() / 1000 % 1000;
  s.out().array(2);
  s.out().bulk(std::to_string(us / 1000000));
  s.out().bulk(std::to_string(us % 1000000));
}

// ---- SAVE, BGSAVE, LASTSAVE: partition snapshots on every shard (host/server/snapshots.h) ----

bool persistence_on(Session& s) {
  if (s.server().durable()) return true;
  s.out().error("ERR persistence is off: start tallyd with --dir PATH (durability fsync or interval) to save");
  return false;
}

void cmd_save(Session& s, Argv) {
  if (!persistence_on(s)) return;
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  s.server().fan_out<std::string>(
      home->id,
      [](Shard& sh) {
        const Status st = sh.snapshots->save_now();
        return st.is_ok() ? std::string() : st.message();
      },
      s.alive_check(),
      [home, conn_id, seq](std::vector<std::string>& errors) {
        proto::Reply reply;
        std::string failed;
        for (const std::string& e : errors) {
          if (!e.empty()) failed = e;
        }
        if (failed.empty()) {
          reply.ok();
        } else {
          reply.error("ERR " + failed);
        }
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

void cmd_bgsave(Session& s, Argv argv) {
  if (argv.size() > 2 || (argv.size() == 2 && !iequals(argv[1], "schedule"))) {
    s.out().error("ERR syntax error");
    return;
  }
  if (!persistence_on(s)) return;
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  s.server().fan_out<int>(
      home->id, [](Shard& sh) { return sh.snapshots->start([](Status) {}) ? 1 : 0; }, s.alive_check(),
      [home, conn_id, seq](std::vector<int>& started) {
        proto::Reply reply;
        int n = 0;
        for (int x : started) n += x;
        if (n > 0) {
          reply.simple("Background saving started");
        } else {
          reply.error("ERR Background save already in progress");
        }
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

void cmd_lastsave(Session& s, Argv) {
  if (!s.server().durable()) {
    s.out().integer(static_cast<int64_t>(s.server().start_time_ms() / 1000));
    return;
  }
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  const uint64_t started_ms = s.server().start_time_ms();
  s.server().fan_out<uint64_t>(
      home->id, [](Shard& sh) { return sh.snapshots->last_save_ms(); }, s.alive_check(),
      [home, conn_id, seq, started_ms](std::vector<uint64_t>& times) {
        // The node's last save is complete only once every shard's is: the oldest one counts. A shard
        // that has not saved since the start counts as the start (what was loaded then).
        uint64_t oldest = UINT64_MAX;
        for (uint64_t t : times) oldest = std::min(oldest, t == 0 ? started_ms : t);
        proto::Reply reply;
        reply.integer(static_cast<int64_t>(oldest / 1000));
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

void cmd_function(Session& s, Argv argv) {
  if (iequals(argv[1], "flush")) {
    s.out().ok();
  } else {
    s.out().error("ERR unknown subcommand '" + std::string(argv[1]) + "'. Try FUNCTION HELP.");
  }
}

void cmd_shutdown(Session& s, Argv argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (!iequals(argv[i], "nosave") && !iequals(argv[i], "save") && !iequals(argv[i], "now") &&
        !iequals(argv[i], "force")) {
      s.out().error("ERR syntax error");
      return;
    }
  }
  TALLY_LOG_INFO("SHUTDOWN requested by client {}", s.conn().peer());
  s.close_after_reply();
  s.server().request_shutdown();
}

// ---- CLIENT ----

void cmd_client(Session& s, Argv argv) {
  std::string_view sub = argv[1];
  proto::Reply& w = s.out();
  if (iequals(sub, "id") && argv.size() == 2) {
    w.integer(static_cast<int64_t>(s.client_id()));
  } else if (iequals(sub, "setname") && argv.size() == 3) {
    for (char c : argv[2]) {
      if (c <= ' ' || c > '~') {
        w.error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
      }
    }
    s.set_name(std::string(argv[2]));
    w.ok();
  } else if (iequals(sub, "getname") && argv.size() == 2) {
    if (s.name().empty()) {
      w.null();
    } else {
      w.bulk(s.name());
    }
  } else if (iequals(sub, "setinfo") && argv.size() == 4) {
    std::string attr(argv[2]);
    std::transform(attr.begin(), attr.end(), attr.begin(), [](char c) { return std::tolower(c); });
    if (attr != "lib-name" && attr != "lib-ver") {
      w.error("ERR Unrecognized option '" + std::string(argv[2]) + "'");
      return;
    }
    s.set_lib(attr, argv[3]);
    w.ok();
  } else if (iequals(sub, "reply") && argv.size() == 3) {
    if (iequals(argv[2], "on")) {
      s.set_reply_mode(ReplyMode::kOn);
      w.ok();
    } else if (iequals(argv[2], "off")) {
      s.set_reply_mode(ReplyMode::kOff);
    } else if (iequals(argv[2], "skip")) {
      s.set_reply_mode(ReplyMode::kSkip);
    } else {
      w.error("ERR syntax error");
    }
  } else if (iequals(sub, "info") && argv.size() == 2) {
    w.verbatim(s.describe(s.server().env().wall_ms()));
  } else if (iequals(sub, "list")) {
    const uint64_t seq = s.reserve_reply();
    Shard* home = &s.home();
    const uint64_t conn_id = s.conn().id();
    s.server().fan_out<std::string>(
        home->id,
        [](Shard& sh) {
          std::string lines;
          const uint64_t now = sh.server->env().wall_ms();
          for (Session* x : sh.sessions) lines += x->describe(now);
          return lines;
        },
        s.alive_check(),
        [home, conn_id, seq](std::vector<std::string>& parts) {
          std::string all;
          for (auto& p : parts) all += p;
          proto::Reply reply;
          reply.verbatim(all);
          if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
        });
  } else if (iequals(sub, "kill") && argv.size() >= 3) {
    // CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [SKIPME yes|no]
    bool old_form = argv.size() == 3;
    uint64_t id = 0;
    std::string addr;
    bool skipme = true;
    if (old_form) {
      addr = std::string(argv[2]);
    } else {
      for (size_t i = 2; i + 1 < argv.size(); i += 2) {
        if (iequals(argv[i], "id")) {
          int64_t v = 0;
          if (!proto::parse_strict_int64(argv[i + 1], v) || v <= 0) {
            w.error("ERR client-id should be greater than 0");
            return;
          }
          id = static_cast<uint64_t>(v);
        } else if (iequals(argv[i], "addr")) {
          addr = std::string(argv[i + 1]);
        } else if (iequals(argv[i], "skipme")) {
          skipme = iequals(argv[i + 1], "yes");
        } else {
          w.error("ERR syntax error");
          return;
        }
      }
      if ((argv.size() - 2) % 2 != 0) {
        w.error("ERR syntax error");
        return;
      }
    }
    const uint64_t self = s.client_id();
    const uint64_t seq = s.reserve_reply();
    Shard* home = &s.home();
    const uint64_t conn_id = s.conn().id();
    s.server().fan_out<int64_t>(
        home->id,
        [id, addr, skipme, self](Shard& sh) -> int64_t {
          int64_t killed = 0;
          for (Session* x : sh.sessions) {
            if (id != 0 && x->client_id() != id) continue;
            if (!addr.empty() && x->conn().peer() != addr) continue;
            if (skipme && x->client_id() == self) continue;
            ++killed;
            // Closed from a task of its own so no session is destroyed while it runs a command.
            Shard* shp = &sh;
            uint64_t cid = x->conn().id();
            sh.reactor->post([shp, cid] {
              if (net::Conn* c = shp->reactor->find(cid)) c->close_after_flush();
            });
          }
          return killed;
        },
        s.alive_check(),
        [home, conn_id, seq, old_form](std::vector<int64_t>& counts) {
          int64_t total = 0;
          for (int64_t c : counts) total += c;
          proto::Reply reply;
          proto::Reply& rw = reply;
          if (old_form) {
            if (total == 0) {
              rw.error("ERR No such client");
            } else {
              rw.ok();
            }
          } else {
            rw.integer(total);
          }
          if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
        });
  } else if ((iequals(sub, "no-evict") || iequals(sub, "no-touch")) && argv.size() == 3) {
    w.ok();
  } else if (iequals(sub, "getredir")) {
    w.integer(-1);
  } else {
    w.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) + "'. Try CLIENT HELP.");
  }
}

// ---- COMMAND ----

void command_flags(proto::Reply& w, const CommandEntry& e) {
  std::vector<const char*> f;
  if (e.flags & kCmdWrite) f.push_back("write");
  if (e.flags & kCmdReadOnly) f.push_back("readonly");
  if (e.flags & kCmdDenyOom) f.push_back("denyoom");
  if (e.flags & kCmdAdmin) f.push_back("admin");
  if (e.flags & kCmdNoAuth) f.push_back("no_auth");
  if (e.flags & kCmdFast) f.push_back("fast");
  if (e.flags & kCmdLoading) f.push_back("loading");
  if (e.flags & kCmdStale) f.push_back("stale");
  if ((e.flags & kCmdBlockOption) || e.session == cmd_blocking) f.push_back("blocking");
  // Keys that follow a count in the arguments: clients ask COMMAND GETKEYS where they are.
  if (e.movable_keys()) f.push_back("movablekeys");
  w.set(f.size());
  for (const char* x : f) w.simple(x);
}

void command_info(proto::Reply& w, const CommandEntry& e) {
  w.array(10);
  w.bulk(e.name);
  w.integer(e.arity);
  command_flags(w, e);
  w.integer(e.first_key);
  w.integer(e.last_key);
  w.integer(e.key_step);
  w.set(0);
  w.set(0);
  w.array(0);
  w.array(0);
}

void cmd_command(Session& s, Argv argv) {
  const CommandTable& t = CommandTable::instance();
  proto::Reply& w = s.out();
  // Internal forms (what memcached requests become) are not Redis commands: COMMAND omits them.
  std::vector<const CommandEntry*> visible;
  for (const auto& e : t.all()) {
    if (!(e.flags & kCmdInternal)) visible.push_back(&e);
  }
  auto find_visible = [&t](std::string_view name) -> const CommandEntry* {
    const CommandEntry* e = t.find(name);
    return e != nullptr && !(e->flags & kCmdInternal) ? e : nullptr;
  };
  if (argv.size() == 1) {
    w.array(visible.size());
    for (const CommandEntry* e : visible) command_info(w, *e);
    return;
  }
  std::string_view sub = argv[1];
  if (iequals(sub, "count")) {
    w.integer(static_cast<int64_t>(visible.size()));
  } else if (iequals(sub, "list")) {
    w.array(visible.size());
    for (const CommandEntry* e : visible) w.bulk(e->name);
  } else if (iequals(sub, "info")) {
    if (argv.size() == 2) {
      w.array(visible.size());
      for (const CommandEntry* e : visible) command_info(w, *e);
      return;
    }
    w.array(argv.size() - 2);
    for (size_t i = 2; i < argv.size(); ++i) {
      if (const CommandEntry* e = find_visible(argv[i])) {
        command_info(w, *e);
      } else {
        w.null_array();
      }
    }
  } else if (iequals(sub, "docs")) {
    std::vector<const CommandEntry*> list;
    if (argv.size() == 2) {
      list = visible;
    } else {
      for (size_t i = 2; i < argv.size(); ++i) {
        if (const CommandEntry* e = find_visible(argv[i])) list.push_back(e);
      }
    }
    w.map(list.size());
    for (const CommandEntry* e : list) {
      w.bulk(e->name);
      w.map(4);
      w.bulk("summary");
      w.bulk(e->summary);
      w.bulk("since");
      w.bulk("1.0.0");
      w.bulk("group");
      w.bulk(e->group);
      w.bulk("arity");
      w.integer(e->arity);
    }
  } else if (iequals(sub, "getkeys") && argv.size() >= 3) {
    const CommandEntry* e = find_visible(argv[2]);
    if (e == nullptr) {
      w.error("ERR Invalid command specified");
      return;
    }
    Argv inner = argv.subspan(2);
    if (!CommandTable::arity_ok(*e, inner.size())) {
      w.error("ERR Invalid number of arguments specified for command");
      return;
    }
    std::vector<size_t> pos;
    CommandTable::key_positions(*e, inner, pos);
    if (pos.empty()) {
      w.error("ERR The command has no key arguments");
      return;
    }
    w.array(pos.size());
    for (size_t p : pos) w.bulk(inner[p]);
  } else {
    w.error("ERR unknown subcommand '" + std::string(sub) + "'. Try COMMAND HELP.");
  }
}

// ---- CONFIG ----

struct ConfigParam {
  const char* name;
  std::string (*get)(const Config&);
  // Applies a value; empty string on success, else the error text.
  std::string (*set)(Server&, std::string_view);
};

std::string set_maxmemory(Server& srv, std::string_view v) {
  auto r = parse_memory(v);
  if (!r) return "argument must be a memory value";
  srv.update_config([&](Config& c) { c.maxmemory_bytes = *r; });
  srv.apply_memory_config();
  return {};
}

std::string set_policy(Server& srv, std::string_view v) {
  std::string lower(v);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return std::tolower(c); });
  auto p = store::parse_policy(lower);
  if (!p) return "argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, "
                 "volatile-random, allkeys-random, volatile-ttl, noeviction";
  if (srv.cluster_node() != nullptr && *p != store::EvictionPolicy::kNoEviction) {
    return "a cluster member keeps noeviction for now (evictions are not replicated yet)";
  }
  srv.update_config([&](Config& c) { c.maxmemory_policy = *p; });
  srv.apply_memory_config();
  return {};
}

template <uint32_t Config::*Field, uint64_t Max>
std::string set_u32(Server& srv, std::string_view v) {
  int64_t x = 0;
  if (!proto::parse_strict_int64(v, x) || x < 0 || static_cast<uint64_t>(x) > Max) return "argument couldn't be parsed into an integer";
  srv.update_config([&](Config& c) { c.*Field = static_cast<uint32_t>(x); });
  return {};
}

// acllog-max-len, auth-fail-burst, auth-fail-per-sec: kept in the config and handed to the ACL registry.
template <uint32_t Config::*Field>
std::string set_acl_limits(Server& srv, std::string_view v) {
  std::string err = set_u32<Field, 1u << 20>(srv, v);
  if (!err.empty()) return err;
  const Config c = srv.config_snapshot();
  srv.acl().set_log_max(c.acllog_max_len);
  srv.acl().set_login_limit(c.auth_fail_burst, c.auth_fail_per_sec);
  return err;
}

std::string bool_text(bool b) { return b ? "yes" : "no"; }

template <Encoding E>
std::string get_encoding(const Config& c) {
  return std::to_string(c.encodings[static_cast<size_t>(E)]);
}

// Any integer for list-max-listpack-size (negative: a size class), otherwise not negative.
template <Encoding E>
std::string set_encoding(Server& srv, std::string_view v) {
  int64_t x = 0;
  if (!proto::parse_strict_int64(v, x) || (E != Encoding::kListSize && x < 0) ||
      (E == Encoding::kListSize && x < -5)) {
    return "argument couldn't be parsed into an integer";
  }
  srv.update_config([&](Config& c) { c.encodings[static_cast<size_t>(E)] = x; });
  cmd::encoding_threshold(static_cast<size_t>(E)).store(x, std::memory_order_relaxed);
  return {};
}

#define TALLY_ENCODING_PARAM(name, e) {name, get_encoding<Encoding::e>, set_encoding<Encoding::e>}

const ConfigParam kConfigParams[] = {
    {"maxmemory", [](const Config& c) { return std::to_string(c.maxmemory_bytes); }, set_maxmemory},
    {"maxmemory-policy", [](const Config& c) { return std::string(store::policy_name(c.maxmemory_policy)); },
     set_policy},
    {"requirepass", [](const Config& c) { return c.requirepass; },
     [](Server& srv, std::string_view v) {
       srv.update_config([&](Config& c) { c.requirepass = std::string(v); });
       srv.acl().set_default_password(v);
       return std::string();
     }},
    {"aclfile", [](const Config& c) { return c.aclfile; }, nullptr},
    {"tls-port", [](const Config& c) { return std::to_string(c.tls_port); }, nullptr},
    {"tls-cert-file", [](const Config& c) { return c.tls_cert_file; }, nullptr},
    {"tls-key-file", [](const Config& c) { return c.tls_key_file; }, nullptr},
    {"tls-ca-cert-file", [](const Config& c) { return c.tls_ca_cert_file; }, nullptr},
    {"tls-auth-clients", [](const Config& c) { return c.tls_auth_clients; }, nullptr},
    {"tls-cluster", [](const Config& c) { return bool_text(c.tls_cluster); }, nullptr},
    {"zone", [](const Config& c) { return c.zone; }, nullptr},
    {"rack", [](const Config& c) { return c.rack; }, nullptr},
    {"acllog-max-len", [](const Config& c) { return std::to_string(c.acllog_max_len); },
     set_acl_limits<&Config::acllog_max_len>},
    {"auth-fail-burst", [](const Config& c) { return std::to_string(c.auth_fail_burst); },
     set_acl_limits<&Config::auth_fail_burst>},
    {"auth-fail-per-sec", [](const Config& c) { return std::to_string(c.auth_fail_per_sec); },
     set_acl_limits<&Config::auth_fail_per_sec>},
    {"port", [](const Config& c) { return std::to_string(c.port); }, nullptr},
    {"bind", [](const Config& c) { return c.bind; }, nullptr},
    {"memcached-port", [](const Config& c) { return std::to_string(c.memcached_port); }, nullptr},
    {"admin-port", [](const Config& c) { return std::to_string(c.admin_port); }, nullptr},
    {"threads", [](const Config& c) { return std::to_string(c.threads); }, nullptr},
    {"io", [](const Config& c) { return c.io; }, nullptr},
    {"protected-mode", [](const Config& c) { return bool_text(c.protected_mode); }, nullptr},
    {"maxclients", [](const Config& c) { return std::to_string(c.maxclients); }, nullptr},
    {"timeout", [](const Config& c) { return std::to_string(c.timeout_s); }, set_u32<&Config::timeout_s, 1u << 30>},
    {"hz", [](const Config& c) { return std::to_string(c.hz); }, nullptr},  // the tick timer is set at start
    {"proto-max-bulk-len", [](const Config& c) { return std::to_string(c.proto_max_bulk_len); }, nullptr},
    {"client-query-buffer-limit", [](const Config& c) { return std::to_string(c.client_query_buffer_limit_bytes); },
     nullptr},
    {"loglevel", [](const Config& c) { return c.loglevel; },
     [](Server& srv, std::string_view v) {
       if (!log::set_level(v)) return std::string("argument(s) must be one of the following: debug, verbose, notice, warning");
       srv.update_config([&](Config& c) { c.loglevel = std::string(v); });
       return std::string();
     }},
    {"databases", [](const Config&) { return std::string("1"); }, nullptr},
    // Durability is chosen at start (--dir, --durability): reported in Redis's words, not changed at run time.
    // `save` (RDB save points) has no counterpart: snapshots follow the log's growth (snapshot_log_bytes).
    {"save", [](const Config&) { return std::string(); },
     [](Server&, std::string_view v) {
       return v.empty() ? std::string() : std::string("save points are not used: snapshots follow the log's growth");
     }},
    {"appendonly", [](const Config& c) { return std::string(c.durability == "none" || c.durability.empty() ? "no" : "yes"); },
     [](Server& srv, std::string_view v) {
       const bool on = srv.durable();
       return (v == "yes") == on ? std::string() : std::string("durability is set at start (--dir, --durability)");
     }},
    {"appendfsync",
     [](const Config& c) {
       return std::string(c.durability == "fsync" ? "always" : c.durability == "interval" ? "everysec" : "no");
     },
     nullptr},
    {"dir", [](const Config& c) { return c.dir; }, nullptr},
    {"cluster-enabled", [](const Config& c) { return bool_text(c.cluster_enabled); }, nullptr},
    {"cluster-announce-ip", [](const Config& c) { return c.cluster_announce_ip; }, nullptr},
    {"cluster-require-full-coverage", [](const Config&) { return std::string("yes"); }, nullptr},
    {"peer-port", [](const Config& c) { return std::to_string(c.peer_port); }, nullptr},
    {"notify-keyspace-events", [](const Config& c) { return notify_flags_string(c.notify_keyspace_events); },
     [](Server& srv, std::string_view v) {
       uint32_t flags = 0;
       if (!parse_notify_flags(v, flags)) return std::string("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
       srv.update_config([&](Config& c) { c.notify_keyspace_events = flags; });
       notify_flags().store(flags, std::memory_order_relaxed);
       return std::string();
     }},
    // Encoding thresholds, with their older ziplist names: accepted and reported (see Encoding).
    TALLY_ENCODING_PARAM("hash-max-listpack-entries", kHashEntries),
    TALLY_ENCODING_PARAM("hash-max-ziplist-entries", kHashEntries),
    TALLY_ENCODING_PARAM("hash-max-listpack-value", kHashValue),
    TALLY_ENCODING_PARAM("hash-max-ziplist-value", kHashValue),
    TALLY_ENCODING_PARAM("set-max-intset-entries", kSetIntsetEntries),
    TALLY_ENCODING_PARAM("set-max-listpack-entries", kSetEntries),
    TALLY_ENCODING_PARAM("set-max-listpack-value", kSetValue),
    TALLY_ENCODING_PARAM("zset-max-listpack-entries", kZsetEntries),
    TALLY_ENCODING_PARAM("zset-max-ziplist-entries", kZsetEntries),
    TALLY_ENCODING_PARAM("zset-max-listpack-value", kZsetValue),
    TALLY_ENCODING_PARAM("zset-max-ziplist-value", kZsetValue),
    TALLY_ENCODING_PARAM("list-max-listpack-size", kListSize),
    TALLY_ENCODING_PARAM("list-max-ziplist-size", kListSize),
    TALLY_ENCODING_PARAM("list-compress-depth", kListCompressDepth),
    TALLY_ENCODING_PARAM("stream-node-max-bytes", kStreamNodeBytes),
    TALLY_ENCODING_PARAM("stream-node-max-entries", kStreamNodeEntries),
};

#undef TALLY_ENCODING_PARAM

void cmd_config(Session& s, Argv argv) {
  proto::Reply& w = s.out();
  std::string_view sub = argv[1];
  if (iequals(sub, "get") && argv.size() >= 3) {
    const Config cfg = s.server().config_snapshot();
    std::vector<const ConfigParam*> hits;
    for (const auto& p : kConfigParams) {
      for (size_t i = 2; i < argv.size(); ++i) {
        if (store::glob_match(argv[i], p.name, /*nocase=*/true)) {
          hits.push_back(&p);
          break;
        }
      }
    }
    w.map(hits.size());
    for (const ConfigParam* p : hits) {
      w.bulk(p->name);
      w.bulk(p->get(cfg));
    }
  } else if (iequals(sub, "set") && argv.size() >= 4 && argv.size() % 2 == 0) {
    for (size_t i = 2; i < argv.size(); i += 2) {
      const ConfigParam* param = nullptr;
      for (const auto& p : kConfigParams) {
        if (iequals(argv[i], p.name)) param = &p;
      }
      if (param == nullptr || param->set == nullptr) {
        w.error("ERR Unknown option or number of arguments for CONFIG SET - '" + std::string(argv[i]) + "'");
        return;
      }
      std::string err = param->set(s.server(), argv[i + 1]);
      if (!err.empty()) {
        w.error("ERR CONFIG SET failed (possibly related to argument '" + std::string(argv[i]) + "') - " + err);
        return;
      }
    }
    w.ok();
  } else if (iequals(sub, "resetstat") && argv.size() == 2) {
    s.server().reset_stats();
    w.ok();
  } else if (iequals(sub, "rewrite") && argv.size() == 2) {
    w.error("ERR The server is running without a config file that CONFIG REWRITE may change");
  } else {
    w.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) + "'. Try CONFIG HELP.");
  }
}

void cmd_info(Session& s, Argv argv) {
  std::vector<std::string> sections;
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string x(argv[i]);
    std::transform(x.begin(), x.end(), x.begin(), [](char c) { return std::tolower(c); });
    sections.push_back(x);
  }
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  Server* srv = &s.server();
  srv->fan_out<StoreFigures>(
      home->id, [](Shard& sh) { return sh.figures(); }, s.alive_check(),
      [srv, home, conn_id, seq, sections](std::vector<StoreFigures>& figs) {
        std::string text = render_info(*srv, figs, sections);
        proto::Reply reply;
        reply.verbatim(text);
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

// TALLY DIGEST [TREE]: the dataset's Merkle digest, built by every shard through its offload
// engine and combined on this one (see digest.h). TALLY HELP lists the subcommands.
struct ShardDigestResult {
  Status status;
  DigestTrees trees;
};

// TALLY PARTITIONS: every partition's slots, shard and keys, gathered from the shards holding them.
void tally_partitions(Session& s) {
  struct Row {
    uint32_t id, first, last, shard;
    uint64_t keys;
  };
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  s.server().fan_out<std::vector<Row>>(
      home->id,
      [](Shard& sh) {
        std::vector<Row> rows;
        for (uint32_t p : sh.held) {
          const Partition& part = *sh.partitions[p];
          rows.push_back(Row{p, part.slots().first, part.slots().last, sh.id, part.store().size()});
        }
        return rows;
      },
      s.alive_check(),
      [home, conn_id, seq](std::vector<std::vector<Row>>& per_shard) {
        std::vector<Row> all;
        for (auto& rows : per_shard) all.insert(all.end(), rows.begin(), rows.end());
        std::sort(all.begin(), all.end(), [](const Row& a, const Row& b) { return a.id < b.id; });
        proto::Reply reply;
        reply.array(all.size());
        for (const Row& r : all) {
          reply.array(5);
          reply.integer(r.id);
          reply.integer(r.first);
          reply.integer(r.last);
          reply.integer(r.shard);
          reply.integer(static_cast<int64_t>(r.keys));
        }
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

// TALLY MOVE-PARTITION p shard: answers once the partition serves from its new shard.
void tally_move_partition(Session& s, Argv argv) {
  int64_t p = 0, to = 0;
  if (!proto::parse_strict_int64(argv[2], p) || !proto::parse_strict_int64(argv[3], to) || p < 0 || to < 0) {
    s.out().error("ERR partition and shard must be non-negative integers");
    return;
  }
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  Server* srv = &s.server();
  const Status st = srv->move_partition(static_cast<uint32_t>(p), static_cast<uint32_t>(to), [home, conn_id, seq] {
    home->reactor->post([home, conn_id, seq] {
      proto::Reply reply;
      reply.ok();
      if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
    });
  });
  if (!st.is_ok()) {
    proto::Reply reply;
    reply.error("ERR " + st.message());
    s.complete_reply(seq, reply);
  }
}

// TALLY CLUSTER-SETUP self replicas [id host port peer-port]... [LABELS zone rack ...]: the nodes in
// formation order, and each node's zone and rack ("-" for none) when labels are given.
void tally_cluster_setup(Session& s, Argv argv) {
  proto::Reply& w = s.out();
  ClusterNode* cn = s.server().cluster_node();
  if (cn == nullptr) {
    w.error("ERR this node is not a cluster member: start it with --cluster-enabled yes --peer-port N");
    return;
  }
  size_t end = argv.size();
  for (size_t i = 4; i < argv.size(); i += 4) {
    if (iequals(argv[i], "labels")) {
      end = i;
      break;
    }
  }
  const size_t count = (end - 4) / 4;
  if (end < 8 || (end - 4) % 4 != 0 || (end != argv.size() && argv.size() - end - 1 != 2 * count)) {
    w.error("ERR usage: TALLY CLUSTER-SETUP <self> <replicas> <id> <host> <port> <peer-port> [...] "
            "[LABELS <zone> <rack> ...]");
    return;
  }
  cluster::Membership m;
  int64_t self = 0, replicas = 0;
  if (!proto::parse_strict_int64(argv[2], self) || !proto::parse_strict_int64(argv[3], replicas) || self < 1 ||
      replicas < 1) {
    w.error("ERR self and replicas must be positive integers");
    return;
  }
  m.self = static_cast<uint64_t>(self);
  m.replicas = static_cast<uint32_t>(std::min<int64_t>(replicas, 1 << 16));
  for (size_t i = 4; i < end; i += 4) {
    int64_t port = 0, peer = 0;
    if (!proto::parse_strict_int64(argv[i + 2], port) || !proto::parse_strict_int64(argv[i + 3], peer) || port < 1 ||
        port > 65535 || peer < 1 || peer > 65535) {
      w.error("ERR bad port for node " + std::to_string((i - 4) / 4 + 1));
      return;
    }
    m.nodes.push_back(cluster::MemberNode{m.nodes.size() + 1, std::string(argv[i]), std::string(argv[i + 1]),
                                          static_cast<uint16_t>(port), static_cast<uint16_t>(peer), {}, {}});
  }
  if (end != argv.size()) {
    for (size_t k = 0; k < count; ++k) {
      const std::string_view zone = argv[end + 1 + 2 * k], rack = argv[end + 2 + 2 * k];
      m.nodes[k].zone = zone == "-" ? std::string() : std::string(zone);
      m.nodes[k].rack = rack == "-" ? std::string() : std::string(rack);
    }
  }
  const Status st = cn->prepare_setup(m);
  if (!st.is_ok()) {
    w.error("ERR " + st.message());
    return;
  }
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  cn->finish_setup(*home, [home, conn_id, seq](Status done) {
    proto::Reply reply;
    if (done.is_ok()) {
      reply.ok();
    } else {
      reply.error("ERR " + done.message());
    }
    if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
  });
}

void cmd_tally(Session& s, Argv argv) {
  proto::Reply& w = s.out();
  const std::string_view sub = argv[1];
  if (iequals(sub, "help") && argv.size() == 2) {
    static const char* kHelp[] = {
        "TALLY <subcommand> [<arg> ...]. Subcommands are:",
        "DIGEST",
        "    The dataset's digest: 16 hex digits over every live key's type, expiry and value",
        "    (all zeros when empty). Nodes with the same data have the same digest.",
        "DIGEST TREE",
        "    Per slot range: first slot, last slot, keys, Merkle root (hex).",
        "PARTITIONS",
        "    Per partition: id, first slot, last slot, shard holding it, keys.",
        "CHANGES",
        "    Per partition: id, its change stream's key, first slot, last slot.",
        "MOVE-PARTITION <partition> <shard>",
        "    Hands a partition to another shard of this node (memory mode only).",
        "CLUSTER-SETUP <self> <replicas> <id> <host> <port> <peer-port> [...] [LABELS <zone> <rack> ...]",
        "    Forms the cluster on this member (tallyctl cluster create sends it to every node).",
        "HELP",
        "    Prints this help.",
    };
    w.array(std::size(kHelp));
    for (const char* line : kHelp) w.simple(line);
    return;
  }
  if (iequals(sub, "partitions") && argv.size() == 2) return tally_partitions(s);
  if (iequals(sub, "changes") && argv.size() == 2) {
    // Each partition's change stream: [partition, key, first slot, last slot].
    if (!s.server().change_stream()) {
      w.error("ERR the change stream is off (start tallyd with --change-stream yes)");
      return;
    }
    const PartitionLayout& layout = s.server().layout();
    w.array(layout.count());
    for (uint32_t p = 0; p < layout.count(); ++p) {
      w.array(4);
      w.integer(p);
      w.bulk(s.server().change_keys()[p]);
      w.integer(layout.slots(p).first);
      w.integer(layout.slots(p).last);
    }
    return;
  }
  if (iequals(sub, "cluster-setup")) return tally_cluster_setup(s, argv);
  if (iequals(sub, "move-partition") && argv.size() == 4) return tally_move_partition(s, argv);
  if (!iequals(sub, "digest") || argv.size() > 3 || (argv.size() == 3 && !iequals(argv[2], "tree"))) {
    w.error("ERR unknown subcommand or wrong number of arguments for '" + std::string(sub) + "'. Try TALLY HELP.");
    return;
  }
  const bool tree = argv.size() == 3;
  const uint64_t seq = s.reserve_reply();
  Shard* home = &s.home();
  const uint64_t conn_id = s.conn().id();
  s.server().fan_out<ShardDigestResult>(
      home->id,
      [](Shard& sh) {
        ShardDigestResult r;
        auto trees = shard_digest(sh, *sh.offload, sh.server->env().wall_ms());
        if (trees.is_ok()) {
          r.trees = std::move(trees).value();
        } else {
          r.status = trees.status();
        }
        return r;
      },
      s.alive_check(),
      [home, conn_id, seq, tree](std::vector<ShardDigestResult>& parts) {
        proto::Reply reply;
        proto::Reply& rw = reply;
        std::vector<DigestTrees> trees;
        Status failed = Status::ok();
        for (auto& p : parts) {
          if (!p.status.is_ok()) failed = p.status;
          trees.push_back(std::move(p.trees));
        }
        if (!failed.is_ok()) {
          rw.error("ERR digest failed: " + failed.message());
        } else {
          const DigestTrees all = combine_digests(trees);
          if (!tree) {
            rw.bulk(digest_hex(all));
          } else {
            rw.array(kDigestRanges);
            for (uint32_t r = 0; r < kDigestRanges; ++r) {
              rw.array(4);
              rw.integer(r * kDigestSlotsPerRange);
              rw.integer((r + 1) * kDigestSlotsPerRange - 1);
              rw.integer(static_cast<int64_t>(all[r * kDigestTreeWords]));
              rw.bulk(range_root_hex(all, r));
            }
          }
        }
        if (Session* x = Session::lookup(*home, conn_id)) x->complete_reply(seq, reply);
      });
}

void cmd_transaction(Session& s, Argv) { s.out().error("ERR transaction command out of place"); }

const CommandEntry kSessionCommands[] = {
    {"ping", -1, kCmdFast | kCmdStale | kCmdPubSubContext, 0, 0, 0, "connection", "Returns PONG or the argument.", nullptr, cmd_ping},
    {"echo", 2, kCmdFast, 0, 0, 0, "connection", "Returns the given string.", nullptr, cmd_echo},
    {"quit", -1, kCmdNoAuth | kCmdFast | kCmdPubSubContext, 0, 0, 0, "connection", "Closes the connection.", nullptr, cmd_quit},
    {"reset", 1, kCmdNoAuth | kCmdFast | kCmdPubSubContext, 0, 0, 0, "connection",
     "Resets the connection: MULTI, WATCH, subscriptions, protocol, reply mode, name, authentication.", nullptr,
     cmd_reset},
    {"select", 2, kCmdFast, 0, 0, 0, "connection", "Selects database 0 (the only one).", nullptr, cmd_select},
    {"auth", -2, kCmdNoAuth | kCmdFast, 0, 0, 0, "connection", "Authenticates the connection.", nullptr, cmd_auth},
    {"hello", -1, kCmdNoAuth | kCmdFast, 0, 0, 0, "connection", "Handshakes: protocol version, auth, name.",
     nullptr, cmd_hello},
    {"client", -2, kCmdAdmin, 0, 0, 0, "connection", "Client connection management.", nullptr, cmd_client},
    {"command", -1, kCmdLoading | kCmdStale, 0, 0, 0, "server", "Describes the server's commands.", nullptr,
     cmd_command},
    {"acl", -2, kCmdLoading | kCmdStale, 0, 0, 0, "server", "ACL users: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, "
     "GENPASS, DRYRUN, LOG, LOAD, SAVE.", nullptr, cmd_acl},
    {"config", -2, kCmdAdmin, 0, 0, 0, "server", "Gets or sets configuration parameters.", nullptr, cmd_config},
    {"info", -1, kCmdLoading | kCmdStale, 0, 0, 0, "server", "Returns information and statistics.", nullptr,
     cmd_info},
    {"function", -2, kCmdWrite, 0, 0, 0, "scripting", "FUNCTION FLUSH (no functions are stored).", nullptr,
     cmd_function},
    {"shutdown", -1, kCmdAdmin, 0, 0, 0, "server", "Stops the server.", nullptr, cmd_shutdown},
    {"time", 1, kCmdFast, 0, 0, 0, "server", "Returns the server time.", nullptr, cmd_time},
    {"wait", 3, 0, 0, 0, 0, "generic", "Answers how many replicas have the connection's writes (they are on a majority when acknowledged).",
     nullptr, cmd_wait},
    {"tally", -2, kCmdAdmin, 0, 0, 0, "server", "Tally's own commands: TALLY DIGEST [TREE], TALLY HELP.", nullptr,
     cmd_tally},
    {"lastsave", 1, kCmdFast, 0, 0, 0, "server", "Returns the Unix time of the last completed save of every partition.",
     nullptr, cmd_lastsave},
    {"save", 1, kCmdAdmin, 0, 0, 0, "server", "Snapshots every partition now, blocking each shard meanwhile.", nullptr,
     cmd_save},
    {"bgsave", -1, kCmdAdmin, 0, 0, 0, "server", "Snapshots every partition in the background.", nullptr, cmd_bgsave},
    {"cluster", -2, kCmdStale, 0, 0, 0, "cluster", "Redis Cluster: INFO, MYID, NODES, SLOTS, SHARDS, KEYSLOT, "
     "COUNTKEYSINSLOT, GETKEYSINSLOT.", nullptr, cmd_cluster},
    {"asking", 1, kCmdFast, 0, 0, 0, "cluster", "Marks the next command as following an ASK redirect.", nullptr,
     cmd_asking},
    {"readonly", 1, kCmdFast | kCmdLoading | kCmdStale, 0, 0, 0, "cluster",
     "Lets this connection read from replicas.", nullptr, cmd_readonly},
    {"readwrite", 1, kCmdFast | kCmdLoading | kCmdStale, 0, 0, 0, "cluster",
     "Ends READONLY on this connection.", nullptr, cmd_readwrite},
    // Publish/subscribe (pubsub.h).
    {"subscribe", -2, kCmdPubSubContext, 0, 0, 0, "pubsub", "Listens for messages on channels.", nullptr, cmd_pubsub},
    {"psubscribe", -2, kCmdPubSubContext, 0, 0, 0, "pubsub", "Listens for messages on channels matching patterns.",
     nullptr, cmd_pubsub},
    {"ssubscribe", -2, kCmdPubSubContext, 1, -1, 1, "pubsub", "Listens for messages on shard channels.", nullptr,
     cmd_pubsub},
    {"unsubscribe", -1, kCmdPubSubContext, 0, 0, 0, "pubsub", "Stops listening on channels (all without names).",
     nullptr, cmd_pubsub},
    {"punsubscribe", -1, kCmdPubSubContext, 0, 0, 0, "pubsub", "Stops listening on patterns (all without names).",
     nullptr, cmd_pubsub},
    {"sunsubscribe", -1, kCmdPubSubContext, 1, -1, 1, "pubsub", "Stops listening on shard channels.", nullptr,
     cmd_pubsub},
    {"publish", 3, kCmdFast | kCmdStale, 0, 0, 0, "pubsub", "Posts a message to a channel; answers how many received it.",
     nullptr, cmd_pubsub},
    {"spublish", 3, kCmdFast, 1, 1, 1, "pubsub", "Posts a message to a shard channel.", nullptr, cmd_pubsub},
    {"pubsub", -2, kCmdStale, 0, 0, 0, "pubsub", "PUBSUB CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB.", nullptr,
     cmd_pubsub},
    // Transactions (transactions.cc; the session runs them before any handler, so none is set here
    // but a guard that should never run).
    {"multi", 1, kCmdFast | kCmdTransaction, 0, 0, 0, "transactions", "Starts a transaction.", nullptr, cmd_transaction},
    {"exec", 1, kCmdTransaction, 0, 0, 0, "transactions", "Runs the commands queued since MULTI, at once.", nullptr,
     cmd_transaction},
    {"discard", 1, kCmdFast | kCmdTransaction, 0, 0, 0, "transactions", "Drops the commands queued since MULTI.",
     nullptr, cmd_transaction},
    {"watch", -2, kCmdFast | kCmdTransaction, 1, -1, 1, "transactions",
     "Makes the next EXEC fail if any of these keys is written first.", nullptr, cmd_transaction},
    {"unwatch", 1, kCmdFast | kCmdTransaction, 0, 0, 0, "transactions", "Forgets the keys WATCH named.", nullptr,
     cmd_transaction},
    // Blocking forms: their non-blocking probe runs through the engine until it finds something
    // (blocking.h). Key specs as Redis's, for COMMAND and cluster clients.
    {"blpop", -3, kCmdWrite, 1, -2, 1, "list", "Pops the first element of the first non-empty list, waiting for one.",
     nullptr, cmd_blocking},
    {"brpop", -3, kCmdWrite, 1, -2, 1, "list", "Pops the last element of the first non-empty list, waiting for one.",
     nullptr, cmd_blocking},
    {"blmove", 6, kCmdWrite | kCmdDenyOom, 1, 2, 1, "list", "Moves an element between lists, waiting for one.", nullptr,
     cmd_blocking},
    {"brpoplpush", 4, kCmdWrite | kCmdDenyOom, 1, 2, 1, "list",
     "Pops the last element of a list and pushes it to another, waiting for one.", nullptr, cmd_blocking},
    {"blmpop", -5, kCmdWrite, 0, 0, 0, "list", "Pops elements from the first non-empty list, waiting for one.", nullptr,
     cmd_blocking, 0, Split::kNone, 2},
    {"bzpopmin", -3, kCmdWrite | kCmdFast, 1, -2, 1, "sorted-set",
     "Pops the lowest-scored member of the first non-empty sorted set, waiting for one.", nullptr, cmd_blocking},
    {"bzpopmax", -3, kCmdWrite | kCmdFast, 1, -2, 1, "sorted-set",
     "Pops the highest-scored member of the first non-empty sorted set, waiting for one.", nullptr, cmd_blocking},
    {"bzmpop", -5, kCmdWrite, 0, 0, 0, "sorted-set",
     "Pops members from the first non-empty sorted set, waiting for one.", nullptr, cmd_blocking, 0, Split::kNone, 2},
};

}  // namespace

std::span<const CommandEntry> session_commands() { return kSessionCommands; }

}  // namespace tally::server
