#include "host/replication/raft/wire.h"

#include <gtest/gtest.h>

#include "host/common/rng.h"

namespace tally::raft {
namespace {

std::string random_bytes(Rng& rng, size_t max) {
  std::string s(rng.uniform(max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng.next());
  return s;
}

Message random_message(Rng& rng) {
  Message m;
  m.type = static_cast<MessageType>(rng.uniform(12));
  m.from = rng.range(1, 1000);
  m.to = rng.range(1, 1000);
  m.term = rng.next();
  m.log_term = rng.next();
  m.index = rng.next();
  m.commit = rng.next();
  m.reject = rng.chance(1, 2);
  m.reject_hint = rng.next();
  m.round = rng.next();
  m.transfer = rng.chance(1, 2);
  m.context = random_bytes(rng, 20);
  const Index first = rng.range(1, 1u << 30);
  const size_t n = rng.uniform(5);
  for (size_t i = 0; i < n; ++i) {
    m.entries.push_back(Entry{rng.next(), first + i, static_cast<EntryType>(rng.uniform(3)), random_bytes(rng, 50)});
  }
  if (rng.chance(1, 3)) {
    m.snapshot.metadata.index = rng.range(1, 1u << 30);
    m.snapshot.metadata.term = rng.next();
    for (NodeId v = 1; v <= 5; ++v) {
      if (rng.chance(1, 2)) m.snapshot.metadata.conf.voters.push_back(v);
      else if (rng.chance(1, 2)) m.snapshot.metadata.conf.learners.push_back(v);
    }
    m.snapshot.data = random_bytes(rng, 200);
  }
  return m;
}

std::vector<Message> random_batch(Rng& rng) {
  std::vector<Message> batch(rng.uniform(4));
  for (Message& m : batch) m = random_message(rng);
  return batch;
}

TEST(RaftWire, EveryFieldSurvivesTheRoundTrip) {
  Rng rng(7);
  for (int i = 0; i < 2000; ++i) {
    const std::vector<Message> batch = random_batch(rng);
    std::string bytes;
    encode_messages(batch, bytes);
    auto back = decode_messages(bytes);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    ASSERT_EQ(*back, batch) << "batch " << i;
  }
}

TEST(RaftWire, EveryCutIsRefused) {
  Rng rng(11);
  for (int i = 0; i < 50; ++i) {
    std::vector<Message> batch = random_batch(rng);
    batch.push_back(random_message(rng));
    std::string bytes;
    encode_messages(batch, bytes);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      EXPECT_FALSE(decode_messages(std::string_view(bytes).substr(0, cut)).is_ok()) << "cut at " << cut;
    }
    EXPECT_FALSE(decode_messages(bytes + "x").is_ok()) << "a trailing byte";
  }
}

TEST(RaftWire, FlippedBytesNeverCrashAndLiesAreNamed) {
  Rng rng(13);
  for (int i = 0; i < 100; ++i) {
    std::string bytes;
    encode_messages(random_batch(rng), bytes);
    for (size_t at = 0; at < bytes.size(); ++at) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ (1 + rng.uniform(255)));
      auto r = decode_messages(bad);  // decoded or refused; never a crash or a read past the end
      if (!r.is_ok()) {
        EXPECT_EQ(r.status().code(), Code::kCorruption);
      }
    }
  }
}

std::string one(const Message& m) {
  std::string bytes;
  encode_messages(std::span<const Message>(&m, 1), bytes);
  return bytes;
}

void expect_refused(const std::string& bytes, const std::string& why) {
  auto r = decode_messages(bytes);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
}

TEST(RaftWire, SpecificLiesAreRefused) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = 1;
  m.to = 2;
  m.entries = {Entry{1, 5, EntryType::kNormal, "a"}, Entry{1, 6, EntryType::kNormal, "b"}};
  const std::string good = one(m);
  ASSERT_TRUE(decode_messages(good).is_ok());

  std::string v = good;
  v[0] = 2;
  expect_refused(v, "version");

  std::string count = good;  // claims a billion messages
  count[1] = count[2] = count[3] = 0;
  count[4] = 0x40;
  expect_refused(count, "message count beyond");

  std::string type = good;
  type[5] = 12;
  expect_refused(type, "unknown message type");

  Message zero = m;
  zero.from = 0;
  expect_refused(one(zero), "node 0");

  Message gap = m;
  gap.entries[1].index = 8;
  expect_refused(one(gap), "not consecutive");

  Message et = m;
  std::string e = one(et);
  // The first entry's type byte: after the header (5), fixed fields (2 + 64), context length (4,
  // empty), entry count (4), then term and index (16).
  e[5 + 66 + 4 + 4 + 16] = 9;
  expect_refused(e, "unknown entry type");

  std::string many = good;  // entry count far beyond the bytes left
  const size_t at = 5 + 66 + 4;
  many[at] = static_cast<char>(0xff);
  many[at + 1] = static_cast<char>(0xff);
  many[at + 2] = static_cast<char>(0xff);
  expect_refused(many, "entry count beyond");

  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = 1;
  snap.to = 2;
  snap.snapshot.metadata.index = 9;
  snap.snapshot.metadata.conf.voters = {3, 1};
  expect_refused(one(snap), "not sorted");

  // A snapshot flagged but at index 0 would decode to a message that encodes without it.
  Message zero_snap = snap;
  zero_snap.snapshot.metadata.conf.voters = {1, 3};
  std::string z = one(zero_snap);
  const size_t index_at = 5 + 66 + 4 + 4;  // after the header, fixed fields, empty context, no entries
  for (size_t i = 0; i < 8; ++i) z[index_at + i] = 0;
  expect_refused(z, "index 0");
}

}  // namespace
}  // namespace tally::raft
