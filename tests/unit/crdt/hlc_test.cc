#include <gtest/gtest.h>

#include "host/common/hlc.h"
#include "host/common/rng.h"

namespace tally {
namespace {

// A clock the test can move backwards, which ManualClock cannot.
class SettableClock final : public Clock {
 public:
  uint64_t monotonic_ns() const override { return wall_ms_ * 1'000'000; }
  uint64_t wall_ms() const override { return wall_ms_; }
  void set_ms(uint64_t ms) { wall_ms_ = ms; }

 private:
  uint64_t wall_ms_ = 1000;
};

TEST(Hlc, FollowsPhysicalTimeWhenItAdvances) {
  SettableClock clock;
  Hlc hlc(clock, 500);
  clock.set_ms(2000);
  EXPECT_EQ(hlc.now(), (HlcStamp{2000, 0}));
  EXPECT_EQ(hlc.now(), (HlcStamp{2000, 1}));
  clock.set_ms(2001);
  EXPECT_EQ(hlc.now(), (HlcStamp{2001, 0}));
}

TEST(Hlc, StaysMonotonicWhenTheClockJumpsBack) {
  SettableClock clock;
  Hlc hlc(clock, 500);
  clock.set_ms(5000);
  HlcStamp a = hlc.now();
  clock.set_ms(100);
  HlcStamp b = hlc.now();
  EXPECT_GT(b, a);
  EXPECT_EQ(b.wall_ms, 5000u);
}

TEST(Hlc, UpdateOrdersAfterRemoteAndRejectsFarFuture) {
  SettableClock clock;
  Hlc hlc(clock, 500);
  clock.set_ms(1000);
  Result<HlcStamp> r = hlc.update(HlcStamp{1400, 7});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, (HlcStamp{1400, 8}));
  EXPECT_GT(hlc.now(), (HlcStamp{1400, 8}));
  const HlcStamp before = hlc.last();
  Result<HlcStamp> far = hlc.update(HlcStamp{1501, 0});
  EXPECT_FALSE(far.is_ok());
  EXPECT_EQ(far.status().code(), Code::kOutOfRange);
  EXPECT_EQ(hlc.rejected_count(), 1u);
  EXPECT_EQ(hlc.last(), before);
  EXPECT_TRUE(hlc.update(HlcStamp{1500, 0}).is_ok());  // exactly at the bound is accepted
  EXPECT_EQ(hlc.rejected_count(), 1u);
}

TEST(Hlc, LogicalOverflowCarriesIntoMilliseconds) {
  SettableClock clock;
  Hlc hlc(clock, 500);
  ASSERT_TRUE(hlc.update(HlcStamp{1000, Hlc::kLogicalMax - 1}).is_ok());
  EXPECT_EQ(hlc.last(), (HlcStamp{1000, Hlc::kLogicalMax}));
  EXPECT_EQ(hlc.now(), (HlcStamp{1001, 0}));
}

TEST(Hlc, RandomEventsAcrossNodesRespectCausality) {
  Rng rng(7);
  SettableClock clocks[3];
  Hlc* hlcs[3];
  Hlc h0(clocks[0], 1000), h1(clocks[1], 1000), h2(clocks[2], 1000);
  hlcs[0] = &h0, hlcs[1] = &h1, hlcs[2] = &h2;
  HlcStamp last[3];
  for (int i = 0; i < 20000; ++i) {
    const size_t n = rng.uniform(3);
    // Skewed clocks that mostly move forward and sometimes jump back.
    clocks[n].set_ms(1000 + rng.uniform(400) + (i / 10));
    if (rng.chance(1, 2)) {
      const size_t from = rng.uniform(3);
      const HlcStamp sent = hlcs[from]->now();
      Result<HlcStamp> r = hlcs[n]->update(sent);
      if (r.is_ok()) {
        EXPECT_GT(*r, sent);
        last[n] = *r;
      }
    } else {
      const HlcStamp s = hlcs[n]->now();
      EXPECT_GT(s, last[n]);
      last[n] = s;
    }
  }
}

}  // namespace
}  // namespace tally
