// The predictor-corrector sampler on an Ornstein-Uhlenbeck process started away from its
// stationary law, with the exact score of each marginal: its second moment step by step against
// the deterministic recursion of an Euler-Maruyama step followed by a Langevin step, and its weak
// order 1 when the Langevin step shrinks with the time step (snr^2 proportional to h).
#include <cmath>
#include <iostream>

#include "sdegen/solver/sde.h"
#include "support/support.h"

namespace sdegen {
namespace {

// dx = -theta x dt + s dW from N(0, v0): Var x_t = v0 e^{-2 theta t} + s^2 / (2 theta) (1 - e^{-2 theta t}).
constexpr double kTheta = 2.0, kS = 1.0, kV0 = 1.0;
double variance(double t) {
  const double e = std::exp(-2 * kTheta * t);
  return kV0 * e + kS * kS / (2 * kTheta) * (1 - e);
}
torch::Tensor drift(double, const torch::Tensor& x) { return -kTheta * x; }
torch::Tensor diffusion(double, const torch::Tensor& x) { return torch::scalar_tensor(kS, x.options()); }
torch::Tensor score(double t, const torch::Tensor& x) { return -x / variance(t); }

// 256 rows of 1024: the batch-averaged row norms make the Langevin step size deterministic to
// ~0.1%, and the Monte Carlo sd of a second moment is sqrt(2 / 262144) = 0.28% of it.
constexpr int64_t kRows = 256, kDim = 1024;
const double kMcRelative = std::sqrt(2.0 / (kRows * kDim));

double second_moment(const torch::Tensor& x) { return x.square().mean().item<double>(); }

// E x^2 after each step: Euler-Maruyama m <- (1 - theta h)^2 m + s^2 h, then (except after the
// last step) each Langevin step x + eps s + sqrt(2 eps) z with s = -x / v and
// eps = 2 (snr |z| / |s|)^2 = 2 snr^2 v^2 / m, so m <- (1 - eps / v)^2 m + 2 eps.
double predicted(int n, double snr, int corrector_steps) {
  const double h = 1.0 / n;
  double m = kV0;
  for (int i = 0; i < n; ++i) {
    m = std::pow(1 - kTheta * h, 2) * m + kS * kS * h;
    if (i + 1 == n) break;
    const double v = variance((i + 1) * h);
    for (int j = 0; j < corrector_steps; ++j) {
      const double eps = 2 * snr * snr * v * v / m;
      m = std::pow(1 - eps / v, 2) * m + 2 * eps;
    }
  }
  return m;
}

// Large Langevin steps (snr 0.4, two per time step) pull the second moment well away from
// Euler-Maruyama's, towards v (1 + snr^2): the recursion must follow them.
TEST(PredictorCorrectorMoments, SecondMomentFollowsTheRecursion) {
  torch::manual_seed(21);
  for (const int n : {10, 20}) {
    PcOptions o;
    o.snr = 0.4;
    o.corrector_steps = 2;
    const torch::Tensor x0 = std::sqrt(kV0) * torch::randn({kRows, kDim}, torch::kDouble);
    const Solution sol = solve_sde_pc(drift, diffusion, score, x0, test::uniform_grid(n), o);
    ASSERT_TRUE(sol.ok()) << sol.message;
    const double want = predicted(n, o.snr, o.corrector_steps), got = second_moment(sol.x);
    std::cout << "[ pc ] " << n << " steps: E x^2 " << got << ", recursion " << want << ", without the corrector "
              << predicted(n, 0.0, 0) << ", exact " << variance(1.0) << "\n";
    EXPECT_NEAR(got, want, 5 * kMcRelative * want) << n << " steps";
    EXPECT_GT(std::abs(want - predicted(n, 0.0, 0)), 10 * kMcRelative * want) << n << " steps";
  }
}

// snr = 0.4 sqrt(h): the Langevin step's bias per step is O(snr^4) = O(h^2), so the sampler keeps
// Euler-Maruyama's weak order 1. Measured: slope 1.17, bias 0.069 at 4 steps to 5.9e-3 at 32
// (8 Monte Carlo sds).
TEST(PredictorCorrectorMoments, WeakOrderOneWhenTheCorrectorShrinksWithTheStep) {
  torch::manual_seed(22);
  std::vector<double> h, bias;
  for (const int n : {4, 8, 16, 32}) {
    PcOptions o;
    o.snr = 0.4 * std::sqrt(1.0 / n);
    const torch::Tensor x0 = std::sqrt(kV0) * torch::randn({kRows, kDim}, torch::kDouble);
    const Solution sol = solve_sde_pc(drift, diffusion, score, x0, test::uniform_grid(n), o);
    ASSERT_TRUE(sol.ok()) << sol.message;
    h.push_back(1.0 / n);
    bias.push_back(std::abs(second_moment(sol.x) - variance(1.0)));
  }
  const double slope = test::log_log_slope(h, bias);
  std::cout << "[ order ] pc weak: measured " << slope << " (bias " << bias.front() << " .. " << bias.back()
            << ", Monte Carlo sd " << kMcRelative * variance(1.0) << ")\n";
  EXPECT_NEAR(slope, 1.0, 0.25);
}

}  // namespace
}  // namespace sdegen
