// ACL SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, GENPASS, DRYRUN, LOG, LOAD, SAVE, HELP: the
// users of acl.h as Redis 7 clients manage them.
#include "host/server/acl_commands.h"

#include <openssl/rand.h>

#include <algorithm>
#include <string>

#include "host/proto/reply_value.h"
#include "host/server/commands/util.h"
#include "host/server/server.h"
#include "host/server/session.h"

namespace tally::server {
namespace {

using cmd::iequals;

void acl_help(proto::Reply& w) {
  static constexpr std::string_view kLines[] = {
      "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CAT [<category>]",
      "    List all commands that belong to <category>, or all command categories",
      "    when no category is specified.",
      "DELUSER <username> [<username> ...]",
      "    Delete a list of users.",
      "DRYRUN <username> <command> [<arg> ...]",
      "    Returns whether the user can execute the given command without executing the command.",
      "GETUSER <username>",
      "    Get the user's details.",
      "GENPASS [<bits>]",
      "    Generate a secure 256-bit user password. The optional `bits` argument can",
      "    be used to specify a different size.",
      "LIST",
      "    Show users details in config file format.",
      "LOAD",
      "    Reload users from the ACL file.",
      "LOG [<count> | RESET]",
      "    Show the ACL log entries.",
      "SAVE",
      "    Save the current config to the ACL file.",
      "SETUSER <username> <attribute> [<attribute> ...]",
      "    Create or modify a user with the specified attributes.",
      "USERS",
      "    List all the registered usernames.",
      "WHOAMI",
      "    Return the current connection username.",
      "HELP",
      "    Print this help.",
  };
  w.array(std::size(kLines));
  for (std::string_view l : kLines) w.simple(l);
}

constexpr std::string_view kNoAclFile =
    "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the "
    "ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in "
    "order to store users in the Redis configuration.";

void acl_cat(proto::Reply& w, Argv argv) {
  const auto names = acl_category_names();
  if (argv.size() == 2) {
    w.array(names.size());
    for (std::string_view n : names) w.bulk(n);
    return;
  }
  const std::string want = cmd::lower_ascii(argv[2]);
  auto it = std::find(names.begin(), names.end(), want);
  if (it == names.end()) {
    w.error("ERR Unknown category '" + std::string(argv[2]) + "'");
    return;
  }
  const uint32_t bit = 1u << static_cast<uint32_t>(it - names.begin());
  std::vector<std::string_view> list;
  for (const CommandEntry& e : CommandTable::instance().all()) {
    if (!(e.flags & kCmdInternal) && (acl_categories(e) & bit)) list.push_back(e.name);
  }
  w.array(list.size());
  for (std::string_view n : list) w.bulk(n);
}

void acl_genpass(proto::Reply& w, Argv argv) {
  int64_t bits = 256;
  if (argv.size() == 3 && (!proto::parse_strict_int64(argv[2], bits) || bits <= 0 || bits > 4096)) {
    w.error(
        "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to "
        "4096");
    return;
  }
  const size_t chars = static_cast<size_t>((bits + 3) / 4);
  std::string raw((chars + 1) / 2, '\0');
  TALLY_ASSERT_MSG(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) == 1,
                   "RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  out.resize(chars);
  w.bulk(out);
}

void acl_dryrun(Session& s, proto::Reply& w, Argv argv) {
  std::shared_ptr<const AclUser> u = s.server().acl().find(argv[2]);
  if (u == nullptr) {
    w.error("ERR User '" + std::string(argv[2]) + "' not found");
    return;
  }
  const CommandEntry* e = CommandTable::instance().find(argv[3]);
  if (e == nullptr || (e->flags & kCmdInternal)) {
    w.error("ERR Command '" + std::string(argv[3]) + "' not found");
    return;
  }
  const Argv cmd = argv.subspan(3);
  if (!CommandTable::arity_ok(*e, cmd.size())) {
    w.error("ERR wrong number of arguments for '" + std::string(e->name) + "' command");
    return;
  }
  std::string object;
  switch (u->check(*e, cmd, &object)) {
    case AclDenied::kNone:
      w.ok();
      break;
    case AclDenied::kCommand:
      w.bulk("This user has no permissions to run the '" + object + "' command");
      break;
    case AclDenied::kKey:
      w.bulk("This user has no permissions to access the '" + object + "' key");
      break;
    case AclDenied::kChannel:
      w.bulk("This user has no permissions to access the '" + object + "' channel");
      break;
  }
}

void acl_log(Session& s, proto::Reply& w, Argv argv) {
  AclRegistry& acl = s.server().acl();
  int64_t count = 10;
  if (argv.size() == 3) {
    if (iequals(argv[2], "reset")) {
      acl.log_reset();
      w.ok();
      return;
    }
    if (!proto::parse_strict_int64(argv[2], count) || count < 0) {
      w.error("ERR value is out of range, must be positive");
      return;
    }
  }
  const uint64_t now = s.server().env().wall_ms();
  const std::vector<AclLogEntry> entries = acl.log_entries(static_cast<size_t>(count));
  w.array(entries.size());
  for (const AclLogEntry& e : entries) {
    w.map(7);
    w.bulk("count");
    w.integer(static_cast<int64_t>(e.count));
    w.bulk("reason");
    w.bulk(e.reason);
    w.bulk("context");
    w.bulk(e.context);
    w.bulk("object");
    w.bulk(e.object);
    w.bulk("username");
    w.bulk(e.username);
    w.bulk("age-seconds");
    w.dbl(static_cast<double>(now - std::min(now, e.created_ms)) / 1000.0);
    w.bulk("client-info");
    w.bulk(e.client_info);
  }
}

}  // namespace

void cmd_acl(Session& s, Argv argv) {
  proto::Reply& w = s.out();
  AclRegistry& acl = s.server().acl();
  const std::string_view sub = argv[1];
  const size_t n = argv.size();
  if (iequals(sub, "help") && n == 2) {
    acl_help(w);
  } else if (iequals(sub, "whoami") && n == 2) {
    w.bulk(s.user().name());
  } else if (iequals(sub, "users") && n == 2) {
    const auto users = acl.users();
    w.array(users.size());
    for (const auto& u : users) w.bulk(u->name());
  } else if (iequals(sub, "list") && n == 2) {
    const auto users = acl.users();
    w.array(users.size());
    for (const auto& u : users) w.bulk(u->describe());
  } else if (iequals(sub, "getuser") && n == 3) {
    if (std::shared_ptr<const AclUser> u = acl.find(argv[2])) {
      u->write_getuser(w);
    } else {
      w.null();
    }
  } else if (iequals(sub, "setuser") && n >= 3) {
    const std::string_view name = argv[2];
    if (name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
          return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
        })) {
      w.error("ERR Usernames can't contain spaces or null characters");
      return;
    }
    Status st = acl.set_user(name, argv.subspan(3));
    if (st.is_ok()) {
      w.ok();
    } else {
      w.error(st.message());
    }
  } else if (iequals(sub, "deluser") && n >= 3) {
    for (size_t i = 2; i < n; ++i) {
      if (argv[i] == "default") {
        w.error("ERR The 'default' user cannot be removed");
        return;
      }
    }
    w.integer(static_cast<int64_t>(acl.delete_users(argv.subspan(2))));
  } else if (iequals(sub, "cat") && (n == 2 || n == 3)) {
    acl_cat(w, argv);
  } else if (iequals(sub, "genpass") && (n == 2 || n == 3)) {
    acl_genpass(w, argv);
  } else if (iequals(sub, "dryrun") && n >= 4) {
    acl_dryrun(s, w, argv);
  } else if (iequals(sub, "log") && (n == 2 || n == 3)) {
    acl_log(s, w, argv);
  } else if ((iequals(sub, "load") || iequals(sub, "save")) && n == 2) {
    const std::string aclfile = s.server().config_snapshot().aclfile;
    if (aclfile.empty()) {
      w.error(kNoAclFile);
      return;
    }
    Status st = iequals(sub, "load") ? acl.load_file(s.server().env(), aclfile)
                                     : acl.save_file(s.server().env(), aclfile);
    if (st.is_ok()) {
      w.ok();
    } else if (iequals(sub, "load")) {
      w.error("ERR Error loading ACLs from " + st.message());
    } else {
      w.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information: " +
              st.message());
    }
  } else {
    static constexpr std::string_view kKnown[] = {"help", "whoami", "users",   "list", "getuser", "setuser", "deluser",
                                                  "cat",  "genpass", "dryrun", "log",  "load",    "save"};
    const bool known = std::any_of(std::begin(kKnown), std::end(kKnown), [&](std::string_view k) { return iequals(sub, k); });
    const std::string low = cmd::lower_ascii(sub);
    w.error(known ? "ERR wrong number of arguments for 'acl|" + low + "' command"
                  : "ERR unknown subcommand '" + std::string(sub) + "'. Try ACL HELP.");
  }
}

}  // namespace tally::server
