// The 1-D Fokker-Planck solver against closed forms: the Ornstein-Uhlenbeck marginals, the exact
// Gaussian-mixture oracle's marginals under its generative SDEs and probability-flow ODE, and a
// simulated ensemble's histogram; plus the refusals of bad input.
#include "sdegen/eval/fokker_planck.h"

#include <chrono>
#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/oracle.h"
#include "support/support.h"

namespace sdegen {
namespace {

double normal_cdf(double x, double mean, double var) {
  return 0.5 * std::erfc(-(x - mean) / std::sqrt(2.0 * var));
}

// Exact cell averages of N(mean, var) on the grid.
std::vector<double> normal_cells(const Grid1d& grid, double mean, double var) {
  const std::vector<double> faces = grid.faces();
  std::vector<double> p(static_cast<size_t>(grid.cells));
  for (size_t i = 0; i < p.size(); ++i)
    p[i] = (normal_cdf(faces[i + 1], mean, var) - normal_cdf(faces[i], mean, var)) / grid.dx();
  return p;
}

double min_of(const std::vector<double>& p) { return *std::min_element(p.begin(), p.end()); }

// The Ornstein-Uhlenbeck process dx = -theta x dt + s dW from N(m0, v0) stays Gaussian with
// mean m0 e^{-theta t} and variance v0 e^{-2 theta t} + s^2 / (2 theta) (1 - e^{-2 theta t}).
struct OrnsteinUhlenbeck {
  double theta = 1.5, s = 0.8, m0 = 2.0, v0 = 0.25;
  double mean(double t) const { return m0 * std::exp(-theta * t); }
  double var(double t) const {
    const double e = std::exp(-2.0 * theta * t);
    return v0 * e + s * s / (2.0 * theta) * (1.0 - e);
  }
  FokkerPlanckResult solve(const FokkerPlanckOptions& o) const {
    const GridField f = [this](const torch::Tensor& x, double) { return -theta * x; };
    const GridField sigma = [this](const torch::Tensor& x, double) {
      return torch::tensor(s, torch::kDouble);
    };
    return solve_fokker_planck(f, sigma, normal_cells(o.grid, m0, v0), 0.0, o.times.back(), o);
  }
  // The largest L1 error over the output times.
  double max_error(const FokkerPlanckResult& r, const Grid1d& grid) const {
    double worst = 0.0;
    for (size_t k = 0; k < r.times.size(); ++k)
      worst = std::max(
          worst,
          l1_distance(r.density[k], normal_cells(grid, mean(r.times[k]), var(r.times[k])), r.dx));
    return worst;
  }
};

TEST(FokkerPlanck, OrnsteinUhlenbeckMatchesTheExactGaussian) {
  const OrnsteinUhlenbeck ou;
  FokkerPlanckOptions o;
  o.grid = {-4.0, 6.0, 1000};  // dx = 0.01; N(2, 0.25) has < 1e-15 of its mass outside
  o.times = {0.1, 0.5, 1.0, 2.0};
  const FokkerPlanckResult r = ou.solve(o);
  double mass0 = 0.0;
  for (double p : normal_cells(o.grid, ou.m0, ou.v0)) mass0 += p * o.grid.dx();
  EXPECT_NEAR(mass0, 1.0, 1e-12);
  ASSERT_EQ(r.density.size(), 4u);
  for (size_t k = 0; k < r.times.size(); ++k) {
    const auto exact = normal_cells(o.grid, ou.mean(r.times[k]), ou.var(r.times[k]));
    const double err = l1_distance(r.density[k], exact, r.dx);
    std::cout << "  t=" << r.times[k] << " L1 " << err << " mass - 1 " << r.mass[k] - 1.0 << " ("
              << r.steps << " steps)\n";
    // Measured: L1 2.7e-5, 5.2e-5, 4.1e-5, 3.6e-5 (dx = 0.01).
    EXPECT_LT(err, 2e-4) << "t=" << r.times[k];
    // Zero-flux walls: the mass moves only between cells; rounding alone changes it
    // (measured 6.5e-13 at t = 2).
    EXPECT_NEAR(r.mass[k], mass0, 1e-10) << "t=" << r.times[k];
    EXPECT_GE(min_of(r.density[k]), 0.0) << "t=" << r.times[k];
  }
  EXPECT_GT(r.steps, 0);
  EXPECT_EQ(r.evaluations, r.steps + r.rejected + 1);
}

// Halving dx (and with it dt, through the CFL bound) must shrink the error by well over 2: the
// scheme is second order except at the density's peak, where the limiter clips the slope.
TEST(FokkerPlanck, OrnsteinUhlenbeckConvergesAtSecondOrder) {
  const OrnsteinUhlenbeck ou;
  FokkerPlanckOptions o;
  o.times = {0.5, 1.0};
  std::vector<double> errors;
  for (int64_t cells : {90, 180, 360}) {
    o.grid = {-4.0, 5.0, cells};
    errors.push_back(ou.max_error(ou.solve(o), o.grid));
  }
  const double order1 = std::log2(errors[0] / errors[1]), order2 = std::log2(errors[1] / errors[2]);
  std::cout << "  L1 errors " << errors[0] << " " << errors[1] << " " << errors[2] << ", orders "
            << order1 << " " << order2 << "\n";
  // Measured: errors 4.7e-3, 1.2e-3, 3.1e-4, orders 1.96 and 1.95.
  EXPECT_GT(order1, 1.7) << errors[0] << " " << errors[1];
  EXPECT_GT(order2, 1.7) << errors[1] << " " << errors[2];
}

// The oracle's generative SDE dx = [v + sigma^2 / 2 s] dt + sigma dW, for any sigma, carries the
// exact marginal p_t of gmm1d under the schedule: the PDE solution from p_t0 must stay on it.
struct OracleCase {
  std::string schedule;
  DiffusionSpec sde;    // the diffusion checked against the oracle
  DiffusionSpec other;  // a second diffusion, checked against the first and the ODE
};

class FokkerPlanckOracle : public ::testing::TestWithParam<OracleCase> {};

TEST_P(FokkerPlanckOracle, MarginalsMatchTheOracleForSdeAndOde) {
  const OracleCase c = GetParam();
  const auto oracle =
      std::make_shared<GmmOracle>(*make_density("gmm1d")->mixture(), make_schedule(c.schedule));
  FokkerPlanckOptions o;
  o.grid = {-6.5, 5.5, 600};  // dx = 0.02; p_0 = N(0, 1) has 2e-8 of its mass outside
  o.times = {0.3, 0.6, 0.9};
  const double t0 = 0.0;
  const std::vector<double> p0 =
      density_on_grid([&](const torch::Tensor& x) { return oracle->log_prob(x, t0); }, o.grid);
  const auto centres = torch::tensor(o.grid.centres(), torch::kDouble).reshape({-1, 1});

  std::vector<FokkerPlanckResult> results;
  for (DiffusionSpec spec : {c.sde, DiffusionSpec{}, c.other}) {
    const auto start = std::chrono::steady_clock::now();
    results.push_back(solve_fokker_planck(MarginalSde(oracle, spec), p0, t0, 0.9, o));
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "  " << c.schedule << " sigma=" << diffusion_name(spec) << ": "
              << results.back().steps << " steps, " << results.back().diffusion_substeps
              << " diffusion substeps, " << secs << " s\n";
  }
  for (size_t k = 0; k < o.times.size(); ++k) {
    const double t = o.times[k];
    const torch::Tensor exact_t = torch::exp(oracle->log_prob(centres, t));
    const std::vector<double> exact(exact_t.data_ptr<double>(),
                                    exact_t.data_ptr<double>() + exact_t.numel());
    const char* names[] = {"sde", "ode", "other sde"};
    for (size_t j = 0; j < results.size(); ++j) {
      const double err = l1_distance(results[j].density[k], exact, o.grid.dx());
      std::cout << "  t=" << t << " " << names[j] << " L1 vs oracle " << err << "\n";
      // Measured (dx = 0.02): 2e-5 to 1.3e-4, except the linear ODE at t = 0.9 (sharpest
      // modes, no diffusion to smooth what the limiter clips): 6.7e-4. The error is spatial
      // (halving cfl changes it by < 10%) and falls 4x per halving of dx.
      EXPECT_LT(err, 1e-3) << names[j] << " t=" << t;
      EXPECT_NEAR(results[j].mass[k], 1.0, 1e-10) << names[j] << " t=" << t;
      EXPECT_GE(min_of(results[j].density[k]), 0.0) << names[j] << " t=" << t;
    }
    // Different diffusions, one marginal (Fokker-Planck).
    EXPECT_LT(l1_distance(results[0].density[k], results[1].density[k], o.grid.dx()), 1e-3) << t;
    EXPECT_LT(l1_distance(results[0].density[k], results[2].density[k], o.grid.dx()), 1e-3) << t;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Schedules, FokkerPlanckOracle,
    ::testing::Values(
        OracleCase{"vp", {DiffusionSpec::Kind::Reverse, 1.0}, {DiffusionSpec::Kind::Reverse, 0.5}},
        OracleCase{
            "linear", {DiffusionSpec::Kind::Constant, 1.0}, {DiffusionSpec::Kind::Constant, 2.0}}),
    [](const ::testing::TestParamInfo<OracleCase>& info) { return info.param.schedule; });

// Euler-Maruyama paths of the oracle's SDE (linear schedule, sigma = 1) from the prior N(0, 1)
// at t = 0 to t = 0.8, written out here so that this test depends on no solver module.
torch::Tensor simulate(const GenerativeSde& sde, int64_t n, double t1, int steps) {
  torch::Tensor x = torch::randn({n, 1}, torch::kDouble);
  const double h = t1 / steps;
  for (int i = 0; i < steps; ++i) {
    const double t = i * h;
    x = x + sde.drift(x, t) * h + sde.diffusion(x, t) * std::sqrt(h) * torch::randn_like(x);
  }
  return x;
}

// Bin masses of samples and of a gridded density on bins of `per_bin` cells each.
std::vector<double> histogram(const torch::Tensor& x, const Grid1d& grid, int64_t per_bin) {
  const int64_t bins = grid.cells / per_bin;
  const torch::Tensor idx = ((x.reshape({-1}) - grid.x_min) / (grid.dx() * per_bin))
                                .floor()
                                .clamp(0, bins - 1)
                                .to(torch::kLong);
  const torch::Tensor counts = torch::bincount(idx, {}, bins).to(torch::kDouble) / x.size(0);
  return std::vector<double>(counts.data_ptr<double>(), counts.data_ptr<double>() + bins);
}
std::vector<double> bin_masses(const std::vector<double>& p, double dx, int64_t per_bin) {
  std::vector<double> out(p.size() / static_cast<size_t>(per_bin), 0.0);
  for (size_t i = 0; i < out.size() * static_cast<size_t>(per_bin); ++i)
    out[i / static_cast<size_t>(per_bin)] += p[i] * dx;
  return out;
}
double l1(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(a[i] - b[i]);
  return s;
}

// The PDE density against the histogram of 100k simulated paths, on bins of 10 cells (0.2 wide).
// Monte Carlo noise: E sum_j |P^_j - P_j| ~ sum_j sqrt(2 P_j (1 - P_j) / (pi n)) = 0.0138 here.
// Euler bias: measured L1 0.029-0.030 with 50 steps, a bias of about sqrt(0.030^2 - 0.014^2)
// = 0.026 at h = 0.016, so about 0.013 with the 100 steps used here (h = 0.008; 100, 200 and
// 400 steps all measured 0.014-0.017). The bound is 2 * noise + 0.02 = 0.048. The PDE density
// at t = 0.6 instead of 0.8 must fail that bound.
TEST(FokkerPlanck, SimulatedEnsembleHistogramAgrees) {
  torch::manual_seed(11);
  const auto oracle =
      std::make_shared<GmmOracle>(*make_density("gmm1d")->mixture(), make_schedule("linear"));
  const MarginalSde sde(oracle, {DiffusionSpec::Kind::Constant, 1.0});
  const int64_t n = 100000, per_bin = 10;
  const double t1 = 0.8;
  FokkerPlanckOptions o;
  o.grid = {-6.0, 6.0, 600};
  o.times = {0.6, t1};
  const std::vector<double> p0 =
      density_on_grid([&](const torch::Tensor& x) { return oracle->log_prob(x, 0.0); }, o.grid);
  const FokkerPlanckResult r = solve_fokker_planck(sde, p0, 0.0, t1, o);

  const torch::Tensor x = simulate(sde, n, t1, 100);
  const double outside = ((x < o.grid.x_min) | (x > o.grid.x_max)).sum().item<double>() / n;
  EXPECT_LT(outside, 1e-4);
  const std::vector<double> hist = histogram(x, o.grid, per_bin);
  const std::vector<double> pde = bin_masses(r.density[1], r.dx, per_bin);
  double noise = 0.0;
  for (double P : pde) noise += std::sqrt(2.0 * P * (1.0 - P) / (M_PI * static_cast<double>(n)));
  const double bound = 2.0 * noise + 0.02;
  const double err = l1(hist, pde);
  const double wrong_time = l1(hist, bin_masses(r.density[0], r.dx, per_bin));
  // Measured: 0.021 (seed 11); against t = 0.6: 0.45.
  std::cout << "  ensemble L1 " << err << " (expected noise " << noise << ", bound " << bound
            << "); against t = 0.6: " << wrong_time << "\n";
  EXPECT_LT(err, bound);
  EXPECT_GT(wrong_time, 2.0 * bound);
}

FokkerPlanckOptions small_options() {
  FokkerPlanckOptions o;
  o.grid = {-1.0, 1.0, 10};
  return o;
}
const GridField zero = [](const torch::Tensor&, double) {
  return torch::tensor(0.0, torch::kDouble);
};
const GridField one = [](const torch::Tensor&, double) {
  return torch::tensor(1.0, torch::kDouble);
};

TEST(FokkerPlanck, RefusesBadGridsTimesAndDensities) {
  const std::vector<double> p(10, 0.5);
  FokkerPlanckOptions o = small_options();
  o.grid.cells = 0;
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, {}, 0.0, 1.0, o), InvalidArgument,
                    "cells in [1, 100000], got 0");
  o = small_options();
  o.grid.x_min = 1.0;
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 0.0, 1.0, o), InvalidArgument,
                    "x_min < x_max");
  EXPECT_THROW_WITH(density_on_grid([](const torch::Tensor& x) { return -x.squeeze(1); }, o.grid),
                    InvalidArgument, "x_min < x_max");
  o = small_options();
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 1.0, 0.0, o), InvalidArgument, "t0 <= t1");
  o.times = {0.5, 1.5};
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 0.0, 1.0, o), InvalidArgument,
                    "output time 1.5 is outside [0, 1]");
  o.times = {0.5, 0.5};
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 0.0, 1.0, o), InvalidArgument,
                    "strictly increasing");
  o = small_options();
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, std::vector<double>(9, 0.5), 0.0, 1.0, o),
                    InvalidArgument, "9 values for 10 cells");
  std::vector<double> bad = p;
  bad[3] = -0.1;
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, bad, 0.0, 1.0, o), InvalidArgument, "in cell 3");
  bad[3] = NAN;
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, bad, 0.0, 1.0, o), InvalidArgument,
                    "finite and >= 0");
  o.cfl = 0.0;
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 0.0, 1.0, o), InvalidArgument, "cfl");
  EXPECT_THROW_WITH(l1_distance(p, bad, -1.0), InvalidArgument, "cell width");
  EXPECT_THROW_WITH(l1_distance(p, std::vector<double>(3), 0.1), InvalidArgument,
                    "different lengths");
  const GridField wrong_shape = [](const torch::Tensor&, double) { return torch::zeros({3}); };
  EXPECT_THROW_WITH(solve_fokker_planck(wrong_shape, one, p, 0.0, 1.0, small_options()),
                    InvalidArgument, "the drift returned shape [3]");
}

