// MemoryStorage and the conf-change encoding.
#include <gtest/gtest.h>

#include "host/replication/raft/storage.h"

namespace tally::raft {
namespace {

std::vector<Entry> ents(Index from, Index to, Term t) {
  std::vector<Entry> v;
  for (Index i = from; i <= to; ++i) v.push_back(Entry{t, i, EntryType::kNormal, "e" + std::to_string(i)});
  return v;
}

TEST(MemoryStorage, AppendReplacesTheSuffixAndCompactDropsThePrefix) {
  MemoryStorage s;
  EXPECT_EQ(s.first_index(), 1u);
  EXPECT_EQ(s.last_index(), 0u);
  ASSERT_TRUE(s.append(ents(1, 5, 1)).is_ok());
  ASSERT_TRUE(s.append(ents(4, 6, 2)).is_ok());
  EXPECT_EQ(s.last_index(), 6u);
  EXPECT_EQ(s.term(3).value(), 1u);
  EXPECT_EQ(s.term(4).value(), 2u);
  EXPECT_EQ(s.term(7).status().code(), Code::kNotFound);
  EXPECT_EQ(s.append(ents(9, 9, 2)).code(), Code::kInvalidArgument);  // a gap
  ASSERT_TRUE(s.create_snapshot(4, ConfState{{1, 2, 3}, {}}, "img").is_ok());
  ASSERT_TRUE(s.compact(4).is_ok());
  EXPECT_EQ(s.first_index(), 5u);
  EXPECT_EQ(s.term(4).value(), 2u);  // answered from the snapshot point
  EXPECT_EQ(s.term(3).status().code(), Code::kOutOfRange);
  EXPECT_EQ(s.entries(3, 6, UINT64_MAX).status().code(), Code::kOutOfRange);
  auto e = s.entries(5, 7, UINT64_MAX);
  ASSERT_TRUE(e.is_ok());
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ(e->front().index, 5u);
  EXPECT_EQ(s.entries(5, 7, 1)->size(), 1u);  // at least one entry even over the byte limit
  EXPECT_EQ(s.snapshot()->metadata.index, 4u);
}

TEST(MemoryStorage, ApplySnapshotReplacesTheLog) {
  MemoryStorage s;
  ASSERT_TRUE(s.append(ents(1, 3, 1)).is_ok());
  Snapshot snap;
  snap.metadata = SnapshotMetadata{10, 3, ConfState{{1, 2}, {3}}};
  snap.data = "x";
  ASSERT_TRUE(s.apply_snapshot(snap).is_ok());
  EXPECT_EQ(s.first_index(), 11u);
  EXPECT_EQ(s.last_index(), 10u);
  EXPECT_EQ(s.initial_state().conf.learners, (std::vector<NodeId>{3}));
  EXPECT_FALSE(s.apply_snapshot(snap).is_ok());  // not newer
}

TEST(ConfChange, RoundTripsAndRejectsCorruption) {
  ConfChange cc{ConfChangeType::kAddLearner, 0x0102030405ull, ConfState{{1, 2}, {0x0102030405ull}}};
  auto back = ConfChange::decode(cc.encode());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back.value(), cc);
  EXPECT_FALSE(ConfChange::decode("").is_ok());
  std::string bad = cc.encode();
  bad[0] = 9;
  EXPECT_FALSE(ConfChange::decode(bad).is_ok());
  std::string cut = cc.encode();
  cut.pop_back();
  EXPECT_FALSE(ConfChange::decode(cut).is_ok());
}

}  // namespace
}  // namespace tally::raft
