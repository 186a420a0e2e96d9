#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "host/server/command_table.h"
#include "host/server/config.h"

namespace tally::server {
namespace {

std::string write_temp(const std::string& text) {
  char name[] = "/tmp/tally-config-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

TEST(Config, MemorySizes) {
  EXPECT_EQ(*parse_memory("100"), 100u);
  EXPECT_EQ(*parse_memory("1kb"), 1024u);
  EXPECT_EQ(*parse_memory("1k"), 1000u);
  EXPECT_EQ(*parse_memory("64MB"), 64ull << 20);
  EXPECT_EQ(*parse_memory("2gb"), 2ull << 30);
  EXPECT_FALSE(parse_memory("12xb").is_ok());
  EXPECT_FALSE(parse_memory("").is_ok());
  EXPECT_FALSE(parse_memory("99999999999999999999gb").is_ok());
}

TEST(Config, FileThenFlagsOverride) {
  std::string path = write_temp("port = 7000\nmaxmemory = \"10mb\"\nmaxmemory_policy = \"allkeys-lfu\"\n"
                                "protected_mode = false\nrequirepass = \"pw\"\n");
  Config c;
  ASSERT_TRUE(parse_command_line({"--port", "7001", "--config", path, "--threads=3"}, c).is_ok());
  ASSERT_TRUE(validate(c).is_ok());
  EXPECT_EQ(c.port, 7001);  // flags win wherever --config stands
  EXPECT_EQ(c.maxmemory_bytes, 10ull << 20);
  EXPECT_EQ(c.maxmemory_policy, EvictionPolicy::kAllKeysLfu);
  EXPECT_FALSE(c.protected_mode);
  EXPECT_EQ(c.requirepass, "pw");
  EXPECT_EQ(c.threads, 3u);
  EXPECT_EQ(c.config_file, path);
  std::remove(path.c_str());
}

TEST(Config, UnknownKeysAndBadValuesAreErrorsNamingThem) {
  std::string path = write_temp("prot = 7000\n");
  Config c;
  Status s = load_config_file(path, c);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("unknown config key 'prot'"), std::string::npos) << s.message();
  std::remove(path.c_str());

  path = write_temp("port = 70000\n");
  s = load_config_file(path, c);
  EXPECT_NE(s.message().find("'port'"), std::string::npos) << s.message();
  std::remove(path.c_str());

  path = write_temp("port = [1, 2]\n");
  EXPECT_FALSE(load_config_file(path, c).is_ok());
  std::remove(path.c_str());

  path = write_temp("this is not toml\n");
  EXPECT_FALSE(load_config_file(path, c).is_ok());
  std::remove(path.c_str());

  EXPECT_FALSE(load_config_file("/nonexistent/tally.toml", c).is_ok());
  Config d;
  EXPECT_NE(parse_command_line({"--bogus", "1"}, d).message().find("unknown option '--bogus'"), std::string::npos);
  EXPECT_FALSE(parse_command_line({"--port"}, d).is_ok());
  EXPECT_EQ(parse_command_line({"--help"}, d).code(), Code::kNotFound);
}

TEST(Config, Validate) {
  Config c;
  c.io = "select";
  EXPECT_FALSE(validate(c).is_ok());
  c = Config{};
  c.memcached_port = c.port;
  EXPECT_FALSE(validate(c).is_ok());
  c = Config{};
  c.loglevel = "loud";
  EXPECT_FALSE(validate(c).is_ok());
  c = Config{};
  c.threads = 0;
  ASSERT_TRUE(validate(c).is_ok());
  EXPECT_GE(c.threads, 1u);
}

TEST(Config, MemcachedAndAdminPortsFollowTheClientPortUnlessSet) {
  Config c;
  ASSERT_TRUE(validate(c).is_ok());
  EXPECT_EQ(c.memcached_port, 11211);
  EXPECT_EQ(c.admin_port, 9121);
  Config second;
  ASSERT_TRUE(parse_command_line({"--port", "6380"}, second).is_ok());
  ASSERT_TRUE(validate(second).is_ok());
  EXPECT_EQ(second.memcached_port, 11212);
  EXPECT_EQ(second.admin_port, 9122);
  Config set;
  ASSERT_TRUE(parse_command_line({"--port", "6380", "--memcached-port", "0", "--admin-port", "9300"}, set).is_ok());
  ASSERT_TRUE(validate(set).is_ok());
  EXPECT_EQ(set.memcached_port, 0);
  EXPECT_EQ(set.admin_port, 9300);
  Config high;
  ASSERT_TRUE(parse_command_line({"--port", "65000"}, high).is_ok());
  ASSERT_TRUE(validate(high).is_ok());
  EXPECT_EQ(high.memcached_port, 0);  // past the last port: off
  EXPECT_EQ(high.admin_port, 0);
  Config clash;
  ASSERT_TRUE(parse_command_line({"--port", "6379", "--admin-port", "6379"}, clash).is_ok());
  EXPECT_FALSE(validate(clash).is_ok());
}

TEST(CommandTable, LookupArityAndKeys) {
  const CommandTable& t = CommandTable::instance();
  const CommandEntry* get = t.find("GeT");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->name, "get");
  EXPECT_TRUE(CommandTable::arity_ok(*get, 2));
  EXPECT_FALSE(CommandTable::arity_ok(*get, 3));
  EXPECT_EQ(t.find("nosuch"), nullptr);
  EXPECT_EQ(t.find(std::string(100, 'a')), nullptr);
  const CommandEntry* mset = t.find("mset");
  ASSERT_NE(mset, nullptr);
  std::vector<size_t> pos;
  std::vector<std::string_view> argv = {"mset", "a", "1", "b", "2", "c", "3"};
  CommandTable::key_positions(*mset, argv, pos);
  EXPECT_EQ(pos, (std::vector<size_t>{1, 3, 5}));
  argv = {"ping"};
  CommandTable::key_positions(*t.find("ping"), argv, pos);
  EXPECT_TRUE(pos.empty());
  argv = {"sintercard", "2", "s1", "s2", "LIMIT", "5"};
  CommandTable::key_positions(*t.find("sintercard"), argv, pos);
  EXPECT_EQ(pos, (std::vector<size_t>{2, 3}));
  // Every name is unique and findable, server commands included.
  for (const auto& e : t.all()) EXPECT_EQ(t.find(e.name), &e);
  EXPECT_NE(t.find("hello"), nullptr);
  EXPECT_TRUE(t.find("auth")->flags & kCmdNoAuth);
}

}  // namespace
}  // namespace tally::server
