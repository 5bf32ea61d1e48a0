// Dormand-Prince 5(4) step by step: one step of the fifth-order solution has local error
// O(h^6), and the embedded error estimate (fifth minus fourth order) is O(h^5). The global-error
// tests (adaptive_test.cpp) would still pass with a wrong error estimate, which only costs or
// saves steps; the estimate's order shows where a step is accepted.
#include <cmath>
#include <iostream>

#include "sdegen/solver/ode.h"
#include "support/support.h"

namespace sdegen {
namespace {

// x' = (1 + cos(3 t) / 2) x, x(t) = x0 exp(t - t0 + (sin 3t - sin 3t0) / 6): time-dependent, so a
// stage at a wrong time shows. (On x' = -2 t x^2 the measured slopes stay near 6.6 down to
// h = 1/32: its leading error terms nearly cancel there.)
torch::Tensor field(double t, const torch::Tensor& x) { return (1 + 0.5 * std::cos(3 * t)) * x; }
torch::Tensor initial() { return torch::tensor({{0.5}, {1.2}, {-0.8}}, torch::kDouble); }
constexpr double kStart = 0.25;  // with the steps below, t0 + h - t0 == h exactly: one step
torch::Tensor exact(double t1) {
  return initial() * std::exp(t1 - kStart + (std::sin(3 * t1) - std::sin(3 * kStart)) / 6);
}

// One step of length h: first_step = h onto t1 = t0 + h lands in one step when it is accepted.
Solution one_step(double h, double tol) {
  AdaptiveOptions o;
  o.first_step = h;
  o.rtol = o.atol = tol;
  o.max_steps = 1;  // a rejected first step ends the solve (MaxStepsReached)
  return solve_ode_adaptive(field, initial(), kStart, kStart + h, o);
}

const std::vector<double> kSteps = {0.25, 0.125, 0.0625, 0.03125};

TEST(Dopri5Order, LocalErrorOfOneStepIsOrderSix) {
  std::vector<double> err;
  for (double h : kSteps) {
    const Solution sol = one_step(h, 1e3);  // a tolerance every step meets
    ASSERT_TRUE(sol.ok()) << sol.message;
    ASSERT_EQ(sol.steps, 1);
    ASSERT_EQ(sol.nfe, 7);  // f(t0), then six stages (the seventh is the next step's first)
    err.push_back(test::max_abs_diff(sol.x, exact(kStart + h)));
  }
  const double slope = test::log_log_slope(kSteps, err);
  std::cout << "[ order ] dopri5 local error: slope " << slope << " (errors " << err.front() << " .. "
            << err.back() << ")\n";
  EXPECT_NEAR(slope, 6.0, 0.4);
}

// The step is accepted when its error estimate, in units of atol + rtol |x| (atol = rtol = tol),
// is at most 1: bisecting on tol for the threshold measures the estimate E(h) up to a factor
// near 1 that does not depend on h, so log E against log h has slope 5.
TEST(Dopri5Order, ErrorEstimateIsOrderFive) {
  std::vector<double> threshold;
  for (double h : kSteps) {
    double lo = -20.0, hi = 2.0;  // log10 tol: rejected at lo, accepted at hi
    ASSERT_FALSE(one_step(h, std::pow(10.0, lo)).ok());
    ASSERT_TRUE(one_step(h, std::pow(10.0, hi)).ok());
    for (int i = 0; i < 40; ++i) {
      const double mid = 0.5 * (lo + hi);
      (one_step(h, std::pow(10.0, mid)).ok() ? hi : lo) = mid;
    }
    threshold.push_back(std::pow(10.0, hi));
  }
  const double slope = test::log_log_slope(kSteps, threshold);
  std::cout << "[ order ] dopri5 error estimate: slope " << slope << " (thresholds " << threshold.front() << " .. "
            << threshold.back() << ")\n";
  EXPECT_NEAR(slope, 5.0, 0.4);
}

}  // namespace
}  // namespace sdegen
