// The Thrust ops built for OpenMP against the CPU reference, bit for bit, on random batches.
#include <gtest/gtest.h>
#include <omp.h>

#include <vector>

#include "kernels/cpu/reference.h"
#include "kernels/thrust/thrust_ops.h"
#include "tests/unit/offload/differential.h"

namespace tally::kernels {
namespace {

Status run_thrust_omp(const Batch& b) {
  const size_t bytes = b.op == Op::kResolve ? thrust_omp::resolve_scratch_bytes(b.resolve)
                                            : thrust_omp::merkle_scratch_bytes(b.merkle);
  std::vector<uint8_t> scratch(bytes);
  ThrustScratch s{scratch.data(), scratch.size(), nullptr};
  return b.op == Op::kResolve ? thrust_omp::resolve(b.resolve, s) : thrust_omp::merkle(b.merkle, s);
}

class ThrustOmp : public ::testing::TestWithParam<Op> {};

TEST_P(ThrustOmp, MatchesReferenceBitForBit) {
  Rng rng(0x7411 + static_cast<int>(GetParam()));
  for (const BatchShape& shape : testing::differential_shapes(GetParam(), /*large=*/true)) {
    SCOPED_TRACE(testing::shape_name(shape));
    OwnedBatch expected = OwnedBatch::random(shape, rng);
    OwnedBatch actual = expected;
    expected.poison_outputs(0x5a);
    actual.poison_outputs(0xa5);
    ASSERT_TRUE(run_reference(expected.batch()).is_ok());
    const Status st = run_thrust_omp(actual.batch());
    ASSERT_TRUE(st.is_ok()) << st.to_string();

    EXPECT_EQ(expected.compare_outputs(actual), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, ThrustOmp, ::testing::Values(Op::kResolve, Op::kMerkle),
                         [](const auto& info) { return std::string(op_name(info.param)); });

TEST(ThrustOmpScratch, SmallerThanQueriedIsAnErrorAndTheQueryBoundsTheUse) {
  Rng rng(3);
  OwnedBatch b = OwnedBatch::random({.op = Op::kResolve, .items = 5000}, rng);
  const size_t need = thrust_omp::resolve_scratch_bytes(b.batch().resolve);
  std::vector<uint8_t> scratch(need);
  size_t used = 0;
  EXPECT_EQ(thrust_omp::resolve(b.batch().resolve, ThrustScratch{scratch.data(), need - 1, nullptr}).code(),
            Code::kResourceExhausted);
  ASSERT_TRUE(thrust_omp::resolve(b.batch().resolve, ThrustScratch{scratch.data(), need, nullptr, &used}).is_ok());
  EXPECT_GT(used, 0u);
  EXPECT_LE(used, need);
}

// A scratch query that is too small must cost the batch, not the process. The arena is limited to
// exactly what the op takes for itself (five item-sized arrays), so the first allocation to run out
// is one of Thrust's own: the OpenMP sort's merge buffers, taken inside a parallel region.
TEST(ThrustOmpScratch, RunningOutInsideThrustIsAnErrorNotAnAbort) {
  omp_set_num_threads(4);  // a parallel sort that merges, on any machine
  Rng rng(5);
  constexpr uint32_t kItems = 50'000;
  OwnedBatch expected = OwnedBatch::random({.op = Op::kResolve, .resolve_kind = ResolveKind::kLww, .items = kItems}, rng);
  OwnedBatch actual = expected;
  ASSERT_TRUE(run_reference(expected.batch()).is_ok());
  const size_t need = thrust_omp::resolve_scratch_bytes(actual.batch().resolve);
  std::vector<uint8_t> scratch(need);
  const size_t own_bytes = 5 * ((kItems * sizeof(uint32_t) + 255) / 256 * 256);
  size_t used = 0;
  const Status st = thrust_omp::resolve(actual.batch().resolve,
                                        ThrustScratch{scratch.data(), need, nullptr, &used, own_bytes});
  EXPECT_EQ(st.code(), Code::kResourceExhausted) << st.to_string();
  EXPECT_NE(st.message().find("ran out"), std::string::npos) << st.message();
  EXPECT_LE(used, own_bytes);
  // The op still finished (on borrowed heap memory), so its outputs are right even though it failed.
  EXPECT_EQ(expected.compare_outputs(actual), "");
}

}  // namespace
}  // namespace tally::kernels
