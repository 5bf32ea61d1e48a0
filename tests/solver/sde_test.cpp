// SDE solvers on the Ornstein-Uhlenbeck process dx = -theta x dt + s dW, whose moments are
// known: Euler-Maruyama's weak order, the predictor-corrector sampler keeping the stationary
// law, the Langevin corrector on its own, evaluation counts and the error paths.
#include <cmath>
#include <iostream>
#include <limits>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"
#include "sdegen/solver/sde.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

constexpr double kTheta = 2.0, kS = 1.0;
const double kStationaryVar = kS * kS / (2 * kTheta);

torch::Tensor ou_drift(double, const torch::Tensor& x) { return -kTheta * x; }
torch::Tensor ou_diffusion(double, const torch::Tensor& x) {
  return torch::scalar_tensor(kS, x.options());
}
torch::Tensor stationary_score(double, const torch::Tensor& x) { return -x / kStationaryVar; }

using test::log_log_slope;
TimeGrid uniform(int n, double t0 = 0.0, double t1 = 1.0) { return test::uniform_grid(n, t0, t1); }

double second_moment(const torch::Tensor& x) { return x.square().mean().item<double>(); }

// E[x_1^2] from x_0 = 0. Exact: s^2 / (2 theta) (1 - exp(-2 theta)). Euler-Maruyama's own
// second moment follows m <- (1 - theta h)^2 m + s^2 h, whose bias is O(h). theta = 2 with 4..32
// steps makes that bias (0.087 .. 0.0085) ten times the Monte Carlo error of 500k paths.
TEST(EulerMaruyama, WeakOrderOneOnOrnsteinUhlenbeck) {
  torch::manual_seed(1234);
  const int64_t paths = 500000;
  const double exact = kStationaryVar * (1 - std::exp(-2 * kTheta));
  const double mc_error = std::sqrt(2.0 / paths) * exact;  // sd of a Gaussian's mean square
  std::vector<double> h, bias;
  for (int n : {4, 8, 16, 32}) {
    const Solution sol = solve_sde_euler_maruyama(ou_drift, ou_diffusion,
                                                  torch::zeros({paths, 1}, torch::kDouble), uniform(n));
    ASSERT_TRUE(sol.ok()) << sol.message;
    double em = 0;
    for (int i = 0; i < n; ++i) em = std::pow(1 - kTheta / n, 2) * em + kS * kS / n;
    const double measured = second_moment(sol.x);
    EXPECT_NEAR(measured, em, 5 * mc_error) << n << " steps";
    h.push_back(1.0 / n);
    bias.push_back(std::abs(measured - exact));
  }
  const double slope = log_log_slope(h, bias);
  std::cout << "[ order ] euler-maruyama weak: measured " << slope << " (bias " << bias.front()
            << " .. " << bias.back() << ", Monte Carlo sd " << mc_error << ")\n";
  EXPECT_NEAR(slope, 1.0, 0.25);
}

// With sigma = 0 no noise enters: exactly the Euler ODE solve.
TEST(EulerMaruyama, ZeroDiffusionIsEulerOde) {
  const VectorField f = [](double t, const torch::Tensor& x) { return -2 * t * x * x + std::sin(t); };
  const DiffusionField none = [](double, const torch::Tensor& x) { return torch::zeros({}, x.options()); };
  const torch::Tensor x0 = torch::rand({5, 3}, torch::kDouble) + 0.5;
  const Solution sde = solve_sde_euler_maruyama(f, none, x0, uniform(16));
  const Solution ode = solve_ode(f, x0, uniform(16), *make_ode_stepper("euler"));
  EXPECT_EQ(max_abs_diff(sde.x, ode.x), 0.0);
  EXPECT_EQ(sde.nfe, ode.nfe);
  EXPECT_EQ(sde.steps, 16);
}

// Brownian increments have variance |dt| on a decreasing grid too: dx = dW from t = 1 to 0.
TEST(EulerMaruyama, DecreasingGridUsesAbsoluteTimeStep) {
  torch::manual_seed(7);
  const VectorField zero = [](double, const torch::Tensor& x) { return torch::zeros_like(x); };
  const DiffusionField unit = [](double, const torch::Tensor& x) { return torch::ones_like(x); };
  const Solution sol = solve_sde_euler_maruyama(zero, unit, torch::zeros({100000, 2}), uniform(10, 1.0, 0.0));
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.t, 0.0);
  EXPECT_NEAR(second_moment(sol.x), 1.0, 0.02);  // Monte Carlo sd 0.0032
}

// Rows of 1024 elements; 256 rows give a Monte Carlo error of ~0.3%.
constexpr int64_t kRows = 256, kDim = 1024;

// Started from its stationary law N(0, s^2 / (2 theta)) the process stays there; the sampler,
// with the exact score, keeps the variance within its discretisation bias (Euler-Maruyama
// +2% and the Langevin step +snr^2 = +2.6% at 50 steps) plus Monte Carlo error.
TEST(PredictorCorrector, KeepsStationaryVariance) {
  torch::manual_seed(11);
  const torch::Tensor x0 = std::sqrt(kStationaryVar) * torch::randn({kRows, kDim}, torch::kDouble);
  const Solution sol = solve_sde_pc(ou_drift, ou_diffusion, stationary_score, x0, uniform(50));
  ASSERT_TRUE(sol.ok()) << sol.message;
  const double ratio = second_moment(sol.x) / kStationaryVar;
  std::cout << "[ pc ] variance / stationary variance: " << ratio << "\n";
  EXPECT_NEAR(ratio, 1.0, 0.05);
  EXPECT_NEAR(sol.x.mean().item<double>(), 0.0, 0.01);
}

