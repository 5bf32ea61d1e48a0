// Every loss is a weight times the ELBO's integrand, checked against the closed-form weights of
// shared/docs/math.md, and the general ELBO's drift term reduces to the VDM loss.
#include "sdegen/core/error.h"
#include "sdegen/core/tensor.h"
#include "sdegen/objective/elbo.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

struct Batch {
  torch::Tensor y, eps, t, pred_y, pred_eps;
};

// Random data, noise, times and an imperfect prediction (y_hat, eps_hat consistent with x_t).
Batch random_batch(const AffineSchedule& s, int64_t n = 64) {
  Batch b;
  b.y = torch::randn({n, 3});
  b.eps = torch::randn({n, 3});
  b.t = torch::rand({n}) * 0.9 + 0.05;
  const ScheduleCoefficients c = s.coefficients(b.t).like(b.y);
  const torch::Tensor x = c.a * b.y + c.b * b.eps;
  b.pred_y = b.y + 0.3 * torch::randn_like(b.y);
  b.pred_eps = (x - c.a * b.pred_y) / c.b;
  return b;
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs() / (1e-12 + b.abs())).max().item<double>();
}

const std::vector<Prediction> kAll = {Prediction::Data, Prediction::Noise, Prediction::Score,
                                      Prediction::Velocity, Prediction::V};

class Losses : public ::testing::TestWithParam<std::string> {};

// Whatever a network outputs, the integrand is 1/2 lambda' |eps - eps_hat|^2 of the prediction.
TEST_P(Losses, IntegrandIsTheSameInEveryParameterisation) {
  auto s = make_schedule(GetParam());
  const Batch b = random_batch(*s);
  const torch::Tensor expected = 0.5 * s->dlambda(b.t) * (b.eps - b.pred_eps).pow(2).sum(1);
  const ScheduleCoefficients c = s->coefficients(b.t).like(b.y);
  for (Prediction p : kAll) {
    const torch::Tensor pred = from_data_noise({b.pred_y, b.pred_eps}, p, c);
    const AffineLoss l = affine_loss({b.y, b.eps, b.t, pred, p}, *s, Weighting::Elbo);
    EXPECT_LT(rel(l.elbo_integrand, expected), 1e-9) << prediction_name(p);
    EXPECT_LT(rel(l.loss, expected), 1e-9) << prediction_name(p);
  }
}

// The classic losses: the plain squared error of each target, and each equals the math.md
// table's weight times the integrand.
TEST_P(Losses, ClassicLossesAreTheTableWeightsTimesTheIntegrand) {
  auto s = make_schedule(GetParam());
  const Batch b = random_batch(*s);
  const torch::Tensor t = b.t, dl = s->dlambda(t), a = s->a(t), bb = s->b(t);
  const torch::Tensor integrand = 0.5 * dl * (b.eps - b.pred_eps).pow(2).sum(1);
  const ScheduleCoefficients c = s->coefficients(t).like(b.y);
  auto plain = [&](Prediction p) {
    const torch::Tensor pred = from_data_noise({b.pred_y, b.pred_eps}, p, c);
    const AffineLoss l = affine_loss({b.y, b.eps, t, pred, p}, *s, Weighting::Native);
    EXPECT_LT(rel(l.elbo_integrand, integrand), 1e-9) << prediction_name(p);
    return l.loss;
  };
  // DDPM "simple": |eps - eps_hat|^2 = (2 / lambda') x integrand.
  EXPECT_LT(rel(plain(Prediction::Noise), (b.eps - b.pred_eps).pow(2).sum(1)), 1e-9);
  EXPECT_LT(rel(plain(Prediction::Noise), 2.0 / dl * integrand), 1e-9);
  // Denoising score matching with b^2 weighting: b^2 |s - s_hat|^2 has the same weight 2 / lambda'.
  const torch::Tensor dsm = (bb * bb).unsqueeze(1).mul((b.pred_eps - b.eps).pow(2) / (bb * bb).unsqueeze(1)).sum(1);
  EXPECT_LT(rel(dsm, 2.0 / dl * integrand), 1e-9);
  EXPECT_LT(rel(plain(Prediction::Score) * bb * bb, 2.0 / dl * integrand), 1e-9);
  // Flow matching: |v - v_hat|^2 = 1/2 b^2 lambda' x integrand.
  EXPECT_LT(rel(plain(Prediction::Velocity), 0.5 * bb * bb * dl * integrand), 1e-9);
  // Data prediction: |y - y_hat|^2 = (b / a)^2 |eps - eps_hat|^2 = 2 b^2 / (a^2 lambda') x integrand.
  EXPECT_LT(rel(plain(Prediction::Data), (b.y - b.pred_y).pow(2).sum(1)), 1e-9);
  EXPECT_LT(rel(plain(Prediction::Data), 2.0 * bb * bb / (a * a * dl) * integrand), 1e-9);
  // v-prediction on a variance-preserving schedule: 2 / (a^2 lambda').
  if (GetParam() == "vp" || GetParam() == "trig" || GetParam() == "vp-cosine") {
    EXPECT_LT(rel(plain(Prediction::V), 2.0 / (a * a * dl) * integrand), 1e-9);
  }
}

INSTANTIATE_TEST_SUITE_P(Schedules, Losses, ::testing::Values("linear", "trig", "vp", "vp-cosine", "ve", "edm"),
                         [](const auto& info) { return test::param_name(info.param); });

