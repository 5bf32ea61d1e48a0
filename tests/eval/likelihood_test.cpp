// Exact log-likelihood through the probability-flow ODE of the oracle reproduces the mixture's
// exact log density.
#include "sdegen/data/density.h"
#include "sdegen/eval/likelihood.h"
#include "sdegen/eval/oracle.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(Likelihood, OracleFlowReproducesExactLogDensity1d) {
  const DensityPtr data = make_density("gmm1d");
  const GmmOracle oracle(*data->mixture(), make_schedule("linear"));
  torch::manual_seed(5);
  const torch::Tensor x = data->sample(100);
  LikelihoodOptions o;
  o.adaptive.rtol = o.adaptive.atol = 1e-8;
  const LikelihoodResult r = log_likelihood(oracle, x, o);
  const double err = test::max_abs_diff(r.log_prob, data->log_prob(x));
  EXPECT_LT(err, 1e-3) << "max error " << err << " nats with " << r.nfe << " evaluations";
}

TEST(Likelihood, OracleFlowReproducesExactLogDensity2dOnTrig) {
  const DensityPtr data = make_density("gmm2d");
  const GmmOracle oracle(*data->mixture(), make_schedule("trig"));
  torch::manual_seed(6);
  const torch::Tensor x = data->sample(100);
  LikelihoodOptions o;
  o.adaptive.rtol = o.adaptive.atol = 1e-8;
  const LikelihoodResult r = log_likelihood(oracle, x, o);
  EXPECT_LT(test::max_abs_diff(r.log_prob, data->log_prob(x)), 1e-3);
}

// Hutchinson's estimate with one Rademacher probe per point (held fixed over the solve) is
// unbiased: the same solver moves x the same way, and the log-density increments are linear in
// the probe's quadratic form, whose mean is the divergence. So the per-point differences to the
// exact-divergence result have mean zero: a z-test of their mean over 300 independent points
// (measured z = 0.8).
// Their spread is real (it is an estimate) and falls as 1 / probes.
TEST(Likelihood, HutchinsonIsUnbiased) {
  const DensityPtr data = make_density("gmm2d");
  const GmmOracle oracle(*data->mixture(), make_schedule("linear"));
  torch::manual_seed(7);
  const int64_t n = 300;
  const torch::Tensor x = data->sample(n);
  LikelihoodOptions exact;
  exact.solver = "rk4";
  exact.steps = 40;
  const torch::Tensor e = log_likelihood(oracle, x, exact).log_prob;
  auto differences = [&](int64_t probes) {
    LikelihoodOptions hutch = exact;
    hutch.exact_divergence = false;
    hutch.probes = probes;
    return log_likelihood(oracle, x, hutch).log_prob - e;
  };
  const torch::Tensor one = differences(1), four = differences(4);
  const double sd = one.std().item<double>(), z = one.mean().item<double>() / (sd / std::sqrt(double(n)));
  std::cout << "  Hutchinson, 1 probe: mean difference " << one.mean().item<double>() << ", sd " << sd << ", z " << z
            << "; 4 probes: sd " << four.std().item<double>() << "\n";
  EXPECT_GT(sd, 1e-3);  // an estimate, not the exact value
  EXPECT_LT(std::abs(z), 4.0);
  const double z4 = four.mean().item<double>() / (four.std().item<double>() / std::sqrt(double(n)));
  EXPECT_LT(std::abs(z4), 4.0);
  // The variance of a mean of 4 independent probes is a quarter of one probe's (the sampling
  // spread of a ratio of two variances over 300 points is about 12%; measured 4.6).
  const double ratio = std::pow(sd / four.std().item<double>(), 2);
  EXPECT_GT(ratio, 2.5);
  EXPECT_LT(ratio, 6.5);
}

}  // namespace
}  // namespace sdegen
