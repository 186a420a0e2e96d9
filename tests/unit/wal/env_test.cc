// The test environments themselves: MemEnv's crash model (synced data and names survive, unsynced
// ones survive as a random prefix) and FaultEnv's injected faults, counts and damage helpers.
#include <gtest/gtest.h>

#include <set>

#include "host/common/rng.h"
#include "tests/support/fault_env.h"
#include "tests/support/mem_env.h"

namespace tally::testing {
namespace {

std::string read_all(Env& env, const std::string& path) {
  auto r = env.read_file(path);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

TEST(MemEnv, FilesAndDirectories) {
  MemEnv env;
  ASSERT_TRUE(env.create_dirs("/a/b").is_ok());
  EXPECT_TRUE(env.exists("/a"));
  EXPECT_EQ(env.open_file("/nope/x", OpenMode::kCreate).status().code(), Code::kNotFound);
  EXPECT_EQ(env.open_file("/a/b/x", OpenMode::kRead).status().code(), Code::kNotFound);
  auto f = env.open_file("/a/b/x", OpenMode::kCreateNew);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(env.open_file("/a/b/x", OpenMode::kCreateNew).status().code(), Code::kAlreadyExists);
  ASSERT_TRUE((*f)->allocate(16).is_ok());
  ASSERT_TRUE((*f)->write_at(4, "abc").is_ok());
  EXPECT_EQ(read_all(env, "/a/b/x"), std::string("\0\0\0\0abc", 7) + std::string(9, '\0'));
  ASSERT_TRUE(env.rename_file("/a/b/x", "/a/b/y").is_ok());
  EXPECT_FALSE(env.exists("/a/b/x"));
  EXPECT_EQ(*env.list_dir("/a"), std::vector<std::string>{"b"});
  EXPECT_EQ(*env.list_dir("/a/b"), std::vector<std::string>{"y"});
  ASSERT_TRUE(env.remove_file("/a/b/y").is_ok());
  EXPECT_TRUE(env.list_dir("/a/b")->empty());
  EXPECT_EQ(env.random_seed(), MemEnv().random_seed());  // deterministic
}

TEST(MemEnv, CrashKeepsSyncedDataAndSyncedNames) {
  MemEnv env;
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  auto f = env.open_file("/d/f", OpenMode::kCreate);
  ASSERT_TRUE((*f)->write_at(0, "durable").is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());
  ASSERT_TRUE(env.sync_dir("/d").is_ok());
  ASSERT_TRUE((*f)->write_at(7, "-maybe").is_ok());
  EXPECT_EQ(env.unsynced_writes("/d/f"), 1u);
  Rng rng(1);
  env.crash(rng);
  // The old handle is dead; the file holds the synced bytes and a prefix of the rest.
  EXPECT_FALSE((*f)->write_at(0, "x").is_ok());
  const std::string got = read_all(env, "/d/f");
  EXPECT_EQ(got.substr(0, 7), "durable");
  EXPECT_EQ(got, std::string("durable-maybe").substr(0, got.size()));
}

TEST(MemEnv, UnsyncedNamesMayVanishAndUnsyncedBytesComeBackAsAPrefix) {
  std::set<size_t> lengths;
  int vanished = 0, kept = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    MemEnv env(seed);
    ASSERT_TRUE(env.create_dirs("/d").is_ok());
    {
      auto f = env.open_file("/d/f", OpenMode::kCreate);
      ASSERT_TRUE((*f)->write_at(0, "0123456789").is_ok());
      ASSERT_TRUE((*f)->sync().is_ok());  // data synced, name not
      auto g = env.open_file("/d/g", OpenMode::kCreate);
      ASSERT_TRUE((*g)->write_at(0, "abcdef").is_ok());
      ASSERT_TRUE((*g)->write_at(6, "ghij").is_ok());
    }
    Rng rng(seed);
    env.crash(rng);
    if (!env.exists("/d/f")) {
      ++vanished;
      EXPECT_FALSE(env.exists("/d/g"));  // names come back in order
      continue;
    }
    ++kept;
    EXPECT_EQ(read_all(env, "/d/f"), "0123456789");
    if (env.exists("/d/g")) {
      const std::string g = read_all(env, "/d/g");
      EXPECT_EQ(g, std::string("abcdefghij").substr(0, g.size()));
      lengths.insert(g.size());
    }
  }
  EXPECT_GT(vanished, 0);
  EXPECT_GT(kept, 0);
  EXPECT_GT(lengths.size(), 5u);  // torn at many places, 0 and 10 included over enough seeds
}

TEST(MemEnv, RemoveAndRenameAreUndoneByACrashUntilTheDirectoryIsSynced) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    MemEnv env(seed);
    ASSERT_TRUE(env.create_dirs("/d").is_ok());
    {
      auto f = env.open_file("/d/a", OpenMode::kCreate);
      ASSERT_TRUE((*f)->write_at(0, "A").is_ok());
      ASSERT_TRUE((*f)->sync().is_ok());
    }
    ASSERT_TRUE(env.sync_dir("/d").is_ok());
    ASSERT_TRUE(env.rename_file("/d/a", "/d/b").is_ok());
    Rng rng(seed);
    env.crash(rng);
    // The rename is atomic: exactly one of the names.
    EXPECT_NE(env.exists("/d/a"), env.exists("/d/b"));
    ASSERT_TRUE(env.remove_file(env.exists("/d/a") ? "/d/a" : "/d/b").is_ok());
    ASSERT_TRUE(env.sync_dir("/d").is_ok());
    env.crash(rng);
    EXPECT_TRUE(env.list_dir("/d")->empty());
  }
}

