// A RESP client connection: parses its pipeline, runs each command on the shard that owns its keys and
// returns replies in request order, however many shards answered them.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "host/net/reactor.h"
#include "host/proto/command.h"
#include "host/proto/reply.h"
#include "host/proto/resp_parser.h"
#include "host/server/command_table.h"

namespace tally::server {

class Server;
struct Shard;

enum class ReplyMode { kOn, kOff, kSkip };

class Session final : public net::ConnHandler {
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
  proto::ReplyWriter& out() { return writer_; }
  int resp() const { return writer_.resp(); }
  void set_resp(int v) { writer_.set_resp(v); }
  bool authenticated() const { return authenticated_; }
  void set_authenticated(bool yes);
  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  void set_lib(std::string_view attr, std::string_view value);
  void set_reply_mode(ReplyMode m) { reply_mode_ = m; }
  void close_after_reply() { close_after_reply_ = true; }
  uint64_t last_active_ms() const { return last_active_ms_; }
  // One CLIENT LIST line for this session.
  std::string describe(uint64_t now_ms) const;

  // A reply that other shards compute: reserve its place in the reply order now, fill it later.
  uint64_t reserve_reply();
  void complete_reply(uint64_t seq, std::string_view bytes);
  // Checks that this session still exists (the reactor still knows its connection).
  std::function<bool()> alive_check() const;
  // The session for a connection id on `home`'s reactor, if it is still open.
  static Session* lookup(Shard& home, uint64_t conn_id);

 private:
  void process_input();
  // Parses and runs the commands at the front of `input`; returns the bytes consumed.
  size_t process(std::string_view input);
  // Returns false when the connection must stop processing (closed, or paused for back-pressure).
  bool execute(std::span<const std::string_view> argv);
  void execute_data(const CommandEntry& e, std::span<const std::string_view> argv);
  void execute_multi_shard(const CommandEntry& e, std::span<const std::string_view> argv,
                           const std::vector<uint32_t>& key_shards);
  void flush_remote_batch();
  std::string& reply_target();
  void flush_completed();
  bool over_inflight_limit() const;

  Server& server_;
  Shard& home_;
  net::Conn* conn_;
  uint64_t conn_id_;
  uint64_t client_id_;
  uint64_t created_ms_;
  uint64_t last_active_ms_;
  proto::RespParser parser_;
  proto::Command cmd_;
  std::string in_;           // unconsumed input bytes
  std::string scratch_;      // replies that CLIENT REPLY OFF/SKIP discards
  proto::ReplyWriter writer_;
  bool authenticated_ = false;
  bool close_after_reply_ = false;
  bool closed_ = false;
  bool paused_ = false;
  ReplyMode reply_mode_ = ReplyMode::kOn;
  std::string name_, lib_name_, lib_ver_;
  std::string_view last_command_;  // a name from the static command table

  struct Pending {
    std::string bytes;
    bool done = false;
  };
  std::deque<Pending> pending_;  // replies not yet written, in request order
  uint64_t pending_base_ = 0;    // sequence number of pending_.front()

  // Consecutive commands bound for one remote shard go as one message.
  struct RemoteBatch {
    uint32_t shard = UINT32_MAX;
    std::string blob;                         // all arguments, back to back
    std::vector<uint32_t> arg_lens;           // per argument
    std::vector<uint32_t> argc;               // per command
    std::vector<const CommandEntry*> entries; // per command
  };
  RemoteBatch batch_;
  std::vector<size_t> key_pos_;   // scratch for key positions
  std::vector<uint32_t> key_shards_;
  std::vector<std::string_view> key_views_;  // scratch: the keys of the command being routed
};

// Runs one data command on `shard` (its thread) and appends the reply; shared by local and remote paths.
// `record` false: the caller counts the call itself (one client command split over several shards).
void run_data_command(Shard& shard, const CommandEntry& e, std::span<const std::string_view> argv,
                      proto::ReplyWriter& out, bool record = true);

}  // namespace tally::server
