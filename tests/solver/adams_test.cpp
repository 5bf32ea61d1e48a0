// Adams methods: the interpolatory weights against the textbook coefficients, measured orders
// (Adams-Bashforth k, and k + 1 with the PEC corrector) on uniform and non-uniform grids in both
// directions, one evaluation per step, observation, and the error paths.
#include <cmath>
#include <iostream>
#include <limits>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/multistep.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::log_log_slope;
using test::max_abs_diff;

// x' = -2 t x^2, x(t) = 1 / (t^2 + 1 / x0): the problem of the Runge-Kutta order tests.
torch::Tensor field(double t, const torch::Tensor& x) { return -2 * t * x * x; }
torch::Tensor exact(double t, const torch::Tensor& x0) { return 1 / (t * t + 1 / x0); }
torch::Tensor initial() { return torch::tensor({{0.5, 1.0}, {1.5, 2.0}, {0.8, 3.0}}, torch::kDouble); }

// Steps shrink smoothly from 1.4 to 0.6 times the mean towards t1, so a method that assumed
// equal steps would lose its order.
TimeGrid warped(int n, double t0 = 0.0, double t1 = 1.0) {
  TimeGrid g;
  for (int i = 0; i <= n; ++i) {
    const double u = static_cast<double>(i) / n;
    g.push_back(t0 + (t1 - t0) * (u + 0.4 * std::sin(M_PI * u) / M_PI));
  }
  g.back() = t1;
  return g;
}

TEST(InterpolatoryWeights, ReproduceTheAdamsCoefficients) {
  // Moments of v^j over [0, 1]; nodes in units of the step.
  const std::vector<double> m = {1.0, 1.0 / 2, 1.0 / 3, 1.0 / 4};
  const auto ab2 = detail::interpolatory_weights({0, -1}, m);
  EXPECT_NEAR(ab2[0], 1.5, 1e-14);
  EXPECT_NEAR(ab2[1], -0.5, 1e-14);
  const auto ab3 = detail::interpolatory_weights({0, -1, -2}, m);
  EXPECT_NEAR(ab3[0], 23.0 / 12, 1e-14);
  EXPECT_NEAR(ab3[1], -16.0 / 12, 1e-14);
  EXPECT_NEAR(ab3[2], 5.0 / 12, 1e-14);
  const auto am3 = detail::interpolatory_weights({1, 0, -1}, m);  // Adams-Moulton, order 3
  EXPECT_NEAR(am3[0], 5.0 / 12, 1e-14);
  EXPECT_NEAR(am3[1], 8.0 / 12, 1e-14);
  EXPECT_NEAR(am3[2], -1.0 / 12, 1e-14);
}

TEST(InterpolatoryWeights, AreExactForPolynomialsThroughTheNodes) {
  // int_0^1 p(v) dv for p(v) = 1 - 2 v + 3 v^3 is 1 - 1 + 3/4, from any four distinct nodes.
  const std::vector<double> nodes = {0.0, -0.7, -1.9, 1.0};
  const std::vector<double> m = {1.0, 1.0 / 2, 1.0 / 3, 1.0 / 4};
  const auto w = detail::interpolatory_weights(nodes, m);
  double sum = 0;
  for (size_t i = 0; i < nodes.size(); ++i) sum += w[i] * (1 - 2 * nodes[i] + 3 * std::pow(nodes[i], 3));
  EXPECT_NEAR(sum, 0.75, 1e-13);
  EXPECT_THROW_WITH(detail::interpolatory_weights({0.0, 0.0}, m), InvalidArgument, "distinct nodes");
}

struct OrderCase {
  int order;
  bool corrector;
  bool warp;
  std::string label() const {
    return (corrector ? "abm" : "ab") + std::to_string(order) + (warp ? "_warped" : "_uniform");
  }
};

std::vector<OrderCase> order_cases() {
  std::vector<OrderCase> out;
  for (int k = 1; k <= 4; ++k)
    for (bool corrector : {false, true})
      for (bool warp : {false, true}) out.push_back({k, corrector, warp});
  return out;
}

// One step from exact history (the field at the exact states of the `order` points before),
// predicted and, with the corrector, corrected through the field at the prediction (PEC):
// the local error falls like h^(order + 1), or h^(order + 2) corrected.
class AdamsLocalOrder : public ::testing::TestWithParam<OrderCase> {};

TEST_P(AdamsLocalOrder, MatchesClaimedOrder) {
  const OrderCase& c = GetParam();
  const torch::Tensor x0 = initial();
  const double t = 0.5;
  std::vector<double> hs, err;
  const double ratio = c.warp ? 0.8 : 1.0;
  for (double h : {0.1, 0.05, 0.025, 0.0125}) {
    std::vector<detail::FieldValue> values;
    for (int m = 0; m < c.order; ++m) {
      // Earlier points equally spaced, or (warped) each earlier step 0.8 of the one after it.
      double tm = t;
      for (int j = 0; j < m; ++j) tm -= h * std::pow(ratio, j + 1);
      values.push_back({tm, field(tm, exact(tm, x0))});
    }
    const torch::Tensor x = exact(t, x0);
    torch::Tensor next = detail::adams_step(x, t, h, values);
    if (c.corrector) {
      values.insert(values.begin(), {t + h, field(t + h, next)});
      next = detail::adams_step(x, t, h, values);
    }
    hs.push_back(h);
    err.push_back(max_abs_diff(next, exact(t + h, x0)));
  }
  const int expected = c.order + (c.corrector ? 2 : 1);
  const double slope = log_log_slope(hs, err);
  std::cout << "[ local order ] " << c.label() << ": measured " << slope << ", claimed " << expected << "\n";
  EXPECT_NEAR(slope, expected, 0.3);
}

