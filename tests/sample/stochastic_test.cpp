// The stochastic samplers with their own noise (ddpm, reverse-diffusion, edm): their steps
// against independent computations, their convergence on the exact oracle, and their refusals.
#include <cmath>
#include <iostream>

#include "sdegen/core/check.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/sample/sampler.h"
#include "support/support.h"

namespace sdegen {
namespace {

SamplerOptions opts(const std::string& solver, int steps) {
  SamplerOptions o;
  o.solver = solver;
  o.steps = steps;
  return o;
}

// One DDPM step written from the chain x_i = r x_{i+1} + G z and Bayes' rule in its natural
// parameters (precisions add), not the sampler's simplified form: x_{i+1} | x_i, y is Gaussian
// with precision 1 / b_{i+1}^2 + r^2 / G^2 and mean var (a_{i+1} y / b_{i+1}^2 + r x_i / G^2).
struct Posterior {
  double x_coef, y_coef, var;
};
Posterior ddpm_posterior(const AffineSchedule& s, double t, double t_next) {
  const double r = s.a(t) / s.a(t_next), b_next = s.b(t_next);
  const double g2 = std::pow(s.b(t), 2) - r * r * b_next * b_next;
  if (b_next == 0) return {0.0, s.a(t_next), 0.0};
  const double var = 1.0 / (1.0 / (b_next * b_next) + r * r / g2);
  return {var * r / g2, var * s.a(t_next) / (b_next * b_next), var};
}

// The exact mean and variance of the DDPM chain for 1-D Gaussian data N(m, sd^2), where
// y_hat(x, t) = m + k (x - a m) with k = a sd^2 / (a^2 sd^2 + b^2): every step is linear-Gaussian.
std::pair<double, double> ddpm_moments(const AffineSchedule& s, const TimeGrid& grid, double m, double sd) {
  double mean = 0.0, var = s.prior_std() * s.prior_std();
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double a = s.a(grid[i]), b = s.b(grid[i]);
    const double k = a * sd * sd / (a * a * sd * sd + b * b);
    const Posterior p = ddpm_posterior(s, grid[i], grid[i + 1]);
    const double slope = p.x_coef + p.y_coef * k;
    mean = slope * mean + p.y_coef * (m - k * a * m);
    var = slope * slope * var + p.var;
  }
  return {mean, var};
}

// For data that are one point mu the posterior given y_hat = mu is the chain's own, so DDPM is
// exact at every grid point for any number of steps: x_i ~ N(a_i mu, b_i^2), from a = 0 at t = 0.
TEST(Ddpm, IsExactAtEveryGridPointForAPointMass) {
  const double mu = 1.5;
  const GmmOracle oracle(make_mixture({1.0}, {{mu}}, {{1e-9}}), make_schedule("linear"));
  const AffineSchedule& s = oracle.schedule();
  torch::manual_seed(1);
  const int64_t n = 100000;
  for (int steps : {5, 50}) {
    std::vector<std::pair<double, torch::Tensor>> seen;
    const Solution sol = sample(oracle, torch::randn({n, 1}, torch::kDouble), opts("ddpm", steps),
                                [&](double t, const torch::Tensor& x) { seen.emplace_back(t, x); });
    ASSERT_TRUE(sol.ok()) << sol.message;
    EXPECT_EQ(sol.nfe, steps);
    for (const auto& [t, x] : seen) {
      const double b = s.b(t), mean = x.mean().item<double>(), sd = x.std().item<double>();
      EXPECT_NEAR(mean, s.a(t) * mu, 4 * b / std::sqrt(n) + 1e-9) << steps << " steps, t = " << t;
      EXPECT_NEAR(sd, b, 4 * b / std::sqrt(2.0 * n) + 1e-9) << steps << " steps, t = " << t;
    }
  }
}

// Data with spread: the sample's moments at t = 1 are the chain's exact ones (the recursion above)
// at 5 and at 50 steps, within Monte Carlo error (4 standard errors); a 10% error in the posterior
// variance fails it (tried by hand). DDPM's posterior variance leaves out Var[y | x_i] (Ho et
// al.'s lower choice, exact only for a point mass), so the variance reaches the data's only as
// the steps shrink; the mean is exact where the prior is q_0 (linear), and off by vp's
// a(0) m = 0.005 times a small factor under vp, whose q_0 is not quite N(0, 1).
TEST(Ddpm, MatchesTheExactChainMomentsOnAGaussian) {
  const double m = 0.7, sd = 0.6;
  for (const std::string schedule : {"linear", "vp"}) {
    const GmmOracle oracle(make_mixture({1.0}, {{m}}, {{sd}}), make_schedule(schedule));
    const AffineSchedule& s = oracle.schedule();
    torch::manual_seed(2);
    const int64_t n = 50000;
    for (int steps : {5, 50}) {
      SamplerOptions o = opts("ddpm", steps);
      const auto [mean, var] = ddpm_moments(s, sampler_grid(s, o), m, sd);
      const torch::Tensor x = sample(oracle, torch::randn({n, 1}, torch::kDouble), o).check().x;
      const double got_mean = x.mean().item<double>(), got_var = x.var().item<double>();
      SCOPED_TRACE(schedule + ", " + std::to_string(steps) + " steps");
      EXPECT_NEAR(got_mean, mean, 4 * std::sqrt(var / n));
      EXPECT_NEAR(got_var, var, 4 * var * std::sqrt(2.0 / n));
    }
    std::vector<double> ratios;
    for (int steps : {5, 50, 500, 5000}) {
      const auto [mean, var] = ddpm_moments(s, sampler_grid(s, opts("ddpm", steps)), m, sd);
      EXPECT_NEAR(mean, m, schedule == "linear" ? 1e-12 : 1e-4) << steps << " steps";
      ratios.push_back(var / (sd * sd));
      std::cout << "[ ddpm ] " << schedule << ", " << steps << " steps: variance ratio " << ratios.back() << "\n";
    }
    for (size_t k = 1; k < ratios.size(); ++k) EXPECT_GT(ratios[k], ratios[k - 1]);
    EXPECT_NEAR(ratios.back(), 1.0, 0.01) << schedule;
  }
}

// One reverse-diffusion step against Song et al.'s x_{i+1} = (x_i + G^2 s) / r + (G / r) z,
// computed here from the oracle's score with the same noise; the last step adds none.
TEST(ReverseDiffusion, StepIsSongsPredictorWithTheTweedieMean) {
  const GmmOracle oracle(*make_density("gmm1d")->mixture(), make_schedule("vp"));
  const AffineSchedule& s = oracle.schedule();
  const torch::Tensor x0 = torch::linspace(-2, 2, 9, torch::kDouble).unsqueeze(1);
  SamplerOptions o = opts("reverse-diffusion", 2);
  o.t0 = 0.2;
  o.t1 = 0.8;
  std::vector<torch::Tensor> seen;
  torch::manual_seed(5);
  const Solution sol = sample(oracle, x0, o, [&](double, const torch::Tensor& x) { seen.push_back(x); });
  ASSERT_TRUE(sol.ok());
  torch::manual_seed(5);
  const torch::Tensor z = torch::randn_like(x0);
  auto song = [&](double t, double t_next, const torch::Tensor& x, bool noise) {
    const double r = s.a(t) / s.a(t_next), g2 = std::pow(s.b(t), 2) - r * r * std::pow(s.b(t_next), 2);
    const torch::Tensor mean = (x + g2 * oracle.predict(x, t, Prediction::Score)) / r;
    return noise ? mean + std::sqrt(g2) / r * z : mean;
  };
  const torch::Tensor x1 = song(0.2, 0.5, x0, true);
  EXPECT_LT(test::max_abs_diff(seen.at(1), x1), 1e-10);
  EXPECT_LT(test::max_abs_diff(sol.x, song(0.5, 0.8, seen.at(1), false)), 1e-10);
}

// As sampler_matrix_test: the mean distance over 16 chunks of 200 points against as many fresh
// data points, beside the two-sample floor (the mean over 64 pairs of data samples of 200); one
// distance alone spreads by +-40%, the mean of 16 by about 10%.
constexpr int64_t kChunk = 200, kChunks = 16;

double chunked_distance(const torch::Tensor& a, const torch::Tensor& b) {
  return chunked_sample_distance(a, b, kChunk, kChunks);
}

// Within 1.5 times the floor at `many` steps, and beyond few_factor times it at `few`, so the
// comparison can tell a sampler that converges from one that does not.
void expect_converges(const SamplerOptions& base, const std::string& schedule, int few, int many,
                      double few_factor) {
  for (const std::string name : {"gmm1d", "gmm2d"}) {
    SCOPED_TRACE(base.solver + " on " + name + " (" + schedule + ")");
    torch::manual_seed(11);
    const DensityPtr data = make_density(name);
    const GmmOracle oracle(*data->mixture(), make_schedule(schedule));
    double floor = 0.0;
    for (int k = 0; k < 64; ++k) floor += sample_distance(data->sample(kChunk), data->sample(kChunk)) / 64;
    const int64_t n = kChunk * kChunks;
    const torch::Tensor x0 = oracle.schedule().prior_std() * torch::randn({n, data->dim()}, torch::kDouble);
    SamplerOptions o = base;
    o.steps = many;
    const double d_many = chunked_distance(sample(oracle, x0, o).check().x, data->sample(n));
    o.steps = few;
    const double d_few = chunked_distance(sample(oracle, x0, o).check().x, data->sample(n));
    std::cout << "[ converge ] " << base.solver << " on " << name << ": " << d_many / floor << " x floor at " << many
              << " steps, " << d_few / floor << " x at " << few << "\n";
    EXPECT_LT(d_many, 1.5 * floor) << "distance " << d_many << ", floor " << floor;
    EXPECT_GT(d_few, few_factor * floor) << "distance " << d_few << ", floor " << floor;
  }
}

TEST(ReverseDiffusion, ConvergesOnTheOracle) { expect_converges(opts("reverse-diffusion", 0), "vp", 3, 500, 2.5); }

TEST(ReverseDiffusion, AsPcPredictorConvergesOnTheOracle) {
  SamplerOptions o = opts("pc", 0);
  o.pc.predictor = "reverse-diffusion";
  expect_converges(o, "vp", 3, 500, 2.5);
}

// EDM's Heun sampler in sigma = b / a on x / a, written out here from the data prediction:
// with churn 0 the sampler is exactly this, under a schedule with a != 1 and b(1) = 0 (a last
// Euler step to sigma = 0), so the map between (x, t) and (x / a, sigma) is exercised.
TEST(Edm, ChurnZeroIsHeunInSigma) {
  const GmmOracle oracle(*make_density("gmm2d")->mixture(), make_schedule("vp"));
  const AffineSchedule& s = oracle.schedule();
  const torch::Tensor x0 = torch::randn({64, 2}, torch::kDouble);
  const SamplerOptions o = opts("edm", 12);
  const Solution sol = sample(oracle, x0, o);
  ASSERT_TRUE(sol.ok()) << sol.message;
  const TimeGrid grid = sampler_grid(s, o);
  ASSERT_EQ(s.b(grid.back()), 0.0);
  EXPECT_EQ(sol.nfe, 2 * 12 - 1);
  torch::Tensor x = x0 / s.a(grid[0]);
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double sig = s.b(grid[i]) / s.a(grid[i]), sig_next = s.b(grid[i + 1]) / s.a(grid[i + 1]);
    const torch::Tensor d = (x - oracle.predict(s.a(grid[i]) * x, grid[i], Prediction::Data)) / sig;
    torch::Tensor next = x + (sig_next - sig) * d;
    if (sig_next > 0) {
      const torch::Tensor d2 = (next - oracle.predict(s.a(grid[i + 1]) * next, grid[i + 1], Prediction::Data)) / sig_next;
      next = x + (sig_next - sig) * 0.5 * (d + d2);
    }
    x = next;
  }
  EXPECT_LT(test::max_abs_diff(sol.x, s.a(grid.back()) * x), 1e-10);
  // Churn outside [s_tmin, s_tmax] adds nothing: the same solve, bit for bit.
  SamplerOptions window = o;
  window.edm.churn = 40;
  window.edm.s_tmin = 1e3;
  EXPECT_LT(test::max_abs_diff(sample(oracle, x0, window).check().x, sol.x), 1e-12);
  window.edm.s_tmin = 0.0;
  EXPECT_GT(test::max_abs_diff(sample(oracle, x0, window).check().x, sol.x), 1e-3);
}