// In one dimension too: per-row step sizes would blow the variance up by orders of magnitude
// here (see solver/sde.cpp); the batch-averaged step keeps it within the same bias.
TEST(PredictorCorrector, KeepsStationaryVarianceInOneDimension) {
  torch::manual_seed(12);
  const torch::Tensor x0 = std::sqrt(kStationaryVar) * torch::randn({200000, 1}, torch::kDouble);
  const Solution sol = solve_sde_pc(ou_drift, ou_diffusion, stationary_score, x0, uniform(50));
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_NEAR(second_moment(sol.x) / kStationaryVar, 1.0, 0.05);
}

// The corrector on its own (no drift, no noise): Langevin steps from N(0, 4 v) relax to the
// target N(0, v), up to the step's own bias: at the fixed point of m <- (1 - eps/v)^2 m + 2 eps
// with eps = 2 snr^2 v^2 / m, m = v (1 + snr^2); plus 4 / (d - 2) from per-row step sizes.
TEST(PredictorCorrector, LangevinCorrectorRelaxesToTarget) {
  torch::manual_seed(12);
  const VectorField zero = [](double, const torch::Tensor& x) { return torch::zeros_like(x); };
  const DiffusionField none = [](double, const torch::Tensor& x) { return torch::zeros({}, x.options()); };
  const torch::Tensor x0 = 2 * std::sqrt(kStationaryVar) * torch::randn({kRows, kDim}, torch::kDouble);
  PcOptions o;
  o.corrector_steps = 200;
  o.final_corrector = true;
  const Solution sol = solve_sde_pc(zero, none, stationary_score, x0, {0.0, 1.0}, o);
  ASSERT_TRUE(sol.ok()) << sol.message;
  const double ratio = second_moment(sol.x) / kStationaryVar;
  const double expected = 1 + o.snr * o.snr + 4.0 / (kDim - 2);
  std::cout << "[ pc ] Langevin only: variance / target " << ratio << " (expected about "
            << expected << ")\n";
  EXPECT_NEAR(ratio, expected, 0.01);
  EXPECT_EQ(sol.nfe, 1 + 200);
}

// nfe is drift plus score evaluations; the corrector is skipped after the last step unless
// final_corrector.
TEST(PredictorCorrector, CountsDriftAndScoreEvaluations) {
  for (bool final_corrector : {false, true}) {
    int drift_calls = 0, score_calls = 0;
    const VectorField drift = [&](double t, const torch::Tensor& x) { ++drift_calls; return ou_drift(t, x); };
    const VectorField score = [&](double t, const torch::Tensor& x) { ++score_calls; return stationary_score(t, x); };
    PcOptions o;
    o.corrector_steps = 2;
    o.final_corrector = final_corrector;
    int observed = 0;
    const Solution sol = solve_sde_pc(drift, ou_diffusion, score, torch::randn({4, 3}), uniform(10), o,
                                      [&](double, const torch::Tensor&) { ++observed; });
    EXPECT_EQ(drift_calls, 10);
    EXPECT_EQ(score_calls, final_corrector ? 20 : 18);
    EXPECT_EQ(sol.nfe, drift_calls + score_calls);
    EXPECT_EQ(sol.steps, 10);
    EXPECT_EQ(observed, 11);
  }
}

TEST(SdeSolvers, NonFiniteDriftStopsWithTheTime) {
  const VectorField broken = [](double t, const torch::Tensor& x) {
    return t > 0.5 ? torch::full_like(x, std::numeric_limits<double>::quiet_NaN()) : ou_drift(t, x);
  };
  const Solution em = solve_sde_euler_maruyama(broken, ou_diffusion, torch::zeros({3, 2}), uniform(10));
  EXPECT_EQ(em.status, SolveStatus::NonFinite);
  EXPECT_NEAR(em.t, 0.6, 1e-12);
  EXPECT_TRUE(all_finite(em.x));
  EXPECT_NE(em.message.find("non-finite state in the step from t = 0.6"), std::string::npos) << em.message;
  const Solution pc = solve_sde_pc(broken, ou_diffusion, stationary_score, torch::zeros({3, 2}), uniform(10));
  EXPECT_EQ(pc.status, SolveStatus::NonFinite);
  EXPECT_THROW_WITH(pc.check(), NumericError, "t = 0.6");
}

TEST(SdeSolvers, RefusesBadInput) {
  const torch::Tensor x0 = torch::zeros({3, 2});
  const DiffusionField too_wide = [](double, const torch::Tensor&) { return torch::ones({4, 3, 2}); };
  const DiffusionField mismatched = [](double, const torch::Tensor&) { return torch::ones({3}); };
  EXPECT_THROW_WITH(solve_sde_euler_maruyama(ou_drift, too_wide, x0, uniform(2)), InvalidArgument,
                    "diffusion of shape [4, 3, 2] at t = 0 does not broadcast to the state's shape [3, 2]");
  EXPECT_THROW_WITH(solve_sde_euler_maruyama(ou_drift, mismatched, x0, uniform(2)), InvalidArgument,
                    "diffusion of shape [3]");
  EXPECT_THROW_WITH(solve_sde_euler_maruyama(ou_drift, ou_diffusion, x0, {0.0}), InvalidArgument,
                    "at least two points");
  PcOptions o;
  o.snr = 0;
  EXPECT_THROW_WITH(solve_sde_pc(ou_drift, ou_diffusion, stationary_score, x0, uniform(2), o),
                    InvalidArgument, "snr must be positive");
  o = PcOptions();
  o.corrector_steps = -1;
  EXPECT_THROW_WITH(solve_sde_pc(ou_drift, ou_diffusion, stationary_score, x0, uniform(2), o),
                    InvalidArgument, "corrector_steps must be >= 0, got -1");
}

}  // namespace
}  // namespace sdegen
