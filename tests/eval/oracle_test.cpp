// The exact oracle against independent computations: score = autograd of log p_t, the
// velocity satisfies the continuity equation, and the predictions agree with the conversions.
#include "sdegen/data/density.h"
#include "sdegen/eval/oracle.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

GmmOracle oracle(const std::string& data, const std::string& schedule) {
  return GmmOracle(*make_density(data)->mixture(), make_schedule(schedule));
}

class OracleOnSchedules : public ::testing::TestWithParam<std::string> {};

TEST_P(OracleOnSchedules, ScoreIsAutogradOfLogDensity) {
  for (const std::string data : {"gmm1d", "gmm2d"}) {
    const GmmOracle o = oracle(data, GetParam());
    const torch::Tensor x = 3.0 * torch::randn({50, o.data().dim()}).requires_grad_(true);
    for (double t : {0.05, 0.3, 0.7, 0.95}) {
      const torch::Tensor grad = torch::autograd::grad({o.log_prob(x, t).sum()}, {x})[0];
      EXPECT_LT(max_abs_diff(o.score(x.detach(), t), grad), 1e-9) << data << " t=" << t;
    }
  }
}

// d p / dt + div(p v) = 0 at interior points, by central differences in t and x.
TEST_P(OracleOnSchedules, VelocitySatisfiesContinuityEquation) {
  for (const std::string data : {"gmm1d", "gmm2d"}) {
    const GmmOracle o = oracle(data, GetParam());
    const int64_t d = o.data().dim();
    const torch::Tensor x = 2.0 * torch::randn({40, d});
    const double h = 1e-5;
    for (double t : {0.1, 0.5, 0.9}) {
      const torch::Tensor p = torch::exp(o.log_prob(x, t));
      const torch::Tensor dpdt = (torch::exp(o.log_prob(x, t + h)) - torch::exp(o.log_prob(x, t - h))) / (2 * h);
      torch::Tensor div = torch::zeros_like(p);
      for (int64_t i = 0; i < d; ++i) {
        torch::Tensor e = torch::zeros({1, d});
        e.index_put_({0, i}, h);
        auto flux = [&](const torch::Tensor& y) {
          return torch::exp(o.log_prob(y, t)) * o.velocity(y, t).select(1, i);
        };
        div = div + (flux(x + e) - flux(x - e)) / (2 * h);
      }
      const double scale = p.abs().max().item<double>();
      EXPECT_LT(((dpdt + div).abs().max().item<double>()) / scale, 1e-5) << data << " t=" << t;
    }
  }
}

TEST_P(OracleOnSchedules, PredictionsAgreeWithConversions) {
  const GmmOracle o = oracle("gmm2d", GetParam());
  const torch::Tensor x = 2.0 * torch::randn({30, 2});
  for (double t : {0.2, 0.6, 0.9}) {
    const ScheduleCoefficients c = o.schedule().coefficients(torch::full({30}, t)).like(x);
    const torch::Tensor y = o.predict(x, t, Prediction::Data);
    for (Prediction p : {Prediction::Noise, Prediction::Score, Prediction::Velocity, Prediction::V}) {
      const torch::Tensor direct = o.predict(x, t, p);
      const torch::Tensor via = convert(y, Prediction::Data, p, x, c);
      EXPECT_LT(max_abs_diff(direct, via) / (1.0 + direct.abs().max().item<double>()), 1e-8)
          << prediction_name(p) << " t=" << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, OracleOnSchedules,
                         ::testing::Values("linear", "trig", "vp", "sub-vp", "vp-cosine", "ve", "edm", "loglinear"),
                         [](const auto& info) { return test::param_name(info.param); });

TEST(Oracle, MarginalAtDataEndIsTheData) {
  const GmmOracle o = oracle("gmm1d", "linear");
  const torch::Tensor x = torch::linspace(-5, 5, 101).unsqueeze(1);
  EXPECT_LT(max_abs_diff(o.log_prob(x, 1.0), o.data().log_prob(x)), 1e-12);
  // At t = 0 the linear schedule's marginal is the prior N(0, 1).
  const torch::Tensor prior = -0.5 * x.squeeze(1).pow(2) - 0.5 * std::log(2 * M_PI);
  EXPECT_LT(max_abs_diff(o.log_prob(x, 0.0), prior), 1e-12);
  // The velocity is finite at both ends even though a(0) = 0 and b(1) = 0.
  EXPECT_TRUE(torch::isfinite(o.velocity(x, 0.0)).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(o.velocity(x, 1.0)).all().item<bool>());
}

TEST(Oracle, VelocityAndScoreTogetherMatchSeparateCalls) {
  const GmmOracle o = oracle("gmm2d", "vp");
  const torch::Tensor x = torch::randn({20, 2});
  const auto [v, s] = o.velocity_and_score(x, 0.4);
  EXPECT_LT(max_abs_diff(v, o.velocity(x, 0.4)), 1e-14);
  EXPECT_LT(max_abs_diff(s, o.score(x, 0.4)), 1e-14);
}

}  // namespace
}  // namespace sdegen
