// Sample distances against cases with known answers.
#include "sdegen/core/error.h"
#include "sdegen/eval/metrics.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(Wasserstein1, ShiftedSampleIsTheShift) {
  const torch::Tensor a = torch::randn({1000});
  EXPECT_NEAR(wasserstein1(a, a + 0.3), 0.3, 1e-12);
  EXPECT_NEAR(wasserstein1(a, a), 0.0, 1e-15);
}

TEST(Wasserstein1, UnequalSizesAgainstHandComputedValue) {
  // F_a jumps 1/2 at 0 and 1; F_b jumps 1 at 0.5 (one point, weight 1).
  // |F_a - F_b| = 1/2 on [0, 0.5) and 1/2 on [0.5, 1): W1 = 0.5.
  EXPECT_NEAR(wasserstein1(torch::tensor({0.0, 1.0}), torch::tensor({0.5})), 0.5, 1e-15);
  EXPECT_NEAR(ks_statistic(torch::tensor({0.0, 1.0}), torch::tensor({0.5})), 0.5, 1e-15);
}

TEST(Wasserstein1, GaussiansDifferingInScale) {
  // W1(N(0,1), N(0,4)) = E|Z| * (2 - 1) = sqrt(2/pi).
  torch::manual_seed(3);
  const torch::Tensor z = torch::randn({200000});
  EXPECT_NEAR(wasserstein1(z, 2.0 * torch::randn({200000})), std::sqrt(2.0 / M_PI), 0.01);
}

TEST(SlicedWasserstein, ShiftAlongOneAxis) {
  // Shifting by (c, 0) gives |c| E|u_1| over unit directions u in 2-D: c * 2/pi.
  const torch::Tensor a = torch::randn({2000, 2});
  const torch::Tensor shift = torch::tensor({{1.0, 0.0}});
  EXPECT_NEAR(sliced_wasserstein(a, a + shift, 4000), 2.0 / M_PI, 0.02);
  EXPECT_EQ(sliced_wasserstein(a, a + shift, 64, 7), sliced_wasserstein(a, a + shift, 64, 7));
  // The seed picks the directions: another seed, another estimate.
  const torch::Tensor b = torch::randn({2000, 2});
  EXPECT_NE(sliced_wasserstein(a, b, 64, 7), sliced_wasserstein(a, b, 64, 8));
  EXPECT_NE(sliced_wasserstein(a, a + shift, 64, 7), sliced_wasserstein(a, a + shift, 64, 8));
}

TEST(Metrics, RefuseBadInput) {
  EXPECT_THROW_WITH(wasserstein1(torch::zeros({0}), torch::zeros({3})), InvalidArgument, "empty");
  EXPECT_THROW_WITH(wasserstein1(torch::zeros({3, 2}), torch::zeros({3})), InvalidArgument, "1-D");
  EXPECT_THROW_WITH(wasserstein1(torch::tensor({NAN}), torch::zeros({3})), InvalidArgument, "non-finite");
  EXPECT_THROW_WITH(sliced_wasserstein(torch::zeros({3, 2}), torch::zeros({3, 3})), InvalidArgument,
                    "same d");
}

}  // namespace
}  // namespace sdegen