INSTANTIATE_TEST_SUITE_P(Adams, AdamsLocalOrder, ::testing::ValuesIn(order_cases()),
                         [](const auto& info) { return info.param.label(); });

// Whole solves of x' = -2 (t + 1/2) x^2, whose Jacobian and third derivative are nonzero at
// t = 0, so the warm-up's first step counts: the global order is min(order, 2) without the
// corrector and min(order + 1, 3) with it, as the header says. (On the problem above both
// vanish at t = 0 and the bulk order would show instead.)
torch::Tensor shifted_field(double t, const torch::Tensor& x) { return -2 * (t + 0.5) * x * x; }
torch::Tensor shifted_exact(double t, const torch::Tensor& x0) { return 1 / ((t + 0.5) * (t + 0.5) - 0.25 + 1 / x0); }

class AdamsOrder : public ::testing::TestWithParam<OrderCase> {};

TEST_P(AdamsOrder, GlobalOrderIsCappedByTheWarmUp) {
  const OrderCase& c = GetParam();
  AdamsOptions o;
  o.order = c.order;
  o.corrector = c.corrector;
  const torch::Tensor x0 = initial(), x1 = shifted_exact(1.0, x0);
  std::vector<double> h, err;
  for (int n : {40, 80, 160, 320}) {
    const TimeGrid g = c.warp ? warped(n) : test::uniform_grid(n);
    const Solution sol = solve_ode_adams(shifted_field, x0, g, o);
    ASSERT_TRUE(sol.ok()) << sol.message;
    h.push_back(1.0 / n);
    err.push_back(max_abs_diff(sol.x, x1));
  }
  const int expected = c.corrector ? std::min(c.order + 1, 3) : std::min(c.order, 2);
  const double slope = log_log_slope(h, err);
  std::cout << "[ order ] " << c.label() << ": measured " << slope << ", expected " << expected
            << " (errors " << err.front() << " .. " << err.back() << ")\n";
  EXPECT_NEAR(slope, expected, 0.25);
}

INSTANTIATE_TEST_SUITE_P(Adams, AdamsOrder, ::testing::ValuesIn(order_cases()),
                         [](const auto& info) { return info.param.label(); });

TEST(Adams, OneEvaluationPerStepAndEveryGridPointObserved) {
  for (bool corrector : {false, true}) {
    int calls = 0;
    const VectorField counted = [&](double t, const torch::Tensor& x) { ++calls; return field(t, x); };
    std::vector<double> seen;
    AdamsOptions o;
    o.corrector = corrector;
    const TimeGrid g = warped(9);
    const Solution sol = solve_ode_adams(counted, initial(), g, o,
                                         [&](double t, const torch::Tensor&) { seen.push_back(t); });
    EXPECT_EQ(sol.nfe, 9);
    EXPECT_EQ(calls, 9);
    EXPECT_EQ(sol.steps, 9);
    EXPECT_EQ(seen, g);
    EXPECT_EQ(sol.t, 1.0);
  }
}

// Likelihoods integrate from t = 1 back to t = 0: the same orders hold on a decreasing grid.
TEST(Adams, DecreasingGridRunsBackwards) {
  const torch::Tensor x0 = initial();
  AdamsOptions o;
  o.order = 4;
  std::vector<double> h, err;
  for (int n : {50, 100, 200, 400}) {
    const Solution sol = solve_ode_adams(shifted_field, shifted_exact(1.0, x0), test::uniform_grid(n, 1.0, 0.0), o);
    ASSERT_TRUE(sol.ok()) << sol.message;
    EXPECT_EQ(sol.t, 0.0);
    h.push_back(1.0 / n);
    err.push_back(max_abs_diff(sol.x, x0));
  }
  EXPECT_NEAR(log_log_slope(h, err), 3.0, 0.25);
  EXPECT_LT(err.back(), 1e-6);
}

TEST(Adams, NonFiniteFieldStopsWithTheTime) {
  const VectorField broken = [](double t, const torch::Tensor& x) {
    return t > 0.5 ? torch::full_like(x, std::numeric_limits<double>::quiet_NaN()) : -x;
  };
  const Solution sol = solve_ode_adams(broken, initial(), test::uniform_grid(10));
  EXPECT_EQ(sol.status, SolveStatus::NonFinite);
  EXPECT_LE(sol.t, 0.6 + 1e-12);
  EXPECT_TRUE(all_finite(sol.x));
  EXPECT_THROW_WITH(sol.check(), NumericError, "non-finite state");
}

TEST(Adams, RefusesBadInput) {
  AdamsOptions o;
  o.order = 5;
  EXPECT_THROW_WITH(solve_ode_adams(field, initial(), test::uniform_grid(4), o), InvalidArgument,
                    "order must be 1 to 4, got 5");
  o.order = 0;
  EXPECT_THROW_WITH(solve_ode_adams(field, initial(), test::uniform_grid(4), o), InvalidArgument,
                    "got 0");
  EXPECT_THROW_WITH(solve_ode_adams(field, initial(), {0.0}), InvalidArgument, "at least two points");
  EXPECT_THROW_WITH(solve_ode_adams(VectorField(), initial(), test::uniform_grid(4)), InvalidArgument,
                    "vector field is empty");
}

}  // namespace
}  // namespace sdegen
