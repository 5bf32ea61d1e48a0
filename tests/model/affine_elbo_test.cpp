// The affine models' ELBO against the general model's definitions (shared/docs/math.md):
// - the drift term's integrand 1/2 lambda' |eps - eps_hat|^2 (in whatever the net predicts) is the
//   Girsanov integrand |f - g|^2 / (2 sigma^2) of the model's own sampling SDE, f = v + sigma^2/2 s
//   with the reverse diffusion sigma^2 = b^2 lambda', against the conditional drift g of
//   q_t(. | y) = N(a y, b^2 I) with the same sigma;
// - the end terms are the closed forms of the reconstruction and the prior KL;
// - elbo() averages (t_hi - t_lo) times that integrand over its time draws.
#include <cmath>

#include "sdegen/core/tensor.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "support/support.h"

namespace sdegen {
namespace {

struct Case {
  std::string name, kind;
  nlohmann::json overrides;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  return {
      {"flow", "flow", nlohmann::json::object()},
      {"flow_bmin_noise", "flow", {{"b_min", 0.1}, {"prediction", "noise"}}},
      {"flow_trig_data", "flow", {{"schedule", "trig"}, {"prediction", "data"}}},
      {"diffusion_vp_noise", "diffusion", nlohmann::json::object()},
      {"diffusion_vp_data", "diffusion", {{"prediction", "data"}}},
      {"diffusion_vp_v", "diffusion", {{"prediction", "v"}}},
      {"diffusion_subvp_score", "diffusion", {{"schedule", "sub-vp"}, {"prediction", "score"}}},
      {"diffusion_cosine_velocity", "diffusion", {{"schedule", "vp-cosine"}, {"prediction", "velocity"}}},
      {"diffusion_edm", "diffusion", {{"schedule", "edm"}}},
      {"score_ve", "score", nlohmann::json::object()},
      {"vdm", "vdm", nlohmann::json::object()},
  };
}

std::shared_ptr<AffineModel> make(const Case& c) {
  nlohmann::json overrides = c.overrides;
  overrides["net"] = {{"width", 8}, {"depth", 1}};
  torch::manual_seed(3);
  auto model = std::dynamic_pointer_cast<AffineModel>(make_model(model_config(c.kind, 2, overrides)));
  EXPECT_TRUE(model) << c.name;
  return model;
}

// A schedule reference as the shared pointer AffineProcess takes (the model outlives it).
SchedulePtr borrow(const AffineSchedule& s) { return SchedulePtr(&s, [](const AffineSchedule*) {}); }

class AffineElbo : public ::testing::TestWithParam<Case> {};

TEST_P(AffineElbo, IntegrandIsTheGirsanovIntegrandOfTheReverseSde) {
  const auto model = make(GetParam());
  torch::NoGradGuard no_grad;
  const AffineProcess q(borrow(model->schedule()));
  const auto sde = model->sde(parse_diffusion("reverse"));
  const int64_t n = 9;
  torch::manual_seed(5);
  const torch::Tensor y = torch::randn({n, 2}, torch::kDouble), eps = torch::randn({n, 2}, torch::kDouble);
  for (double t : {0.15, 0.5, 0.85}) {
    const torch::Tensor tt = torch::full({n}, t, torch::kDouble);
    const torch::Tensor x = q.sample(y, tt, eps).x;
    const torch::Tensor sigma = sde->diffusion(x, t);
    const torch::Tensor girsanov = girsanov_integrand(sde->drift(x, t), q.conditional_drift(x, y, tt, sigma), sigma);
    const torch::Tensor integrand = model->drift_terms(y, tt, eps).elbo_integrand;
    EXPECT_LT(((integrand - girsanov).abs() / girsanov.abs()).max().item<double>(), 1e-8)
        << GetParam().name << " at t = " << t;
  }
}

// Reconstruction at t_hi: x / a = y + (b / a) eps, so E log N(y; x / a, delta^2 I) =
// -d/2 log(2 pi delta^2) - d (b / a)^2 / (2 delta^2). Prior at t_lo: KL(N(a y, b^2 I) || N(0, p^2 I))
// = 1/2 sum_j (b^2 / p^2 + a^2 y_j^2 / p^2 - 1 - log(b^2 / p^2)).
TEST_P(AffineElbo, EndTermsAreTheClosedForms) {
  const auto model = make(GetParam());
  torch::NoGradGuard no_grad;
  const AffineSchedule& s = model->schedule();
  const auto [lo, hi] = model->time_range();
  // The time range stops t_epsilon short of an end where a or b vanishes, and only there.
  const double t_eps = model->options().t_epsilon;
  EXPECT_EQ(lo, s.a(0.0) == 0.0 ? t_eps : 0.0);
  EXPECT_EQ(hi, s.b(1.0) == 0.0 ? 1.0 - t_eps : 1.0);
  const torch::Tensor y = torch::randn({6, 2}, torch::kDouble);
  const ElboTerms ends = model->end_terms(y);
  const double delta = model->options().delta, d = 2.0;
  const double r = s.b(hi) / s.a(hi);
  const double reconstruction = -0.5 * d * std::log(2 * M_PI * delta * delta) - d * r * r / (2 * delta * delta);
  EXPECT_LT(test::max_abs_diff(ends.reconstruction, torch::full({6}, reconstruction, torch::kDouble)),
            1e-10 * std::abs(reconstruction));
  const double a0 = s.a(lo), b0 = s.b(lo), p = s.prior_std();
  const torch::Tensor prior = 0.5 * (b0 * b0 / (p * p) + a0 * a0 * y * y / (p * p) - 1.0 - std::log(b0 * b0 / (p * p)));
  EXPECT_LT(test::max_abs_diff(ends.prior, prior.sum(1)), 1e-12 * (1.0 + prior.sum(1).abs().max().item<double>()));
  EXPECT_EQ(test::max_abs_diff(ends.drift, torch::zeros({6}, torch::kDouble)), 0.0);
}

// elbo(y, K): the end terms, and the drift term as the mean over K draws (t ~ U(t_lo, t_hi), then
// eps ~ N(0, I), from torch's generator in that order) of (t_hi - t_lo) times the integrand.
TEST_P(AffineElbo, ElboIsTheEndTermsMinusTheScaledIntegrandsMean) {
  const auto model = make(GetParam());
  torch::NoGradGuard no_grad;
  const auto [lo, hi] = model->time_range();
  const torch::Tensor y = torch::randn({5, 2}, torch::kDouble);
  torch::manual_seed(77);
  const ElboTerms got = model->elbo(y, 3);
  torch::manual_seed(77);
  torch::Tensor drift = torch::zeros({5}, torch::kDouble);
  for (int k = 0; k < 3; ++k) {
    const torch::Tensor t = lo + (hi - lo) * torch::rand({5}, torch::kDouble);
    const torch::Tensor eps = torch::randn_like(y);
    drift = drift + (hi - lo) * model->drift_terms(y, t, eps).elbo_integrand / 3.0;
  }
  const ElboTerms ends = model->end_terms(y);
  EXPECT_LT(test::max_abs_diff(got.drift, drift), 1e-12 * (1.0 + drift.abs().max().item<double>()));
  EXPECT_LT(test::max_abs_diff(got.reconstruction, ends.reconstruction), 1e-12 * std::abs(ends.reconstruction[0].item<double>()));
  EXPECT_LT(test::max_abs_diff(got.prior, ends.prior), 1e-12);
  EXPECT_LT(test::max_abs_diff(got.total(), ends.reconstruction - ends.prior - drift),
            1e-10 * (1.0 + got.total().abs().max().item<double>()));
}

INSTANTIATE_TEST_SUITE_P(Models, AffineElbo, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace sdegen