TEST(FokkerPlanck, ReportsNumericTroubleWithTheTime) {
  const std::vector<double> p(10, 0.5);
  const GridField blows_up = [](const torch::Tensor& x, double t) {
    return t > 0.5 ? torch::full_like(x, NAN) : torch::zeros_like(x);
  };
  EXPECT_THROW_WITH(solve_fokker_planck(blows_up, zero, p, 0.0, 1.0, small_options()), NumericError,
                    "the drift is not finite at t = ");
  FokkerPlanckOptions o = small_options();
  o.max_steps = 5;  // max_dt = 0.01 needs 100 steps
  EXPECT_THROW_WITH(solve_fokker_planck(zero, one, p, 0.0, 1.0, o), NumericError,
                    "maximum number of steps (5) reached at t = 0.05");
  // A contracting drift on a density near the largest double overflows it.
  const GridField contract = [](const torch::Tensor& x, double) { return -20.0 * x; };
  EXPECT_THROW_WITH(solve_fokker_planck(contract, zero, std::vector<double>(10, 1e307), 0.0, 1.0,
                                        small_options()),
                    NumericError, "the density became non-finite at t = ");
}

// Output at t0 is the initial density; pure diffusion with constant sigma is the heat equation,
// whose Gaussian solution has variance v0 + sigma^2 t.
TEST(FokkerPlanck, PureDiffusionAndOutputAtTheStart) {
  FokkerPlanckOptions o;
  o.grid = {-6.0, 6.0, 600};
  o.times = {0.0, 0.5, 1.0};
  const std::vector<double> p0 = normal_cells(o.grid, 0.0, 0.1);
  const FokkerPlanckResult r = solve_fokker_planck(zero, one, p0, 0.0, 1.0, o);
  EXPECT_EQ(r.density[0], p0);
  EXPECT_EQ(r.steps, 100);  // max_dt = 0.01: no drift, so no CFL bound
  for (size_t k = 1; k < 3; ++k) {
    const double err = l1_distance(r.density[k], normal_cells(o.grid, 0.0, 0.1 + r.times[k]), r.dx);
    std::cout << "  t=" << r.times[k] << " L1 " << err << "\n";
    EXPECT_LT(err, 2e-4);  // Measured: 6.5e-5 at t = 0.5, 3.9e-5 at t = 1.
  }
  EXPECT_EQ(r.density_tensor().sizes(), (std::vector<int64_t>{3, 600}));
}

}  // namespace
}  // namespace sdegen
