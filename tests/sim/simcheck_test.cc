// Hand-made histories for the linearizability checker, and the JSON-lines round trip.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "host/common/rng.h"
#include "tests/sim/linearizability.h"

namespace tally::sim {
namespace {

Operation op(uint32_t client, OpKind kind, std::optional<int64_t> arg, std::optional<int64_t> result,
             uint64_t call, uint64_t ret, Outcome outcome = Outcome::kOk, std::optional<int64_t> expect = {}) {
  Operation o;
  o.client = client;
  o.key.assign(1, 'k');
  o.op = kind;
  o.arg = arg;
  o.expect = expect;
  o.result = result;
  o.call_ns = call;
  o.return_ns = ret;
  o.outcome = outcome;
  return o;
}
Operation read(uint32_t c, std::optional<int64_t> result, uint64_t call, uint64_t ret) {
  return op(c, OpKind::kRead, {}, result, call, ret);
}
Operation write(uint32_t c, int64_t v, uint64_t call, uint64_t ret, Outcome o = Outcome::kOk) {
  return op(c, OpKind::kWrite, v, {}, call, ret, o);
}

Verdict verdict(const std::vector<Operation>& h) { return check_history(h).verdict; }

TEST(Linearizability, SequentialHistoryPasses) {
  std::vector<Operation> h = {write(1, 5, 0, 10), read(2, 5, 20, 30),
                              op(1, OpKind::kIncr, 2, 7, 40, 50),
                              op(2, OpKind::kCas, 9, 1, 60, 70, Outcome::kOk, 7), read(1, 9, 80, 90)};
  EXPECT_EQ(verdict(h), Verdict::kLinearizable);
}

TEST(Linearizability, StaleReadAfterCompletedWriteIsFlagged) {
  std::vector<Operation> h = {write(1, 1, 0, 10), write(1, 2, 20, 30), read(2, 1, 40, 50)};
  CheckResult r = check_history(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "k");
  EXPECT_NE(r.detail.find("no linearization"), std::string::npos);
}

TEST(Linearizability, ConcurrentReadMaySeeEitherValue) {
  // The read overlaps the second write, so both 1 and 2 are fine, but 3 was never written.
  for (int64_t seen : {1, 2}) {
    std::vector<Operation> h = {write(1, 1, 0, 10), write(1, 2, 20, 40), read(2, seen, 30, 50)};
    EXPECT_EQ(verdict(h), Verdict::kLinearizable) << seen;
  }
  std::vector<Operation> h = {write(1, 1, 0, 10), write(1, 2, 20, 40), read(2, 3, 30, 50)};
  EXPECT_EQ(verdict(h), Verdict::kNotLinearizable);
}

TEST(Linearizability, ReadOfAbsentKeyAndIncrFromAbsent) {
  EXPECT_EQ(verdict({read(1, std::nullopt, 0, 5), op(1, OpKind::kIncr, 3, 3, 10, 20)}), Verdict::kLinearizable);
  EXPECT_EQ(verdict({op(1, OpKind::kIncr, 3, 3, 0, 5), read(1, std::nullopt, 10, 20)}), Verdict::kNotLinearizable);
}

TEST(Linearizability, UnknownWriteMayTakeEffectLateOrNever) {
  // Timed out write of 7: a later read may see it, or not.
  EXPECT_EQ(verdict({write(1, 7, 0, 10, Outcome::kUnknown), read(2, 7, 100, 110)}), Verdict::kLinearizable);
  EXPECT_EQ(verdict({write(1, 7, 0, 10, Outcome::kUnknown), read(2, std::nullopt, 100, 110)}),
            Verdict::kLinearizable);
  // ...but never before it was called.
  EXPECT_EQ(verdict({read(2, 7, 0, 10), write(1, 7, 20, 30, Outcome::kUnknown)}), Verdict::kNotLinearizable);
  // Once seen and overwritten, it cannot reappear.
  EXPECT_EQ(verdict({write(1, 7, 0, 10, Outcome::kUnknown), read(2, 7, 20, 30), write(2, 8, 40, 50),
                     read(2, 7, 60, 70)}),
            Verdict::kNotLinearizable);
}

TEST(Linearizability, FailedOperationsHaveNoEffect) {
  EXPECT_EQ(verdict({write(1, 7, 0, 10, Outcome::kFail), read(2, 7, 20, 30)}), Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({write(1, 7, 0, 10, Outcome::kFail), read(2, std::nullopt, 20, 30)}), Verdict::kLinearizable);
}

TEST(Linearizability, CasResultMustMatchState) {
  // Two sequential CAS from 0: only one can succeed.
  std::vector<Operation> both = {write(1, 0, 0, 5), op(1, OpKind::kCas, 1, 1, 10, 20, Outcome::kOk, 0),
                                 op(2, OpKind::kCas, 2, 1, 30, 40, Outcome::kOk, 0)};
  EXPECT_EQ(verdict(both), Verdict::kNotLinearizable);
  both[2].result = 0;
  EXPECT_EQ(verdict(both), Verdict::kLinearizable);
}

TEST(Linearizability, LostIncrementIsFlagged) {
  // Two concurrent increments both returning 1 means one was lost.
  EXPECT_EQ(verdict({op(1, OpKind::kIncr, 1, 1, 0, 10), op(2, OpKind::kIncr, 1, 1, 5, 15)}),
            Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({op(1, OpKind::kIncr, 1, 1, 0, 10), op(2, OpKind::kIncr, 1, 2, 5, 15)}),
            Verdict::kLinearizable);
}

TEST(Linearizability, KeysAreCheckedIndependently) {
  std::vector<Operation> h = {write(1, 1, 0, 10), read(2, 1, 20, 30)};
  Operation other = write(3, 4, 0, 10);
  other.key = "z";
  Operation other_read = read(3, 5, 20, 30);
  other_read.key = "z";
  h.push_back(other);
  h.push_back(other_read);
  CheckResult r = check_history(h);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "z");
  EXPECT_EQ(r.keys, 2u);
}

// A random sequential-then-jittered history generated from a real register is linearizable;
// changing one read result to a value never written makes it not.
TEST(Linearizability, RandomConcurrentHistoriesFromARealRegister) {
  Rng rng(3);
  for (int round = 0; round < 200; ++round) {
    std::vector<Operation> h;
    std::optional<int64_t> value;
    uint64_t t = 100;
    for (int i = 0; i < 40; ++i) {
      // The effect happens at time t; the call starts a little before, the return a little after.
      t += 10;
      const uint64_t call = t - rng.uniform(25), ret = t + rng.uniform(25);
      const uint32_t client = static_cast<uint32_t>(i);
      switch (rng.uniform(3)) {
        case 0: h.push_back(read(client, value, call, ret)); break;
        case 1: {
          const int64_t v = static_cast<int64_t>(rng.uniform(5));
          value = v;
          h.push_back(write(client, v, call, ret));
          break;
        }
        default: {
          const int64_t d = static_cast<int64_t>(rng.uniform(3));
          value = value.value_or(0) + d;
          h.push_back(op(client, OpKind::kIncr, d, value, call, ret));
        }
      }
    }
    ASSERT_EQ(verdict(h), Verdict::kLinearizable) << round;
    for (Operation& o : h) {
      if (o.op == OpKind::kRead) {
        o.result = 1000;
        break;
      }
    }
    ASSERT_EQ(verdict(h), Verdict::kNotLinearizable) << round;
  }
}

TEST(Linearizability, BudgetGivesUpInsteadOfHanging) {
  // Many concurrent timed-out writes and a read of a value none wrote: every subset and order
  // of the writes is a distinct (set, state) pair, so the search is exponential.
  std::vector<Operation> h;
  for (int i = 0; i < 40; ++i) h.push_back(write(i, i, 0, 1000, Outcome::kUnknown));
  h.push_back(read(99, 999, 2000, 2001));
  CheckOptions small;
  small.steps_max = 10'000;
  EXPECT_EQ(check_history(h, small).verdict, Verdict::kTooBig);
}

TEST(History, JsonLinesRoundTrip) {
  std::vector<Operation> h = {write(3, -5, 1, 2), read(4, std::nullopt, 3, 4),
                              op(5, OpKind::kCas, 9, 0, 5, 6, Outcome::kUnknown, 1),
                              op(6, OpKind::kIncr, 1, {}, 7, 8, Outcome::kFail)};
  h[0].key = "k\"7\\";
  EXPECT_EQ(to_json_line(h[1]),
            R"({"client":4,"key":"k","op":"read","arg":null,"expect":null,"result":null,"call":3,"return":4,"outcome":"ok"})");
  const std::string path = ::testing::TempDir() + "history_roundtrip.jsonl";
  ASSERT_TRUE(write_history(path, h).is_ok());
  Result<std::vector<Operation>> back = read_history(path);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, h);
  std::remove(path.c_str());
}

TEST(History, RejectsMalformedLines) {
  EXPECT_FALSE(parse_json_line("").is_ok());
  EXPECT_FALSE(parse_json_line(R"({"client":1,"key":"k","op":"frob","call":1,"return":2,"outcome":"ok"})").is_ok());
  EXPECT_FALSE(parse_json_line(R"({"client":1,"key":"k","op":"read","call":5,"return":2,"outcome":"ok"})").is_ok());
  EXPECT_FALSE(parse_json_line(R"({"client":1,"key":"k","op":"write","call":1,"return":2,"outcome":"ok"})").is_ok());
  EXPECT_FALSE(parse_json_line(R"({"client":1,"key":"k","op":"read","call":1,"return":2,"outcome":"ok"} x)").is_ok());
  Result<Operation> ok = parse_json_line(R"( { "key" : "a", "op":"incr", "arg": -3, "call":1, "outcome":"unknown" } )");
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->arg, -3);
}

}  // namespace
}  // namespace tally::sim