TEST(Losses, FlowMatchingWeightOnTheLinearPathIsExpMinusHalfLambda) {
  // For a = t, b = 1 - t: 1/2 b^2 lambda' = (1 - t) / t = exp(-lambda / 2).
  auto s = make_schedule("linear");
  const torch::Tensor t = torch::linspace(0.05, 0.95, 19);
  const ScheduleCoefficients c = s->coefficients(t);
  const torch::Tensor w = loss_weight(Weighting::Native, Prediction::Velocity, c, s->dlambda(t));
  EXPECT_LT(rel(w, (1.0 - t) / t), 1e-12);
  EXPECT_LT(rel(w, torch::exp(-0.5 * s->lambda(t))), 1e-12);
}

TEST(Losses, EdmWeightGivesTheEdmLoss) {
  auto s = make_schedule("edm");
  const Batch b = random_batch(*s);
  const torch::Tensor sigma = s->b(b.t);  // a = 1
  const double sd = 0.5;
  const torch::Tensor lam = (sigma * sigma + sd * sd) / (sigma * sigma * sd * sd);
  const ScheduleCoefficients c = s->coefficients(b.t).like(b.y);
  for (Prediction p : kAll) {
    const torch::Tensor pred = from_data_noise({b.pred_y, b.pred_eps}, p, c);
    const AffineLoss l = affine_loss({b.y, b.eps, b.t, pred, p}, *s, Weighting::Edm, {sd});
    EXPECT_LT(rel(l.loss, lam * (b.y - b.pred_y).pow(2).sum(1)), 1e-8) << prediction_name(p);
  }
}

// With sigma^2 = b^2 lambda' and the drift f = g(x, y_hat(x, t), t), the Girsanov integrand
// |f - g(x, y, t)|^2 / (2 sigma^2) is VDM's 1/2 SNR'(t) |y - y_hat|^2.
TEST(GeneralElbo, AffineProcessWithDataPredictionDriftIsTheVdmLoss) {
  for (const std::string name : {"loglinear", "vp", "linear", "trig"}) {
    auto s = make_schedule(name);
    const AffineProcess q(s);
    const Batch b = random_batch(*s);
    const torch::Tensor x = q.sample(b.y, b.t, b.eps).x;
    const torch::Tensor sigma = per_row(torch::sqrt(s->b(b.t).pow(2) * s->dlambda(b.t)), b.y);
    const torch::Tensor f = q.conditional_drift(x, b.pred_y, b.t, sigma);
    const torch::Tensor g = q.conditional_drift(x, b.y, b.t, sigma);
    const torch::Tensor girsanov = girsanov_integrand(f, g, sigma);
    // SNR' by finite differences of exp(lambda), independently of the closed forms.
    const double h = 1e-6;
    const torch::Tensor dsnr = (torch::exp(s->lambda(b.t + h)) - torch::exp(s->lambda(b.t - h))) / (2 * h);
    const torch::Tensor vdm = 0.5 * dsnr * (b.y - b.pred_y).pow(2).sum(1);
    EXPECT_LT(rel(girsanov, vdm), 1e-5) << name;
    const AffineLoss l = affine_loss({b.y, b.eps, b.t, b.pred_y, Prediction::Data}, *s, Weighting::Elbo);
    EXPECT_LT(rel(girsanov, l.elbo_integrand), 1e-9) << name;
  }
}

TEST(ElboTerms, PriorKlAndReconstructionAgainstMonteCarlo) {
  torch::manual_seed(4);
  const torch::Tensor mean = torch::randn({4, 2}), std = torch::rand({4, 1}) + 0.5;
  const int64_t m = 400000;
  // KL by Monte Carlo: E_q[log q - log p].
  const torch::Tensor z = mean.unsqueeze(0) + std.unsqueeze(0) * torch::randn({m, 4, 2});
  const double p = 1.7;
  const torch::Tensor log_q = (-0.5 * ((z - mean) / std).pow(2) - torch::log(std).expand({4, 2}) -
                               0.5 * std::log(2 * M_PI)).sum(2);
  const torch::Tensor log_p = (-0.5 * (z / p).pow(2) - std::log(p) - 0.5 * std::log(2 * M_PI)).sum(2);
  EXPECT_LT(max_abs_diff((log_q - log_p).mean(0), gaussian_kl_to_prior(mean, std, p)), 0.01);
  EXPECT_LT(max_abs_diff(gaussian_kl_to_prior(torch::zeros({3, 2}), torch::ones({3, 1}), 1.0), torch::zeros({3})),
            1e-15);
  // Reconstruction: E_{x ~ N(alpha, beta^2)} log N(y; x, delta^2).
  const torch::Tensor y = torch::randn({4, 2});
  // delta = 0.8: the Monte Carlo standard error of the mean is then below 0.005.
  const torch::Tensor delta = torch::tensor(0.8);
  const torch::Tensor lp = (-0.5 * ((y - z) / 0.8).pow(2) - std::log(0.8) - 0.5 * std::log(2 * M_PI)).sum(2);
  EXPECT_LT(max_abs_diff(lp.mean(0), expected_reconstruction(y, mean, std, delta)), 0.02);
}

TEST(Losses, RefuseMismatchedShapes) {
  auto s = make_schedule("vp");
  const torch::Tensor y = torch::randn({4, 2});
  EXPECT_THROW_WITH(affine_loss({y, y, torch::rand({3}), y, Prediction::Noise}, *s, Weighting::Elbo),
                    InvalidArgument, "one time per row");
  EXPECT_THROW_WITH(affine_loss({y, torch::randn({4, 3}), torch::rand({4}), y, Prediction::Noise}, *s,
                                Weighting::Elbo),
                    InvalidArgument, "of one shape");
  EXPECT_THROW_WITH(weighting_from_name("snr"), InvalidArgument, "valid: elbo, native, edm");
}

}  // namespace
}  // namespace sdegen