TEST(MemEnv, DropUnsyncedRevertsToTheSyncedContents) {
  MemEnv env;
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  auto f = env.open_file("/d/f", OpenMode::kCreate);
  ASSERT_TRUE((*f)->write_at(0, "old").is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());
  ASSERT_TRUE((*f)->write_at(0, "new").is_ok());
  env.drop_unsynced("/d/f");
  EXPECT_EQ(read_all(env, "/d/f"), "old");
}

TEST(FaultEnv, FailsTheNthMatchingCallOnly) {
  MemEnv mem;
  FaultEnv env(mem, 1);
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  const int id = env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, "*.wal", 2, 1});
  auto w = env.open_file("/d/1.wal", OpenMode::kCreate);
  auto o = env.open_file("/d/other", OpenMode::kCreate);
  EXPECT_TRUE((*o)->sync().is_ok());  // another name does not count
  EXPECT_TRUE((*w)->sync().is_ok());
  EXPECT_TRUE((*w)->sync().is_ok());
  const Status third = (*w)->sync();
  EXPECT_EQ(third.code(), Code::kIoError);
  EXPECT_TRUE((*w)->sync().is_ok());
  EXPECT_EQ(env.fired(id), 1u);
  EXPECT_EQ(env.calls(FaultOp::kSync), 5u);
}

TEST(FaultEnv, ShortWriteLeavesAPrefixAndFailedSyncCallsTheHook) {
  MemEnv mem;
  FaultEnv env(mem, 2);
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  std::string dropped;
  env.on_failed_sync = [&](const std::string& path) { dropped = path; };
  env.inject(Fault{FaultOp::kWrite, FaultKind::kShortWrite, "*", 0, 1, 3});
  env.inject(Fault{FaultOp::kSync, FaultKind::kIoError, "*", 0, 1});
  auto f = env.open_file("/d/f", OpenMode::kCreate);
  EXPECT_EQ((*f)->write_at(0, "abcdef").code(), Code::kIoError);
  EXPECT_EQ(read_all(mem, "/d/f"), "abc");
  EXPECT_FALSE((*f)->sync().is_ok());
  EXPECT_EQ(dropped, "/d/f");
}

TEST(FaultEnv, SpaceLimitFailsAllocateAndWritesPastIt) {
  MemEnv mem;
  FaultEnv env(mem, 3);
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  env.set_space_limit(100);
  auto a = env.open_file("/d/a", OpenMode::kCreate);
  ASSERT_TRUE((*a)->allocate(60).is_ok());
  auto b = env.open_file("/d/b", OpenMode::kCreate);
  EXPECT_EQ((*b)->allocate(60).code(), Code::kResourceExhausted);
  EXPECT_EQ((*b)->write_at(0, std::string(50, 'x')).code(), Code::kResourceExhausted);
  EXPECT_EQ(read_all(mem, "/d/b").size(), 40u);  // what fitted went in
  EXPECT_TRUE((*a)->write_at(0, std::string(60, 'y')).is_ok());  // inside its allocation
  ASSERT_TRUE(env.remove_file("/d/a").is_ok());
  EXPECT_TRUE((*b)->allocate(60).is_ok());
  EXPECT_EQ(env.space_used(), 60u);
}

TEST(FaultEnv, AnyChangeStopsEverythingAfterTheCut) {
  MemEnv mem;
  FaultEnv env(mem, 4);
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  env.inject(Fault{FaultOp::kAnyChange, FaultKind::kIoError, "*", 2, kFaultForever});
  auto f = env.open_file("/d/f", OpenMode::kCreate);
  EXPECT_TRUE((*f)->write_at(0, "a").is_ok());
  EXPECT_TRUE((*f)->sync().is_ok());
  EXPECT_FALSE((*f)->write_at(1, "b").is_ok());
  EXPECT_FALSE(env.sync_dir("/d").is_ok());
  EXPECT_FALSE(env.remove_file("/d/f").is_ok());
}

TEST(FaultEnv, DamageHelpers) {
  MemEnv mem;
  FaultEnv env(mem, 5);
  ASSERT_TRUE(env.create_dirs("/d").is_ok());
  {
    auto f = env.open_file("/d/f", OpenMode::kCreate);
    ASSERT_TRUE((*f)->write_at(0, "abcdefgh").is_ok());
  }
  ASSERT_TRUE(env.flip_bit("/d/f", 1, 0).is_ok());
  EXPECT_EQ(read_all(mem, "/d/f"), "accdefgh");
  ASSERT_TRUE(env.zero_range("/d/f", 2, 2).is_ok());
  EXPECT_EQ(read_all(mem, "/d/f"), std::string("ac\0\0efgh", 8));
  ASSERT_TRUE(env.truncate_file("/d/f", 3).is_ok());
  EXPECT_EQ(read_all(mem, "/d/f"), std::string("ac\0", 3));
  EXPECT_FALSE(env.flip_bit("/d/f", 10, 0).is_ok());
  // Damage is durable: it survives a crash.
  ASSERT_TRUE(mem.sync_dir("/d").is_ok());
  Rng rng(1);
  mem.crash(rng);
  EXPECT_EQ(read_all(mem, "/d/f"), std::string("ac\0", 3));
}

}  // namespace
}  // namespace tally::testing
