// A RESP client connection: parses its pipeline, runs server commands itself and data commands through
// the command engine, and encodes reply values (RESP2 or RESP3) in request order, however many
// shards answered them.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "host/net/reactor.h"
#include "host/proto/command.h"
#include "host/proto/reply.h"
#include "host/proto/reply_value.h"
#include "host/proto/resp_parser.h"
#include "host/server/acl.h"
#include "host/server/blocking.h"
#include "host/server/pubsub.h"
#include "host/server/client_session.h"
#include "host/server/command_engine.h"
#include "host/server/command_table.h"

namespace tally::server {

class Server;
struct Shard;

enum class ReplyMode { kOn, kOff, kSkip };

class Session final : public ClientSession {
 public:
  Session(Server& server, Shard& home, net::Conn& conn);
  ~Session() override;

  void on_data(net::Conn& c, std::string_view data) override;
  void on_close(net::Conn& c) override;

  // --- used by the server commands (session_commands.cc) ---
  Server& server() { return server_; }
  Shard& home() { return home_; }
  net::Conn& conn() { return *conn_; }
  uint64_t client_id() const { return client_id_; }
  // The reply value of the server command being run.
  proto::Reply& out() { return *out_; }
  int resp() const { return resp_; }
  void set_resp(int v) { resp_ = v; }
  bool authenticated() const { return authenticated_; }
  void set_authenticated(bool yes);
  // The ACL user the connection runs as (default until AUTH names another).
  const AclUser& user() const { return *user_; }
  // A successful login: the connection runs as u from now on.
  void login(std::shared_ptr<const AclUser> u);
  // An ACL LOG entry for a denial on this connection.
  void log_acl_denial(std::string_view reason, std::string object, std::string_view username);
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  // READONLY (true) and READWRITE (false).
  void set_replica_reads(bool on) { engine_.set_replica_reads(on); }
  void set_lib(std::string_view attr, std::string_view value);
  void set_reply_mode(ReplyMode m) { reply_mode_ = m; }
  void close_after_reply() { close_after_reply_ = true; }
  uint64_t last_active_ms() const { return last_active_ms_; }
  // One CLIENT LIST line for this session.
  std::string describe(uint64_t now_ms) const;

  // ClientSession: replies that other shards (or later events) compute.
  uint64_t reserve_reply() override;
  void complete_reply(uint64_t seq, proto::Reply& reply) override;
  void resume_processing() override;
  // Checks that this session still exists (the reactor still knows its connection).
  std::function<bool()> alive_check() const;
  // The session for a connection id on `home`'s reactor, if it is still open.
  static Session* lookup(Shard& home, uint64_t conn_id);

  // --- publish/subscribe (pubsub.cc) ---
  std::set<std::string>& subscriptions(PubSubRegistry::Kind k) { return subs_[k]; }
  size_t subscription_count() const { return subs_[0].size() + subs_[1].size() + subs_[2].size(); }
  // RESET: back to a fresh connection's state (no MULTI or WATCH, no subscriptions, RESP2, replies on,
  // no name, and not authenticated when a password is set).
  void reset_state();
  // Writes a push (a message, a subscription confirmation) in order with the replies.
  void push_message(const proto::Reply& r);

  // --- blocking commands (blocking.cc) ---
  // Starts waiting: the command's reply place is reserved and later commands wait behind it.
  void begin_blocking(std::unique_ptr<BlockingCall> call);
  // A write reached a key of registration `token`.
  void block_wake(uint64_t token);

 private:
  void process_input();
  // Parses and runs the commands at the front of `input`; returns the bytes consumed.
  size_t process(std::string_view input);
  // Runs one command; false when processing must stop before it (held back by a partition move).
  bool execute(std::span<const std::string_view> argv);
  // The ACL check of a command about to run: false after replying NOPERM (or closing the connection
  // when its user was deleted).
  bool acl_permits(const CommandEntry& e, std::span<const std::string_view> argv);
  // Takes the user's current version after an ACL change; false when the connection must close.
  bool refresh_user();
  // Encodes a reply value at the current end of the reply order.
  void emit(const proto::Reply& r);
  void emit_error(std::string_view text);
  // Encodes r after everything already answered or still awaited (emit's and push_message's core).
  void write_in_order(const proto::Reply& r);
  void flush_completed();
  bool over_inflight_limit() const;
  // Blocking commands (blocking.cc).
  void block_probe();
  void block_on_probe(const proto::Reply& r);
  void block_on_probe_done(const proto::Reply& r);
  void block_finish(const proto::Reply& r);
  void block_register();
  void block_unregister();
  void block_stop_timers();
  // Runs fn on the registry of the shard holding the keys (here, or posted there).
  void on_owner_registry(std::function<void(BlockingRegistry&)> fn);
  // Transactions (transactions.cc). run_transaction_command handles MULTI/EXEC/DISCARD/WATCH/UNWATCH
  // and queues commands inside MULTI (ran = true); ran = false: not its business. Returns execute's
  // answer (false: held back by a partition move).
  bool run_transaction_command(const CommandEntry& e, std::span<const std::string_view> argv, bool& ran);
  bool exec_transaction();
  bool watch_keys(std::span<const std::string_view> argv);
  void watch_answered(const proto::Reply& cas, const uint64_t* seq);
  void multi_reset();
  // Writes `reply` (nothing when null) into reply place `seq` and marks it done.
  void fill_slot(uint64_t seq, const proto::Reply* reply);

  Server& server_;
  Shard& home_;
  net::Conn* conn_;
  uint64_t conn_id_;
  uint64_t client_id_;
  uint64_t created_ms_;
  uint64_t last_active_ms_;
  proto::RespParser parser_;
  proto::Command cmd_;
  CommandEngine engine_;
  std::string in_;           // unconsumed input bytes
  proto::Reply* out_ = nullptr;
  int resp_ = 2;
  bool authenticated_ = false;
  std::shared_ptr<const AclUser> user_;
  uint64_t acl_generation_ = 0;  // the registry's generation user_ was taken at
  bool close_after_reply_ = false;
  bool closed_ = false;
  bool paused_ = false;   // reading paused: too many replies outstanding
  bool blocked_ = false;  // processing held: a command waits for a partition move
  bool waiting_ = false;  // processing held: a blocking command waits (bcall_)
  std::unique_ptr<BlockingCall> bcall_;
  std::set<std::string> subs_[3];  // channels, patterns, shard channels subscribed to
  bool in_multi_ = false;     // MULTI: commands are queued
  bool multi_error_ = false;  // a queued command was refused: EXEC aborts
  std::vector<std::vector<std::string>> queued_;
  std::vector<std::pair<std::string, uint64_t>> watched_;  // WATCH: keys and their CAS values then
  std::vector<std::string> watch_keys_;  // a WATCH whose CAS values are on their way
  bool watch_pending_ = false;
  uint64_t watch_seq_ = 0;
  proto::Reply probe_reply_;
  ReplyMode reply_mode_ = ReplyMode::kOn;
  std::string name_, lib_name_, lib_ver_;
  std::string_view last_command_;  // a name from the static command table

  struct Pending {
    std::string bytes;
    bool done = false;
    bool discard = false;  // CLIENT REPLY OFF/SKIP was in force when it was reserved
  };
  std::deque<Pending> pending_;  // replies not yet written, in request order
  uint64_t pending_base_ = 0;    // sequence number of pending_.front()
};

}  // namespace tally::server
