// ACL users as Redis 6+ clients expect them (docs/acl.md): named users with passwords (kept as SHA-256
// hashes), allowed commands and categories (with command|subcommand rules), key patterns with read and
// write permission, and pub/sub channel patterns. The registry holds every user; sessions keep a
// pointer to their user's current version and refresh it when the registry's generation moves, so an
// ACL SETUSER applies to connected clients at once and ACL DELUSER disconnects them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "host/common/env.h"
#include "host/common/status.h"

namespace tally::proto {
class Reply;
}

namespace tally::server {

struct CommandEntry;
using Argv = std::span<const std::string_view>;

// Redis's ACL categories, in ACL CAT's order.
enum AclCategory : uint32_t {
  kCatKeyspace = 1u << 0, kCatRead = 1u << 1, kCatWrite = 1u << 2, kCatSet = 1u << 3,
  kCatSortedSet = 1u << 4, kCatList = 1u << 5, kCatHash = 1u << 6, kCatString = 1u << 7,
  kCatBitmap = 1u << 8, kCatHyperLogLog = 1u << 9, kCatGeo = 1u << 10, kCatStream = 1u << 11,
  kCatPubSub = 1u << 12, kCatAdmin = 1u << 13, kCatFast = 1u << 14, kCatSlow = 1u << 15,
  kCatBlocking = 1u << 16, kCatDangerous = 1u << 17, kCatConnection = 1u << 18,
  kCatTransaction = 1u << 19, kCatScripting = 1u << 20,
};
inline constexpr size_t kAclCategoryCount = 21;
// The category names, bit i is name i.
std::span<const std::string_view> acl_category_names();
// The categories a command belongs to (from its group, its flags and Redis's list of dangerous ones).
uint32_t acl_categories(const CommandEntry& e);

enum class AclDenied : uint8_t { kNone, kCommand, kKey, kChannel };

class AclUser {
 public:
  // As ACL SETUSER creates a user: off, no password, no commands, keys or channels.
  explicit AclUser(std::string name);

  // Applies one ACL SETUSER rule. On error the message (without the "Error in ACL SETUSER modifier"
  // prefix) and the user may be partly changed: the registry applies rules to a copy.
  Status apply(std::string_view rule);

  const std::string& name() const { return name_; }
  bool enabled() const { return enabled_; }
  bool nopass() const { return nopass_; }
  bool password_matches(std::string_view pass) const;
  // All commands, every key and every channel: the per-command check can be skipped.
  bool unrestricted() const { return unrestricted_; }

  // Whether the user may run argv (command e). On a denial `object` names what was denied: the
  // command ("config|set" for a container command), the key or the channel.
  AclDenied check(const CommandEntry& e, Argv argv, std::string* object) const;
  // A channel (or, for PSUBSCRIBE, a pattern compared literally) the user may use.
  bool channel_allowed(std::string_view channel, bool is_pattern) const;

  // ACL LIST's line: "user NAME on #hash ~keys &channels +@all".
  std::string describe() const;
  // ACL GETUSER's reply.
  void write_getuser(proto::Reply& w) const;

 private:
  struct KeyPattern {
    std::string glob;
    bool read = true, write = true;
  };
  Status apply_command_rule(std::string_view rule);
  void set_command(uint32_t index, bool allow);
  void add_command_rule(std::string rule);
  void refresh_unrestricted();
  bool key_allowed(std::string_view key, bool write) const;
  // The command (with its first argument, for first-argument rules) is allowed.
  bool command_allowed(uint32_t index, std::string_view sub) const;

  std::string name_;
  bool enabled_ = false;
  bool nopass_ = false;
  int sanitize_ = 0;  // 0: neither flag shown, 1: sanitize-payload, -1: skip-sanitize-payload
  std::vector<std::string> hashes_;  // SHA-256 of each password, lower-case hex
  std::vector<uint8_t> allowed_;     // by command index
  // First-argument rules (+config|get, -client|kill), by command index: argument -> allowed.
  std::map<uint32_t, std::map<std::string, bool, std::less<>>> sub_rules_;
  bool all_base_ = false;            // the command rules start from +@all (else -@all)
  std::vector<std::string> command_rules_;  // the rules after the base, each target at most once
  bool allkeys_ = false;
  std::vector<KeyPattern> keys_;
  bool allchannels_ = false;
  std::vector<std::string> channels_;
  bool unrestricted_ = false;
};

// SHA-256 of a password as lower-case hex.
std::string acl_hash_password(std::string_view pass);

struct AclLogEntry {
  std::string reason;   // command, key, channel, auth
  std::string context;  // toplevel, multi
  std::string object;
  std::string username;
  std::string client_info;
  uint64_t count = 1;
  uint64_t created_ms = 0, updated_ms = 0;
};

struct AclCounters {
  std::atomic<uint64_t> denied_auth{0}, denied_cmd{0}, denied_key{0}, denied_channel{0}, auth_rate_limited{0};
};

class AclRegistry {
 public:
  AclRegistry();

  // The current version of a user; nullptr when there is none.
  std::shared_ptr<const AclUser> find(std::string_view name) const;
  // The user a login names, when it exists, is enabled and the password fits (any, with nopass).
  std::shared_ptr<const AclUser> authenticate(std::string_view name, std::string_view pass) const;
  // Whether the default user needs no password: new connections start authenticated.
  bool default_open() const;
  // ACL SETUSER: all rules or none; the error is the full reply text.
  Status set_user(std::string_view name, Argv rules);
  // ACL DELUSER: how many existed. "default" cannot be removed (the caller checks).
  size_t delete_users(Argv names);
  // Every user, by name.
  std::vector<std::shared_ptr<const AclUser>> users() const;
  // requirepass: the default user's password ("" -> nopass).
  void set_default_password(std::string_view pass);
  // Moves whenever any user changes; sessions compare it with the one they saw.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // The ACL file: every line "user NAME RULES...". Loading replaces all users, or none on an error.
  Status load_file(Env& env, const std::string& path);
  Status save_file(Env& env, const std::string& path) const;

  // Failed logins per client address: a bucket of `burst` that refills at `per_sec`; an address with
  // an empty bucket is refused before its password is checked. burst 0: no limit.
  void set_login_limit(uint32_t burst, uint32_t per_sec);
  bool login_allowed(std::string_view addr, uint64_t now_ms);
  void login_failed(std::string_view addr, uint64_t now_ms);

  // ACL LOG: equal denials (reason, context, object, user) within 60 s count into one entry.
  void log(AclLogEntry e, uint64_t now_ms);
  std::vector<AclLogEntry> log_entries(size_t max) const;
  void log_reset();
  void set_log_max(size_t n);
  AclCounters& counters() { return counters_; }

 private:
  static std::shared_ptr<AclUser> make_default();
  void publish_locked();

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const AclUser>, std::less<>> users_;
  std::atomic<uint64_t> generation_{1};
  struct Bucket {
    double tokens = 0;
    uint64_t at_ms = 0;
  };
  std::mutex limit_mu_;
  uint32_t burst_ = 0, per_sec_ = 0;
  std::unordered_map<std::string, Bucket> buckets_;
  mutable std::mutex log_mu_;
  std::deque<AclLogEntry> log_;  // newest first
  size_t log_max_ = 128;
  AclCounters counters_;
};

}  // namespace tally::server
