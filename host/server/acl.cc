#include "host/server/acl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "host/proto/reply_value.h"
#include "host/server/command_table.h"
#include "host/server/commands/util.h"
#include "host/store/glob.h"

namespace tally::server {
namespace {

constexpr std::array<std::string_view, kAclCategoryCount> kCategoryNames = {
    "keyspace", "read",   "write", "set",      "sortedset", "list",      "hash",
    "string",   "bitmap", "hyperloglog", "geo", "stream",   "pubsub",    "admin",
    "fast",     "slow",   "blocking", "dangerous", "connection", "transaction", "scripting"};

// Commands Redis files under @dangerous although no admin flag says so.
bool dangerous_by_name(std::string_view n) {
  static constexpr std::string_view kNames[] = {"keys",    "flushall", "flushdb", "sort",  "sort_ro", "info",
                                                "migrate", "restore",  "swapdb",  "debug", "monitor"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

// Redis's container commands: their denials name "command|subcommand".
bool has_subcommands(std::string_view n) {
  static constexpr std::string_view kNames[] = {"acl",   "client", "cluster", "command", "config",
                                                "function", "memory", "object", "pubsub", "script",
                                                "slowlog", "xgroup", "xinfo",  "latency", "module", "tally"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

// Container commands whose lighter subcommands Redis files under fewer categories than the rest (ACL
// WHOAMI is only @slow; ACL SETUSER is also @admin and @dangerous). A category rule gives or takes
// these subcommands by their own categories.
struct LightSubcommands {
  std::string_view command;
  uint32_t categories;
  std::initializer_list<std::string_view> subs;
};
const LightSubcommands kLightSubcommands[] = {
    {"acl", kCatSlow, {"whoami", "cat", "genpass", "help"}},
    {"client", kCatSlow | kCatConnection,
     {"id", "info", "setname", "getname", "setinfo", "reply", "getredir", "tracking", "trackinginfo", "caching",
      "no-evict", "no-touch", "help"}},
};

const LightSubcommands* light_subcommands(std::string_view command) {
  for (const LightSubcommands& l : kLightSubcommands) {
    if (l.command == command) return &l;
  }
  return nullptr;
}

const std::vector<uint32_t>& category_table() {
  static const std::vector<uint32_t> table = [] {
    const CommandTable& t = CommandTable::instance();
    std::vector<uint32_t> v(t.size(), 0);
    for (const CommandEntry& e : t.all()) v[e.index] = acl_categories(e);
    return v;
  }();
  return table;
}

bool is_lower_hex64(std::string_view h) {
  if (h.size() != 64) return false;
  return std::all_of(h.begin(), h.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

constexpr std::string_view kErrHash =
    "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters";
constexpr std::string_view kErrUnknownCommand = "Unknown command or category name in ACL";

}  // namespace

std::span<const std::string_view> acl_category_names() { return kCategoryNames; }

uint32_t acl_categories(const CommandEntry& e) {
  uint32_t c = 0;
  const std::string_view g = e.group;
  if (g == "keyspace") c |= kCatKeyspace;
  if (g == "string") c |= kCatString;
  if (g == "list") c |= kCatList;
  if (g == "hash") c |= kCatHash;
  if (g == "set") c |= kCatSet;
  if (g == "sorted-set" || g == "sorted_set") c |= kCatSortedSet;
  if (g == "stream") c |= kCatStream;
  if (g == "bitmap") c |= kCatBitmap;
  if (g == "hyperloglog") c |= kCatHyperLogLog;
  if (g == "geo") c |= kCatGeo;
  if (g == "pubsub") c |= kCatPubSub;
  if (g == "connection") c |= kCatConnection;
  if (g == "transactions") c |= kCatTransaction;
  if (g == "scripting") c |= kCatScripting;
  if (e.flags & kCmdWrite) c |= kCatWrite;
  if (e.flags & kCmdReadOnly) c |= kCatRead;
  if (e.flags & kCmdAdmin) c |= kCatAdmin | kCatDangerous;
  c |= (e.flags & kCmdFast) ? kCatFast : kCatSlow;
  if ((e.flags & kCmdBlockOption) || e.name.starts_with("bl") || e.name.starts_with("bz") ||
      e.name == "brpop" || e.name == "brpoplpush") {
    c |= kCatBlocking;
  }
  if (dangerous_by_name(e.name)) c |= kCatDangerous;
  if (e.name == "lastsave") c |= kCatAdmin | kCatDangerous;
  if (e.name == "asking" || e.name == "readonly" || e.name == "readwrite" || e.name == "command" ||
      e.name == "wait") {
    c |= kCatConnection;
  }
  if (e.name == "acl") c |= kCatAdmin | kCatDangerous;
  return c;
}

std::string acl_hash_password(std::string_view pass) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const int ok = EVP_Digest(pass.data(), pass.size(), md, &len, EVP_sha256(), nullptr);
  TALLY_ASSERT_MSG(ok == 1 && len == 32, "SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned i = 0; i < 32; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

// ---- AclUser ----

AclUser::AclUser(std::string name) : name_(std::move(name)), allowed_(CommandTable::instance().size(), 0) {}

void AclUser::set_command(uint32_t index, bool allow) {
  allowed_[index] = allow ? 1 : 0;
  sub_rules_.erase(index);
}

void AclUser::add_command_rule(std::string rule) {
  // A rule replaces an earlier one for the same target (+get after -get), so the description stays
  // short and says what applies.
  const std::string_view target = std::string_view(rule).substr(1);
  std::erase_if(command_rules_, [&](const std::string& r) { return std::string_view(r).substr(1) == target; });
  command_rules_.push_back(std::move(rule));
}

Status AclUser::apply_command_rule(std::string_view rule) {
  const bool allow = rule[0] == '+';
  std::string_view what = rule.substr(1);
  const CommandTable& t = CommandTable::instance();
  if (what.starts_with('@')) {
    const std::string cat = cmd::lower_ascii(what.substr(1));
    if (cat == "all") {
      for (uint32_t i = 0; i < allowed_.size(); ++i) allowed_[i] = allow ? 1 : 0;
      sub_rules_.clear();
      all_base_ = allow;
      command_rules_.clear();
      return Status::ok();
    }
    auto it = std::find(kCategoryNames.begin(), kCategoryNames.end(), cat);
    if (it == kCategoryNames.end()) return Status::invalid(std::string(kErrUnknownCommand));
    const uint32_t bit = 1u << static_cast<uint32_t>(it - kCategoryNames.begin());
    const auto& cats = category_table();
    for (const CommandEntry& e : t.all()) {
      if (e.flags & kCmdInternal) continue;
      const bool whole = (cats[e.index] & bit) != 0;
      const LightSubcommands* light = light_subcommands(e.name);
      if (light == nullptr) {
        if (whole) set_command(e.index, allow);
        continue;
      }
      const bool light_in = (light->categories & bit) != 0;
      if (!whole && !light_in) continue;
      std::vector<bool> want;
      for (std::string_view sub : light->subs) want.push_back(light_in ? allow : command_allowed(e.index, sub));
      if (whole) set_command(e.index, allow);
      size_t i = 0;
      for (std::string_view sub : light->subs) {
        auto& rules = sub_rules_[e.index];
        if (want[i] != (allowed_[e.index] != 0)) {
          rules[std::string(sub)] = want[i];
        } else {
          rules.erase(std::string(sub));
        }
        ++i;
      }
      if (sub_rules_[e.index].empty()) sub_rules_.erase(e.index);
    }
    add_command_rule(std::string(allow ? "+@" : "-@") + cat);
    return Status::ok();
  }
  const size_t bar = what.find('|');
  const std::string name = cmd::lower_ascii(what.substr(0, bar));
  const CommandEntry* e = t.find(name);
  if (e == nullptr || (e->flags & kCmdInternal)) return Status::invalid(std::string(kErrUnknownCommand));
  if (bar == std::string_view::npos) {
    set_command(e->index, allow);
    add_command_rule(std::string(allow ? "+" : "-") + name);
    return Status::ok();
  }
  const std::string sub = cmd::lower_ascii(what.substr(bar + 1));
  if (sub.find('|') != std::string::npos) {
    return Status::invalid("Allowing first-arg of a subcommand is not supported");
  }
  if (sub.empty()) return Status::invalid(std::string(kErrUnknownCommand));
  if (!allow && !has_subcommands(name)) return Status::invalid(std::string(kErrUnknownCommand));
  sub_rules_[e->index][sub] = allow;
  add_command_rule(std::string(allow ? "+" : "-") + name + "|" + sub);
  return Status::ok();
}

Status AclUser::apply(std::string_view rule) {
  const std::string low = cmd::lower_ascii(rule);
  if (low == "on") {
    enabled_ = true;
  } else if (low == "off") {
    enabled_ = false;
  } else if (low == "sanitize-payload") {
    sanitize_ = 1;
  } else if (low == "skip-sanitize-payload") {
    sanitize_ = -1;
  } else if (low == "nopass") {
    nopass_ = true;
    hashes_.clear();
  } else if (low == "resetpass") {
    nopass_ = false;
    hashes_.clear();
  } else if (low == "allkeys") {
    allkeys_ = true;
    keys_.clear();
  } else if (low == "resetkeys") {
    allkeys_ = false;
    keys_.clear();
  } else if (low == "allchannels") {
    allchannels_ = true;
    channels_.clear();
  } else if (low == "resetchannels") {
    allchannels_ = false;
    channels_.clear();
  } else if (low == "allcommands") {
    TALLY_RETURN_IF_ERROR(apply_command_rule("+@all"));
  } else if (low == "nocommands") {
    TALLY_RETURN_IF_ERROR(apply_command_rule("-@all"));
  } else if (low == "clearselectors") {
    // No selectors are kept: nothing to clear.
  } else if (low == "reset") {
    nopass_ = false;
    hashes_.clear();
    allkeys_ = false;
    keys_.clear();
    allchannels_ = false;
    channels_.clear();
    enabled_ = false;
    sanitize_ = 1;
    TALLY_RETURN_IF_ERROR(apply_command_rule("-@all"));
  } else if (!rule.empty() && (rule[0] == '>' || rule[0] == '#')) {
    std::string h = rule[0] == '>' ? acl_hash_password(rule.substr(1)) : std::string(rule.substr(1));
    if (rule[0] == '#' && !is_lower_hex64(h)) return Status::invalid(std::string(kErrHash));
    if (std::find(hashes_.begin(), hashes_.end(), h) == hashes_.end()) hashes_.push_back(std::move(h));
    nopass_ = false;
  } else if (!rule.empty() && (rule[0] == '<' || rule[0] == '!')) {
    std::string h = rule[0] == '<' ? acl_hash_password(rule.substr(1)) : std::string(rule.substr(1));
    if (rule[0] == '!' && !is_lower_hex64(h)) return Status::invalid(std::string(kErrHash));
    auto it = std::find(hashes_.begin(), hashes_.end(), h);
    if (it == hashes_.end()) {
      return Status::invalid("The password you are trying to remove from the user does not exist");
    }
    hashes_.erase(it);
  } else if (!rule.empty() && (rule[0] == '~' || rule[0] == '%')) {
    KeyPattern p;
    std::string_view glob = rule.substr(1);
    if (rule[0] == '%') {
      const size_t tilde = rule.find('~');
      if (tilde == std::string_view::npos || tilde == 1) return Status::invalid("Syntax error");
      p.read = p.write = false;
      for (char c : rule.substr(1, tilde - 1)) {
        if (c == 'R' || c == 'r') {
          p.read = true;
        } else if (c == 'W' || c == 'w') {
          p.write = true;
        } else {
          return Status::invalid("Syntax error");
        }
      }
      glob = rule.substr(tilde + 1);
    }
    if (allkeys_) {
      return Status::invalid(
          "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any "
          "effect. Try 'resetkeys' to start with an empty list of patterns");
    }
    if (glob == "*" && p.read && p.write) {
      allkeys_ = true;
      keys_.clear();
    } else {
      p.glob = std::string(glob);
      auto same = std::find_if(keys_.begin(), keys_.end(), [&](const KeyPattern& k) { return k.glob == p.glob; });
      if (same != keys_.end()) {
        same->read |= p.read;
        same->write |= p.write;
      } else {
        keys_.push_back(std::move(p));
      }
    }
  } else if (!rule.empty() && rule[0] == '&') {
    if (allchannels_) {
      return Status::invalid(
          "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any "
          "effect. Try 'resetchannels' to start with an empty list of channels");
    }
    const std::string_view glob = rule.substr(1);
    if (glob == "*") {
      allchannels_ = true;
      channels_.clear();
    } else if (std::find(channels_.begin(), channels_.end(), glob) == channels_.end()) {
      channels_.emplace_back(glob);
    }
  } else if (rule.size() >= 2 && (rule[0] == '+' || rule[0] == '-')) {
    TALLY_RETURN_IF_ERROR(apply_command_rule(rule));
  } else if (!rule.empty() && rule[0] == '(') {
    return Status::invalid("Selectors are not supported by this server; use one rule set per user");
  } else {
    return Status::invalid("Syntax error");
  }
  refresh_unrestricted();
  return Status::ok();
}

void AclUser::refresh_unrestricted() {
  bool all = allkeys_ && allchannels_ && sub_rules_.empty();
  if (all) {
    for (const CommandEntry& e : CommandTable::instance().all()) {
      if (!(e.flags & kCmdInternal) && !allowed_[e.index]) {
        all = false;
        break;
      }
    }
  }
  unrestricted_ = all;
}

bool AclUser::password_matches(std::string_view pass) const {
  if (nopass_) return true;
  const std::string h = acl_hash_password(pass);
  bool found = false;
  for (const std::string& x : hashes_) found |= CRYPTO_memcmp(x.data(), h.data(), 64) == 0;
  return found;
}

bool AclUser::command_allowed(uint32_t index, std::string_view sub) const {
  if (auto it = sub_rules_.find(index); it != sub_rules_.end()) {
    if (auto r = it->second.find(cmd::lower_ascii(sub)); r != it->second.end()) return r->second;
  }
  return allowed_[index] != 0;
}

bool AclUser::key_allowed(std::string_view key, bool write) const {
  if (allkeys_) return true;
  for (const KeyPattern& p : keys_) {
    if ((write ? p.write : p.read) && store::glob_match(p.glob, key)) return true;
  }
  return false;
}

bool AclUser::channel_allowed(std::string_view channel, bool is_pattern) const {
  if (allchannels_) return true;
  for (const std::string& p : channels_) {
    if (is_pattern ? p == channel : store::glob_match(p, channel)) return true;
  }
  return false;
}

AclDenied AclUser::check(const CommandEntry& e, Argv argv, std::string* object) const {
  if (unrestricted_ || (e.flags & kCmdNoAuth)) return AclDenied::kNone;
  const bool allowed = argv.size() >= 2 ? command_allowed(e.index, argv[1]) : allowed_[e.index] != 0;
  if (!allowed) {
    if (object != nullptr) {
      *object = std::string(e.name);
      if (argv.size() >= 2 && has_subcommands(e.name)) object->append(1, '|').append(cmd::lower_ascii(argv[1]));
    }
    return AclDenied::kCommand;
  }
  if (!allkeys_ && e.has_keys()) {
    thread_local std::vector<size_t> pos;  // reused: a restricted user's every command comes here
    CommandTable::key_positions(e, argv, pos);
    const bool write = (e.flags & kCmdWrite) != 0;
    for (size_t i : pos) {
      if (i < argv.size() && !key_allowed(argv[i], write)) {
        if (object != nullptr) *object = std::string(argv[i]);
        return AclDenied::kKey;
      }
    }
  }
  if (!allchannels_ && e.group == std::string_view("pubsub")) {
    const std::string_view n = e.name;
    size_t from = 0, to = 0;
    if (n == "publish" || n == "spublish") {
      from = 1;
      to = 2;
    } else if (n == "subscribe" || n == "ssubscribe" || n == "psubscribe") {
      from = 1;
      to = argv.size();
    }
    for (size_t i = from; i < to && i < argv.size(); ++i) {
      if (!channel_allowed(argv[i], n == "psubscribe")) {
        if (object != nullptr) *object = std::string(argv[i]);
        return AclDenied::kChannel;
      }
    }
  }
  return AclDenied::kNone;
}

std::string AclUser::describe() const {
  std::string s = "user " + name_;
  s += enabled_ ? " on" : " off";
  if (nopass_) s += " nopass";
  if (sanitize_ > 0) s += " sanitize-payload";
  if (sanitize_ < 0) s += " skip-sanitize-payload";
  for (const std::string& h : hashes_) s += " #" + h;
  if (allkeys_) s += " ~*";
  for (const KeyPattern& k : keys_) {
    s += ' ';
    if (!(k.read && k.write)) s += k.read ? "%R" : "%W";
    s += "~" + k.glob;
  }
  if (allchannels_) {
    s += " &*";
  } else {
    s += " resetchannels";
    for (const std::string& c : channels_) s += " &" + c;
  }
  s += all_base_ ? " +@all" : " -@all";
  for (const std::string& r : command_rules_) s += " " + r;
  return s;
}

void AclUser::write_getuser(proto::Reply& w) const {
  w.map(6);
  w.bulk("flags");
  std::vector<std::string_view> flags{enabled_ ? "on" : "off"};
  if (nopass_) flags.push_back("nopass");
  if (sanitize_ > 0) flags.push_back("sanitize-payload");
  if (sanitize_ < 0) flags.push_back("skip-sanitize-payload");
  w.array(flags.size());
  for (std::string_view f : flags) w.bulk(f);
  w.bulk("passwords");
  w.array(hashes_.size());
  for (const std::string& h : hashes_) w.bulk(h);
  w.bulk("commands");
  std::string c = all_base_ ? "+@all" : "-@all";
  for (const std::string& r : command_rules_) c += " " + r;
  w.bulk(c);
  w.bulk("keys");
  std::string k = allkeys_ ? "~*" : "";
  for (const KeyPattern& p : keys_) {
    if (!k.empty()) k += ' ';
    if (!(p.read && p.write)) k += p.read ? "%R" : "%W";
    k += "~" + p.glob;
  }
  w.bulk(k);
  w.bulk("channels");
  std::string ch = allchannels_ ? "&*" : "";
  for (const std::string& p : channels_) ch += (ch.empty() ? "&" : " &") + p;
  w.bulk(ch);
  w.bulk("selectors");
  w.array(0);
}

// ---- AclRegistry ----

std::shared_ptr<AclUser> AclRegistry::make_default() {
  auto u = std::make_shared<AclUser>("default");
  for (std::string_view r : {"on", "nopass", "~*", "&*", "+@all"}) TALLY_ASSERT(u->apply(r).is_ok());
  return u;
}

AclRegistry::AclRegistry() { users_.emplace("default", make_default()); }

void AclRegistry::publish_locked() { generation_.fetch_add(1, std::memory_order_acq_rel); }

std::shared_ptr<const AclUser> AclRegistry::find(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  return it == users_.end() ? nullptr : it->second;
}

std::shared_ptr<const AclUser> AclRegistry::authenticate(std::string_view name, std::string_view pass) const {
  std::shared_ptr<const AclUser> u = find(name);
  if (u == nullptr || !u->enabled() || !u->password_matches(pass)) return nullptr;
  return u;
}

bool AclRegistry::default_open() const {
  std::shared_ptr<const AclUser> u = find("default");
  return u != nullptr && u->enabled() && u->nopass();
}

Status AclRegistry::set_user(std::string_view name, Argv rules) {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  auto u = it == users_.end() ? std::make_shared<AclUser>(std::string(name)) : std::make_shared<AclUser>(*it->second);
  for (std::string_view r : rules) {
    Status st = u->apply(r);
    if (!st.is_ok()) {
      return Status::invalid("ERR Error in ACL SETUSER modifier '" + std::string(r) + "': " + st.message());
    }
  }
  users_[std::string(name)] = std::move(u);
  publish_locked();
  return Status::ok();
}

size_t AclRegistry::delete_users(Argv names) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (std::string_view name : names) {
    if (name == "default") continue;
    if (auto it = users_.find(name); it != users_.end()) {
      users_.erase(it);
      ++n;
    }
  }
  if (n > 0) publish_locked();
  return n;
}

std::vector<std::shared_ptr<const AclUser>> AclRegistry::users() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const AclUser>> v;
  for (const auto& [name, u] : users_) v.push_back(u);
  return v;
}

void AclRegistry::set_default_password(std::string_view pass) {
  std::lock_guard lock(mu_);
  auto u = std::make_shared<AclUser>(*users_.at("default"));
  TALLY_ASSERT(u->apply("resetpass").is_ok());
  if (pass.empty()) {
    TALLY_ASSERT(u->apply("nopass").is_ok());
  } else {
    std::string rule(1, '>');
    rule.append(pass);
    TALLY_ASSERT(u->apply(rule).is_ok());
  }
  users_["default"] = std::move(u);
  publish_locked();
}

Status AclRegistry::load_file(Env& env, const std::string& path) {
  auto f = env.open_file(path, OpenMode::kRead);
  if (!f.is_ok()) return Status::io_error("cannot open the ACL file " + path + ": " + f.status().message());
  auto size = (*f)->size();
  if (!size.is_ok()) return size.status();
  std::string text(*size, '\0');
  size_t done = 0;
  while (done < text.size()) {
    auto n = (*f)->read_at(done, text.data() + done, text.size() - done);
    if (!n.is_ok()) return n.status();
    if (*n == 0) break;
    done += *n;
  }
  text.resize(done);
  std::map<std::string, std::shared_ptr<const AclUser>, std::less<>> users;
  size_t line_no = 0;
  for (size_t at = 0; at <= text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + at, nl - at);
    at = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> words;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j > i) words.push_back(line.substr(i, j - i));
      i = j;
    }
    if (words.empty() || words[0].starts_with('#')) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (words[0] != "user" || words.size() < 2) return Status::invalid(where + "line should start with user keyword");
    if (users.contains(words[1])) return Status::invalid(where + "duplicate user '" + std::string(words[1]) + "'");
    auto u = std::make_shared<AclUser>(std::string(words[1]));
    for (size_t i = 2; i < words.size(); ++i) {
      Status st = u->apply(words[i]);
      if (!st.is_ok()) return Status::invalid(where + "'" + std::string(words[i]) + "': " + st.message());
    }
    users.emplace(std::string(words[1]), std::move(u));
  }
  if (!users.contains("default")) users.emplace("default", make_default());
  std::lock_guard lock(mu_);
  users_ = std::move(users);
  publish_locked();
  return Status::ok();
}

Status AclRegistry::save_file(Env& env, const std::string& path) const {
  std::string text;
  for (const auto& u : users()) text += u->describe() + "\n";
  const std::string tmp = path + ".tmp";
  if (env.exists(tmp)) TALLY_RETURN_IF_ERROR(env.remove_file(tmp));
  auto f = env.open_file(tmp, OpenMode::kCreateNew);
  if (!f.is_ok()) return f.status();
  TALLY_RETURN_IF_ERROR((*f)->write_at(0, text));
  TALLY_RETURN_IF_ERROR((*f)->sync());
  f->reset();
  TALLY_RETURN_IF_ERROR(env.rename_file(tmp, path));
  const size_t slash = path.rfind('/');
  return env.sync_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

void AclRegistry::set_login_limit(uint32_t burst, uint32_t per_sec) {
  std::lock_guard lock(limit_mu_);
  burst_ = burst;
  per_sec_ = per_sec;
  buckets_.clear();
}

bool AclRegistry::login_allowed(std::string_view addr, uint64_t now_ms) {
  std::lock_guard lock(limit_mu_);
  if (burst_ == 0) return true;
  auto it = buckets_.find(std::string(addr));
  if (it == buckets_.end()) return true;
  Bucket& b = it->second;
  b.tokens = std::min<double>(burst_, b.tokens + static_cast<double>(now_ms - std::min(now_ms, b.at_ms)) * per_sec_ / 1000.0);
  b.at_ms = now_ms;
  if (b.tokens >= 1.0) return true;
  counters_.auth_rate_limited.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void AclRegistry::login_failed(std::string_view addr, uint64_t now_ms) {
  std::lock_guard lock(limit_mu_);
  if (burst_ == 0) return;
  if (buckets_.size() >= 65536) buckets_.clear();  // bounded: an attacker with many addresses resets it
  auto [it, fresh] = buckets_.try_emplace(std::string(addr), Bucket{static_cast<double>(burst_), now_ms});
  Bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min<double>(burst_, b.tokens + static_cast<double>(now_ms - std::min(now_ms, b.at_ms)) * per_sec_ / 1000.0);
    b.at_ms = now_ms;
  }
  b.tokens = std::max(0.0, b.tokens - 1.0);
}

void AclRegistry::log(AclLogEntry e, uint64_t now_ms) {
  std::lock_guard lock(log_mu_);
  for (AclLogEntry& x : log_) {
    if (x.reason == e.reason && x.context == e.context && x.object == e.object && x.username == e.username &&
        now_ms - x.updated_ms < 60000) {
      ++x.count;
      x.updated_ms = now_ms;
      x.client_info = std::move(e.client_info);
      return;
    }
  }
  e.created_ms = e.updated_ms = now_ms;
  log_.push_front(std::move(e));
  while (log_.size() > log_max_) log_.pop_back();
}

std::vector<AclLogEntry> AclRegistry::log_entries(size_t max) const {
  std::lock_guard lock(log_mu_);
  return {log_.begin(), log_.begin() + static_cast<ptrdiff_t>(std::min(max, log_.size()))};
}

void AclRegistry::log_reset() {
  std::lock_guard lock(log_mu_);
  log_.clear();
}

void AclRegistry::set_log_max(size_t n) {
  std::lock_guard lock(log_mu_);
  log_max_ = n;
  while (log_.size() > log_max_) log_.pop_back();
}

}  // namespace tally::server
