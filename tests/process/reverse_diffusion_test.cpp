// The reverse diffusion sigma^2 = b^2 lambda' is the one whose generative SDE is the time
// reversal of the noising process, not only a process with the same marginals (every sigma has
// those, so marginal checks cannot see sigma). For Gaussian data N(mu, S) the marginal SDE
// dx = [v + sigma^2/2 s] dt + sigma dW is linear, dx = (A(t) x + B(t)) dt + sigma dW, and the
// covariance of two times s < t of one path solves dC/dt = A(t) C from C(s) = Var x_s. The
// noising process x_s = (a_s / a_t) x_t + noise fixes it:
//   Cov(x_s, x_t) = (a_s / a_t) Var x_t = a_s a_t S + a_s b_t^2 / a_t,
// which the reverse diffusion reproduces and any other sigma misses. The same integration of
// dV/dt = 2 A V + sigma^2 checks that the drift's sigma and the diffusion's sigma agree.
#include <cmath>

#include "sdegen/data/mixture.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/process/generative.h"
#include "support/support.h"

namespace sdegen {
namespace {

constexpr double kMean = 0.7, kStd = 0.6;

struct Moments {
  double covariance, variance;  // Cov(x_s, x_t) and Var x_t of the SDE's paths
};

// RK4 on (C, V) with A(t) read from the SDE's drift (exactly linear in x here) and sigma^2 from
// its diffusion.
Moments integrate(const GenerativeSde& sde, double s, double t, double var_s, int steps = 100) {
  const torch::Tensor zero = torch::zeros({1, 1}, torch::kDouble), one = torch::ones({1, 1}, torch::kDouble);
  const auto rates = [&](double r, double c, double v, double& dc, double& dv) {
    const double A = (sde.drift(one, r) - sde.drift(zero, r)).item<double>();
    const double sigma = sde.diffusion(zero, r).item<double>();
    dc = A * c;
    dv = 2.0 * A * v + sigma * sigma;
  };
  double c = var_s, v = var_s;
  const double h = (t - s) / steps;
  for (int i = 0; i < steps; ++i) {
    const double r = s + i * h;
    double c1, v1, c2, v2, c3, v3, c4, v4;
    rates(r, c, v, c1, v1);
    rates(r + h / 2, c + h / 2 * c1, v + h / 2 * v1, c2, v2);
    rates(r + h / 2, c + h / 2 * c2, v + h / 2 * v2, c3, v3);
    rates(r + h, c + h * c3, v + h * v3, c4, v4);
    c += h / 6 * (c1 + 2 * c2 + 2 * c3 + c4);
    v += h / 6 * (v1 + 2 * v2 + 2 * v3 + v4);
  }
  return {c, v};
}

class ReverseDiffusion : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<GmmOracle> oracle =
      std::make_shared<GmmOracle>(make_mixture({1.0}, {{kMean}}, {{kStd}}), make_schedule(GetParam()));
  const AffineSchedule& sched = oracle->schedule();
  double var(double t) const { return std::pow(sched.a(t) * kStd, 2) + std::pow(sched.b(t), 2); }
  // Cov(x_s, x_t) under the noising process.
  double forward_covariance(double s, double t) const {
    const double as = sched.a(s), at = sched.a(t), bt = sched.b(t);
    return as * at * kStd * kStd + as * bt * bt / at;
  }
};

TEST_P(ReverseDiffusion, PathCovarianceIsTheNoisingProcesss) {
  const MarginalSde sde(oracle, parse_diffusion("reverse"));
  // RK4 in 100 steps: measured relative errors up to 1.6e-5 (ve and edm from 0.1 to 0.9).
  for (const auto& [s, t] : {std::pair{0.1, 0.9}, std::pair{0.5, 0.95}}) {
    const Moments m = integrate(sde, s, t, var(s));
    const double want = forward_covariance(s, t);
    EXPECT_NEAR(m.covariance, want, 1e-4 * std::abs(want)) << "s = " << s << ", t = " << t;
    EXPECT_NEAR(m.variance, var(t), 1e-4 * var(t)) << "s = " << s << ", t = " << t;
  }
}

// The check can fail: half the reverse diffusion, or a constant one, keeps the marginals (the
// variance) but not the covariance.
TEST_P(ReverseDiffusion, OtherDiffusionsKeepTheMarginalsButNotThePathLaw) {
  for (const std::string other : {"reverse:0.5", "1"}) {
    const MarginalSde sde(oracle, parse_diffusion(other));
    const Moments m = integrate(sde, 0.3, 0.6, var(0.3));
    EXPECT_NEAR(m.variance, var(0.6), 1e-4 * var(0.6)) << other;
    EXPECT_GT(std::abs(m.covariance - forward_covariance(0.3, 0.6)), 1e-2 * forward_covariance(0.3, 0.6)) << other;
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, ReverseDiffusion,
                         ::testing::Values("linear", "trig", "vp", "sub-vp", "vp-cosine", "ve", "edm", "loglinear"),
                         [](const auto& info) { return test::param_name(info.param); });

}  // namespace
}  // namespace sdegen
