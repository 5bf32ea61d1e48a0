// Time grids point by point: the uniform grid is t0 + (t1 - t0) i / n at every i, the flow grid is
// uniform in r = a / (a + b) = sigmoid(lambda / 2), the lambda and edm grids are uniform in lambda
// and in sigma^(1/rho). Solvers keep their order on a grid that is slightly off (a misplaced
// point, a stretched last step), so only the points themselves show such an error.
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/time_grid.h"
#include "support/support.h"

namespace sdegen {
namespace {

// lambda of the linear schedule, a = t, b = 1 - t, and its inverse: finite inside (0, 1).
const LambdaMap kLinear{[](double t) { return 2.0 * std::log(t / (1.0 - t)); },
                        [](double l) { return 1.0 / (1.0 + std::exp(-l / 2)); }};
// A schedule whose flow time differs from t: lambda = 4 t^3 - 2 (increasing), lambda(t) = l.
const LambdaMap kCubic{[](double t) { return 4.0 * t * t * t - 2.0; },
                       [](double l) { return std::cbrt((l + 2.0) / 4.0); }};

TEST(TimeGrid, UniformPointsAreEquallySpaced) {
  for (int n : {1, 2, 7, 50}) {
    GridOptions o;
    o.t0 = 0.125;
    o.t1 = 0.875;
    const TimeGrid g = make_time_grid(n, o);
    ASSERT_EQ(g.size(), static_cast<size_t>(n) + 1);
    for (int i = 0; i <= n; ++i) EXPECT_NEAR(g[i], 0.125 + 0.75 * i / n, 1e-15) << i << " of " << n;
  }
}

TEST(TimeGrid, FlowPointsAreUniformInFlowTime) {
  GridOptions o;
  o.kind = GridKind::Flow;
  o.t0 = 0.1;
  o.t1 = 0.9;
  const TimeGrid g = make_time_grid(8, o, &kCubic);
  ASSERT_EQ(g.size(), 9u);
  const auto r = [](double t) { return 1.0 / (1.0 + std::exp(-kCubic.lambda(t) / 2)); };
  for (int i = 0; i <= 8; ++i) EXPECT_NEAR(r(g[i]), r(0.1) + (r(0.9) - r(0.1)) * i / 8.0, 1e-12) << i;
  // For the linear schedule flow time is t itself.
  o.t0 = 0.0;
  o.t1 = 1.0;
  const TimeGrid linear = make_time_grid(5, o, &kLinear);
  for (int i = 0; i <= 5; ++i) EXPECT_NEAR(linear[i], i / 5.0, 1e-12) << i;
}

TEST(TimeGrid, LambdaAndEdmPointsFollowTheNoiseLevel) {
  GridOptions o;
  o.kind = GridKind::Lambda;
  o.t0 = 0.2;
  o.t1 = 0.8;
  const TimeGrid g = make_time_grid(6, o, &kCubic);
  const double l0 = kCubic.lambda(0.2), l1 = kCubic.lambda(0.8);
  for (int i = 0; i <= 6; ++i) EXPECT_NEAR(kCubic.lambda(g[i]), l0 + (l1 - l0) * i / 6.0, 1e-12) << i;
  o.kind = GridKind::Edm;
  o.rho = 3.0;
  const TimeGrid e = make_time_grid(6, o, &kCubic);
  // sigma = exp(-lambda / 2), spaced uniformly in sigma^(1 / rho) from sigma(t0) down to sigma(t1).
  const auto root = [](double t) { return std::pow(std::exp(-kCubic.lambda(t) / 2), 1.0 / 3.0); };
  for (int i = 0; i <= 6; ++i) EXPECT_NEAR(root(e[i]), root(0.2) + (root(0.8) - root(0.2)) * i / 6.0, 1e-12) << i;
}

TEST(TimeGrid, RefusesEmptyAndReversedRanges) {
  GridOptions o;
  EXPECT_THROW_WITH(make_time_grid(0, o), InvalidArgument, "positive");
  o.t0 = 0.5;
  o.t1 = 0.5;
  EXPECT_THROW_WITH(make_time_grid(3, o), InvalidArgument, "t0 < t1");
  o = GridOptions();
  o.kind = GridKind::Flow;
  EXPECT_THROW_WITH(make_time_grid(3, o), InvalidArgument, "needs the schedule's lambda");
}

}  // namespace
}  // namespace sdegen
