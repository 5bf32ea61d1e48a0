// The SDE samplers on the exact oracle, by moments at large n instead of a two-sample distance:
// the mean, variance and third central moment of 40,000 1-D draws against the mixture's exact
// moments, within 4 Monte Carlo standard deviations; and the
// covariance of two times of one Euler-Maruyama path under the reverse diffusion against the
// noising process's (reverse_diffusion_test.cpp has the exact version).
#include <cmath>
#include <iostream>

#include "sdegen/data/density.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/sample/sampler.h"
#include "support/support.h"

namespace sdegen {
namespace {

// Central moments 2, 3, 4 and 6 of a 1-D mixture, and the mean.
struct Moments {
  double mean, m2, m3, m4, m6;
};

Moments of_mixture(const GaussianMixture& m) {
  const torch::Tensor w = m.weights, mu = m.means.select(1, 0), s2 = m.stds.select(1, 0).square();
  const double mean = (w * mu).sum().item<double>();
  const torch::Tensor d = mu - mean;
  // E (x - mean)^k for each component N(mean + d, s2).
  const auto sum = [&](const torch::Tensor& v) { return (w * v).sum().item<double>(); };
  return {mean, sum(d * d + s2), sum(d.pow(3) + 3 * d * s2), sum(d.pow(4) + 6 * d * d * s2 + 3 * s2 * s2),
          sum(d.pow(6) + 15 * d.pow(4) * s2 + 45 * d * d * s2 * s2 + 15 * s2.pow(3))};
}

struct SdeCase {
  std::string solver, schedule, sigma;
  int steps;
};
void PrintTo(const SdeCase& c, std::ostream* os) { *os << c.solver << " " << c.schedule << " " << c.sigma; }

class SdeSamplerMoments : public ::testing::TestWithParam<SdeCase> {};

// 40,000 draws: the Monte Carlo sds (sample mean sqrt(m2 / n), second central moment
// sqrt((m4 - m2^2) / n), third sqrt((m6 - m3^2 - 6 m4 m2 + 9 m2^3) / n)) are 0.010, 0.022 and 0.07
// on gmm1d, against its variance 4.2: a 1% error in the variance is 2 sds. The solvers' own bias
// is smaller: euler-maruyama's on linear is -0.0135 in m2 at 400 steps (measured with n = 200,000),
// so about -0.03 (1.5 sd) at 200. Measured here (seed 31): every moment within 2.5 sds.
TEST_P(SdeSamplerMoments, MatchTheMixturesMoments) {
  const SdeCase& c = GetParam();
  torch::manual_seed(31);
  const GmmOracle oracle(*make_density("gmm1d")->mixture(), make_schedule(c.schedule));
  const int64_t n = 40000;
  SamplerOptions o;
  o.solver = c.solver;
  o.steps = c.steps;
  o.diffusion = parse_diffusion(c.sigma);
  // The reverse diffusion is infinite where b = 0: stop short of the data end there.
  o.t1 = oracle.schedule().b(1.0) == 0.0 ? 0.999 : 1.0;
  const torch::Tensor x0 = oracle.schedule().prior_std() * torch::randn({n, 1}, torch::kDouble);
  const Solution sol = sample(oracle, x0, o);
  ASSERT_TRUE(sol.ok()) << sol.message;
  const Moments want = of_mixture(oracle.marginal(o.t1));
  const double mean = sol.x.mean().item<double>();
  const torch::Tensor d = sol.x - mean;
  const double m2 = d.square().mean().item<double>(), m3 = d.pow(3).mean().item<double>();
  const double sd_mean = std::sqrt(want.m2 / n), sd_m2 = std::sqrt((want.m4 - want.m2 * want.m2) / n);
  const double sd_m3 =
      std::sqrt((want.m6 - want.m3 * want.m3 - 6 * want.m4 * want.m2 + 9 * std::pow(want.m2, 3)) / n);
  std::cout << "[ moments ] " << c.solver << " " << c.schedule << " sigma=" << c.sigma << ": mean " << mean << " ("
            << want.mean << ", sd " << sd_mean << "), m2 " << m2 << " (" << want.m2 << ", sd " << sd_m2 << "), m3 "
            << m3 << " (" << want.m3 << ", sd " << sd_m3 << ")\n";
  EXPECT_NEAR(mean, want.mean, 4 * sd_mean);
  EXPECT_NEAR(m2, want.m2, 4 * sd_m2);
  EXPECT_NEAR(m3, want.m3, 4 * sd_m3);
}

INSTANTIATE_TEST_SUITE_P(
    Oracle, SdeSamplerMoments,
    ::testing::Values(SdeCase{"euler-maruyama", "linear", "1", 200}, SdeCase{"euler-maruyama", "vp", "reverse", 200},
                      SdeCase{"pc", "linear", "1", 100}, SdeCase{"pc", "sub-vp", "reverse:0.5", 100}),
    [](const auto& info) {
      return test::param_name(info.param.solver + "_" + info.param.schedule + "_" + info.param.sigma);
    });

// Gaussian data N(0.7, 0.6^2) on vp: Cov(x_s, x_t) = a_s a_t S + a_s b_t^2 / a_t under the reverse
// diffusion, observed along 40,000 Euler-Maruyama paths.
TEST(SdeSamplerPaths, ReverseDiffusionPathsHaveTheNoisingProcesssCovariance) {
  torch::manual_seed(32);
  const double mu = 0.7, sd = 0.6;
  const GmmOracle oracle(make_mixture({1.0}, {{mu}}, {{sd}}), make_schedule("vp"));
  SamplerOptions o;
  o.solver = "euler-maruyama";
  o.steps = 200;
  o.diffusion = parse_diffusion("reverse");
  o.t0 = 0.2;
  o.t1 = 0.9;
  const AffineSchedule& s = oracle.schedule();
  const int64_t n = 40000;
  const double var0 = std::pow(s.a(0.2) * sd, 2) + std::pow(s.b(0.2), 2);
  const torch::Tensor x0 = s.a(0.2) * mu + std::sqrt(var0) * torch::randn({n, 1}, torch::kDouble);
  torch::Tensor at_half;
  const Solution sol = sample(oracle, x0, o, [&](double t, const torch::Tensor& x) {
    if (std::abs(t - 0.55) < 1e-9) at_half = x.clone();
  });
  ASSERT_TRUE(sol.ok()) << sol.message;
  ASSERT_TRUE(at_half.defined());
  const torch::Tensor u = at_half - at_half.mean(), v = sol.x - sol.x.mean();
  const double cov = (u * v).mean().item<double>();
  const double as = s.a(0.55), at = s.a(0.9), bt = s.b(0.9);
  const double want = as * at * sd * sd + as * bt * bt / at;
  // Monte Carlo sd of a covariance: sqrt((var_s var_t + cov^2) / n).
  const double mc = std::sqrt((u.square().mean().item<double>() * v.square().mean().item<double>() + want * want) / n);
  std::cout << "[ paths ] Cov(x_0.55, x_0.9) " << cov << ", noising process " << want << " (Monte Carlo sd " << mc
            << ")\n";
  EXPECT_NEAR(cov, want, 5 * mc + 0.01 * want);
}

}  // namespace
}  // namespace sdegen
