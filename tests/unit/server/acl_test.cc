#include "host/server/acl.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "host/common/rng.h"
#include "host/server/command_table.h"
#include "tests/support/mem_env.h"

namespace tally::server {
namespace {

using Words = std::vector<std::string_view>;

const CommandEntry& entry(std::string_view name) {
  const CommandEntry* e = CommandTable::instance().find(name);
  EXPECT_NE(e, nullptr) << name;
  return *e;
}

AclDenied check(const AclUser& u, Words argv, std::string* object = nullptr) {
  return u.check(entry(argv[0]), argv, object);
}

AclUser user_with(Words rules) {
  AclUser u("u");
  for (std::string_view r : rules) EXPECT_TRUE(u.apply(r).is_ok()) << r;
  return u;
}

TEST(Acl, DefaultUserMayDoEverythingWithoutAPassword) {
  AclRegistry reg;
  auto d = reg.find("default");
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->unrestricted());
  EXPECT_TRUE(reg.default_open());
  EXPECT_EQ(d->describe(), "user default on nopass ~* &* +@all");
  reg.set_default_password("pw");
  EXPECT_FALSE(reg.default_open());
  EXPECT_EQ(reg.authenticate("default", "bad"), nullptr);
  EXPECT_NE(reg.authenticate("default", "pw"), nullptr);
  reg.set_default_password("");
  EXPECT_TRUE(reg.default_open());
}

TEST(Acl, CommandsCategoriesAndSubcommands) {
  AclUser u = user_with({"on", "nopass", "~*", "+get", "+@hash", "-hset", "+config|get"});
  EXPECT_EQ(check(u, {"get", "k"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"hget", "k", "f"}), AclDenied::kNone);
  std::string object;
  EXPECT_EQ(check(u, {"hset", "k", "f", "v"}, &object), AclDenied::kCommand);
  EXPECT_EQ(object, "hset");
  EXPECT_EQ(check(u, {"set", "k", "v"}), AclDenied::kCommand);
  EXPECT_EQ(check(u, {"config", "GET", "maxmemory"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"config", "set", "maxmemory", "1"}, &object), AclDenied::kCommand);
  EXPECT_EQ(object, "config|set");
  // AUTH and HELLO are always allowed: a user must be able to log in.
  EXPECT_EQ(check(u, {"auth", "x"}), AclDenied::kNone);
  EXPECT_EQ(u.describe(), "user u on nopass ~* resetchannels -@all +get +@hash -hset +config|get");
  // A later rule for the same target replaces the earlier one in the description.
  ASSERT_TRUE(u.apply("+hset").is_ok());
  EXPECT_EQ(check(u, {"hset", "k", "f", "v"}), AclDenied::kNone);
  EXPECT_EQ(u.describe(), "user u on nopass ~* resetchannels -@all +get +@hash +config|get +hset");
}

TEST(Acl, AclSubcommandsFollowTheirOwnCategories) {
  AclUser u = user_with({"on", "nopass", "~*", "&*", "+@all", "-@admin"});
  EXPECT_EQ(check(u, {"acl", "whoami"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"acl", "setuser", "x"}), AclDenied::kCommand);
  AclUser v = user_with({"on", "nopass", "-@all", "+@slow", "-@admin"});
  EXPECT_EQ(check(v, {"acl", "whoami"}), AclDenied::kNone);
  EXPECT_EQ(check(v, {"acl", "list"}), AclDenied::kCommand);
  AclUser w = user_with({"on", "nopass", "-@all", "+@slow", "-acl"});
  EXPECT_EQ(check(w, {"acl", "whoami"}), AclDenied::kCommand);
}

TEST(Acl, KeyPatternsWithReadAndWritePermission) {
  AclUser u = user_with({"on", "nopass", "+@all", "~app:*", "%R~ro:*", "%W~wo:*"});
  EXPECT_FALSE(u.unrestricted());
  std::string object;
  EXPECT_EQ(check(u, {"set", "app:1", "v"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"get", "app:1"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"get", "ro:1"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"set", "ro:1", "v"}, &object), AclDenied::kKey);
  EXPECT_EQ(object, "ro:1");
  EXPECT_EQ(check(u, {"set", "wo:1", "v"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"get", "wo:1"}), AclDenied::kKey);
  EXPECT_EQ(check(u, {"mget", "app:1", "other"}, &object), AclDenied::kKey);
  EXPECT_EQ(object, "other");
  // Keys after a count, and after STREAMS.
  EXPECT_EQ(check(u, {"sintercard", "2", "app:a", "zzz"}), AclDenied::kKey);
  EXPECT_EQ(check(u, {"xread", "STREAMS", "app:s", "zzz", "0", "0"}), AclDenied::kKey);
  EXPECT_EQ(check(u, {"xread", "STREAMS", "app:s", "0"}), AclDenied::kNone);
  EXPECT_EQ(u.describe(), "user u on nopass ~app:* %R~ro:* %W~wo:* resetchannels +@all");
  // Keyless commands need no key permission.
  EXPECT_EQ(check(u, {"dbsize"}), AclDenied::kNone);
}

TEST(Acl, ChannelsAndLiteralPatterns) {
  AclUser u = user_with({"on", "nopass", "+@all", "~*", "&news.*"});
  std::string object;
  EXPECT_EQ(check(u, {"publish", "news.1", "m"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"publish", "other", "m"}, &object), AclDenied::kChannel);
  EXPECT_EQ(object, "other");
  EXPECT_EQ(check(u, {"subscribe", "news.a", "news.b"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"subscribe", "news.a", "x"}), AclDenied::kChannel);
  // A pattern subscription must name an allowed pattern itself: news.1* matches news.* as a
  // channel name but would receive more than the user may see... as Redis, patterns compare literally.
  EXPECT_EQ(check(u, {"psubscribe", "news.*"}), AclDenied::kNone);
  EXPECT_EQ(check(u, {"psubscribe", "*"}), AclDenied::kChannel);
  EXPECT_EQ(check(u, {"unsubscribe", "x"}), AclDenied::kNone);
}

TEST(Acl, PasswordsAreKeptAsHashes) {
  AclUser u("u");
  ASSERT_TRUE(u.apply(">one").is_ok());
  ASSERT_TRUE(u.apply("#" + acl_hash_password("two")).is_ok());
  EXPECT_TRUE(u.password_matches("one"));
  EXPECT_TRUE(u.password_matches("two"));
  EXPECT_FALSE(u.password_matches("three"));
  EXPECT_EQ(u.describe().find("one"), std::string::npos);
  EXPECT_NE(u.describe().find("#" + acl_hash_password("one")), std::string::npos);
  ASSERT_TRUE(u.apply("<one").is_ok());
  EXPECT_FALSE(u.password_matches("one"));
  ASSERT_TRUE(u.apply("!" + acl_hash_password("two")).is_ok());
  EXPECT_FALSE(u.password_matches("two"));
  ASSERT_TRUE(u.apply("nopass").is_ok());
  EXPECT_TRUE(u.password_matches("anything"));
  ASSERT_TRUE(u.apply("resetpass").is_ok());
  EXPECT_FALSE(u.password_matches("anything"));
  EXPECT_EQ(acl_hash_password("pw"), "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
}

TEST(Acl, BadRulesAreRefusedWithRedisWords) {
  const std::pair<const char*, const char*> cases[] = {
      {"#abc", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"},
      {"!ABC", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"},
      {"<nope", "The password you are trying to remove from the user does not exist"},
      {"+nosuch", "Unknown command or category name in ACL"},
      {"+@nosuch", "Unknown command or category name in ACL"},
      {"-get|foo", "Unknown command or category name in ACL"},
      {"+config|get|x", "Allowing first-arg of a subcommand is not supported"},
      {"%X~a", "Syntax error"},
      {"badrule", "Syntax error"},
      {"", "Syntax error"},
      {"+", "Syntax error"},
      {"+mc.get", "Unknown command or category name in ACL"},  // internal forms are not commands
  };
  for (const auto& [rule, message] : cases) {
    AclUser u("u");
    Status st = u.apply(rule);
    EXPECT_FALSE(st.is_ok()) << rule;
    EXPECT_EQ(st.message(), message) << rule;
  }
  AclUser u = user_with({"allkeys"});
  EXPECT_FALSE(u.apply("~x").is_ok());
  AclUser v = user_with({"allchannels"});
  EXPECT_FALSE(v.apply("&x").is_ok());
}

TEST(Acl, SetUserIsAllOrNothing) {
  AclRegistry reg;
  const uint64_t g0 = reg.generation();
  const std::string_view rules[] = {"on", ">pw", "~*", "+get"};
  ASSERT_TRUE(reg.set_user("alice", rules).is_ok());
  EXPECT_GT(reg.generation(), g0);
  const std::string before = reg.find("alice")->describe();
  const std::string_view bad[] = {"off", "+set", "+nosuch"};
  Status st = reg.set_user("alice", bad);
  EXPECT_EQ(st.message(), "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
  EXPECT_EQ(reg.find("alice")->describe(), before);
  const std::string_view names[] = {"alice", "nobody", "default"};
  EXPECT_EQ(reg.delete_users(names), 1u);
  EXPECT_EQ(reg.find("alice"), nullptr);
  EXPECT_NE(reg.find("default"), nullptr);
}

// Every user's ACL LIST line, applied to a fresh user, gives a user that decides every command the
// same way: what ACL SAVE writes is what ACL LOAD reads back.
TEST(Acl, DescriptionsReproduceTheUser) {
  const std::vector<std::string> vocabulary = {
      "on", "off", "nopass", "resetpass", ">a", ">b", "<a", "allkeys", "resetkeys", "~k1*", "%R~r*", "%W~w*",
      "allchannels", "resetchannels", "&c*", "+@all", "-@all", "+@read", "-@write", "+@hash", "-@admin",
      "+@slow", "-@slow", "+@dangerous", "-@keyspace", "+get", "-get", "+set", "-hset", "+config|get",
      "-config|set", "+client|list", "+acl", "-acl", "reset", "+publish", "+subscribe", "+psubscribe"};
  const std::vector<std::vector<std::string>> probes = {
      {"get", "k1a"}, {"get", "r1"},  {"set", "w1", "v"}, {"set", "k1", "v"}, {"hset", "k1", "f", "v"},
      {"hget", "r", "f"}, {"config", "get", "x"}, {"config", "set", "x", "y"}, {"client", "list"},
      {"client", "kill", "x"}, {"acl", "whoami"}, {"acl", "setuser", "x"}, {"flushall"}, {"keys", "*"},
      {"publish", "c1", "m"}, {"publish", "d", "m"}, {"subscribe", "c1"}, {"psubscribe", "c*"},
      {"del", "k1", "r1"}, {"dbsize"}, {"info"}};
  Rng rng(42);
  for (int round = 0; round < 3000; ++round) {
    AclUser u("u");
    const size_t n = 1 + rng.uniform(10);
    for (size_t i = 0; i < n; ++i) (void)u.apply(vocabulary[rng.uniform(vocabulary.size())]);
    const std::string line = u.describe();
    AclUser copy("u");
    size_t at = std::string("user u ").size();
    while (at < line.size()) {
      size_t sp = line.find(' ', at);
      if (sp == std::string::npos) sp = line.size();
      ASSERT_TRUE(copy.apply(std::string_view(line).substr(at, sp - at)).is_ok()) << line;
      at = sp + 1;
    }
    ASSERT_EQ(copy.describe(), line);
    for (const auto& p : probes) {
      std::vector<std::string_view> argv(p.begin(), p.end());
      ASSERT_EQ(check(u, argv), check(copy, argv)) << line << " / " << p[0];
    }
    EXPECT_EQ(u.password_matches("a"), copy.password_matches("a"));
    EXPECT_EQ(u.unrestricted(), copy.unrestricted());
  }
}

TEST(Acl, FileLoadAndSave) {
  testing::MemEnv env;
  ASSERT_TRUE(env.create_dirs("/etc").is_ok());
  AclRegistry reg;
  const std::string_view rules[] = {"on", ">pw", "~app:*", "&news", "-@all", "+get", "+config|get"};
  ASSERT_TRUE(reg.set_user("alice", rules).is_ok());
  reg.set_default_password("root");
  ASSERT_TRUE(reg.save_file(env, "/etc/users.acl").is_ok());
  AclRegistry other;
  ASSERT_TRUE(other.load_file(env, "/etc/users.acl").is_ok());
  ASSERT_EQ(other.users().size(), 2u);
  EXPECT_EQ(other.find("alice")->describe(), reg.find("alice")->describe());
  EXPECT_NE(other.authenticate("default", "root"), nullptr);
  EXPECT_NE(other.authenticate("alice", "pw"), nullptr);

  // A bad line names the file and line, and nothing changes.
  auto f = env.open_file("/etc/bad.acl", OpenMode::kCreate);
  ASSERT_TRUE(f.is_ok());
  ASSERT_TRUE((*f)->write_at(0, "# users\nuser bob on nopass +get\n\nuser carol on +nosuch\n").is_ok());
  Status st = other.load_file(env, "/etc/bad.acl");
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.message(), "/etc/bad.acl:4: '+nosuch': Unknown command or category name in ACL");
  EXPECT_EQ(other.find("bob"), nullptr);
  EXPECT_NE(other.find("alice"), nullptr);
  // A file without the default user gets the usual one.
  ASSERT_TRUE((*f)->truncate(0).is_ok());
  ASSERT_TRUE((*f)->write_at(0, "user bob on nopass +get\n").is_ok());
  ASSERT_TRUE(other.load_file(env, "/etc/bad.acl").is_ok());
  EXPECT_TRUE(other.default_open());
  EXPECT_EQ(other.find("alice"), nullptr);
  EXPECT_FALSE(other.load_file(env, "/etc/missing.acl").is_ok());
}

TEST(Acl, FailedLoginsAreLimitedPerAddress) {
  AclRegistry reg;
  reg.set_login_limit(3, 2);
  uint64_t t = 1000;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(reg.login_allowed("10.0.0.1", t));
    reg.login_failed("10.0.0.1", t);
  }
  EXPECT_FALSE(reg.login_allowed("10.0.0.1", t));
  EXPECT_TRUE(reg.login_allowed("10.0.0.2", t));  // another address is not affected
  EXPECT_EQ(reg.counters().auth_rate_limited.load(), 1u);
  EXPECT_FALSE(reg.login_allowed("10.0.0.1", t + 400));
  EXPECT_TRUE(reg.login_allowed("10.0.0.1", t + 500));  // 2 a second: one more after 500 ms
  reg.login_failed("10.0.0.1", t + 500);
  EXPECT_FALSE(reg.login_allowed("10.0.0.1", t + 600));
  reg.set_login_limit(0, 0);
  EXPECT_TRUE(reg.login_allowed("10.0.0.1", t + 600));
}

TEST(Acl, LogGroupsEqualDenials) {
  AclRegistry reg;
  reg.set_log_max(2);
  AclLogEntry e{"command", "toplevel", "set", "alice", "id=1", 1, 0, 0};
  reg.log(e, 1000);
  reg.log(e, 2000);
  auto entries = reg.log_entries(10);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].count, 2u);
  reg.log(e, 100000);  // more than 60 s later: a new entry
  e.object = "get";
  reg.log(e, 100001);
  entries = reg.log_entries(10);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].object, "get");
  reg.log_reset();
  EXPECT_TRUE(reg.log_entries(10).empty());
}

TEST(Acl, CategoriesFollowRedis) {
  const auto cats = [](std::string_view n) { return acl_categories(entry(n)); };
  EXPECT_TRUE(cats("get") & kCatRead);
  EXPECT_TRUE(cats("get") & kCatString);
  EXPECT_TRUE(cats("get") & kCatFast);
  EXPECT_TRUE(cats("set") & kCatWrite);
  EXPECT_TRUE(cats("keys") & kCatDangerous);
  EXPECT_TRUE(cats("flushall") & kCatDangerous);
  EXPECT_TRUE(cats("blpop") & kCatBlocking);
  EXPECT_TRUE(cats("xread") & kCatBlocking);
  EXPECT_TRUE(cats("zadd") & kCatSortedSet);
  EXPECT_TRUE(cats("config") & kCatAdmin);
  EXPECT_TRUE(cats("multi") & kCatTransaction);
  EXPECT_FALSE(cats("get") & kCatSlow);
}

}  // namespace
}  // namespace tally::server