TEST(Edm, WithChurnConvergesOnTheOracle) {
  SamplerOptions o = opts("edm", 0);
  o.edm.churn = 20;
  expect_converges(o, "vp", 2, 100, 3.0);
  o.edm.s_noise = 1.007;  // the paper's value for ImageNet
  expect_converges(o, "edm", 2, 100, 3.0);
}

TEST(StochasticSamplers, RefuseBadOptions) {
  const GmmOracle linear(*make_density("gmm1d")->mixture(), make_schedule("linear"));
  const torch::Tensor x0 = torch::randn({4, 1});
  EXPECT_THROW_WITH(sample(linear, x0, opts("edm", 10)), InvalidArgument,
                    "solver 'edm' works in sigma = b / a, which is infinite at t = 0 under the 'linear' schedule");
  EXPECT_THROW_WITH(sample(linear, x0, opts("reverse-diffusion", 10)), InvalidArgument, "start at t0 > 0");
  SamplerOptions pc = opts("pc", 10);
  pc.pc.predictor = "reverse-diffusion";
  EXPECT_THROW_WITH(sample(linear, x0, pc), InvalidArgument, "with the reverse-diffusion predictor divides by a(t)");
  pc.t0 = 0.01;
  EXPECT_TRUE(sample(linear, x0, pc).ok());
  pc.pc.predictor = "heun";
  EXPECT_THROW_WITH(sample(linear, x0, pc), InvalidArgument,
                    "unknown pc predictor 'heun'; valid: euler-maruyama, reverse-diffusion");
  SamplerOptions e = opts("edm", 10);
  e.t0 = 0.01;
  EXPECT_TRUE(sample(linear, x0, e).ok());
  e.edm.churn = -1;
  EXPECT_THROW_WITH(sample(linear, x0, e), InvalidArgument, "edm churn (S_churn) must be >= 0");
  e.edm.churn = 1;
  e.edm.s_noise = 0;
  EXPECT_THROW_WITH(sample(linear, x0, e), InvalidArgument, "edm s_noise (S_noise) must be > 0");
  e.edm.s_noise = 1;
  e.edm.s_tmin = 2;
  e.edm.s_tmax = 1;
  EXPECT_THROW_WITH(sample(linear, x0, e), InvalidArgument, "s_tmin <= s_tmax");
  SamplerOptions heun = opts("heun", 10);
  heun.edm.churn = 1;
  EXPECT_THROW_WITH(sample(linear, x0, heun), InvalidArgument, "options of the edm solver; solver 'heun'");
  heun = opts("heun", 10);
  heun.pc.predictor = "reverse-diffusion";
  EXPECT_THROW_WITH(sample(linear, x0, heun), InvalidArgument, "an option of the pc solver, not of 'heun'");
  for (const std::string solver : {"ddpm", "reverse-diffusion", "edm"}) {
    SamplerOptions d = opts(solver, 10);
    d.t0 = 0.01;
    d.diffusion = parse_diffusion("1");
    EXPECT_THROW_WITH(sample(linear, x0, d), InvalidArgument, "draws the noise its own method defines");
  }
  EXPECT_THROW_WITH(sample(linear, x0, opts("edm-heun", 10)), InvalidArgument, "unknown solver 'edm-heun'");
  // ddpm starts anywhere, a = 0 included.
  EXPECT_TRUE(sample(linear, x0, opts("ddpm", 10)).ok());
}

}  // namespace
}  // namespace sdegen
