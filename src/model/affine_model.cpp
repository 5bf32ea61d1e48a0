#include "sdegen/model/affine_model.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

AffineModelOptions affine_model_defaults(const std::string& kind, int64_t dim) {
  check_name("affine model", kind, {"flow", "diffusion", "score", "vdm"});
  AffineModelOptions o;
  o.kind = kind;
  o.net = MlpOptions(dim);
  if (kind == "flow") {
    o.schedule = "linear";
    o.prediction = Prediction::Velocity;
  } else if (kind == "diffusion") {
    o.schedule = "vp";
    o.prediction = Prediction::Noise;
  } else if (kind == "score") {
    o.schedule = "ve";
    o.prediction = Prediction::Noise;  // the score is -eps_hat / b; b^2-weighted DSM = eps regression
  } else {
    o.schedule = "loglinear";
    o.prediction = Prediction::Noise;
    o.weighting = Weighting::Elbo;
    o.time_sampling = "antithetic";
  }
  return o;
}

namespace {

// The range of t used for training and for the ELBO: an end where a or b vanishes makes some
// integrands singular, so it is moved in by t_epsilon.
std::pair<double, double> range_of(const AffineSchedule& s, double eps) {
  return {s.a(0.0) == 0.0 ? eps : 0.0, s.b(1.0) == 0.0 ? 1.0 - eps : 1.0};
}

}  // namespace

std::pair<double, double> AffineModel::time_range() const {
  return range_of(*schedule_, options_.t_epsilon);
}

AffineModel::AffineModel(AffineModelOptions o) : options_(std::move(o)) {
  check_name("time sampling", options_.time_sampling, {"uniform", "antithetic", "lognormal"});
  SDEGEN_CHECK(options_.t_epsilon > 0 && options_.t_epsilon < 0.5, "t_epsilon must lie in (0, 0.5), got ",
               options_.t_epsilon);
  SDEGEN_CHECK(options_.delta > 0, "initial delta must be positive, got ", options_.delta);
  schedule_ = make_schedule(options_.schedule, options_.schedule_options);
  net_ = register_module("net", Mlp(options_.net));
  log_delta_ = register_parameter("log_delta", torch::full({}, std::log(options_.delta), torch::kDouble));
  SDEGEN_CHECK(!options_.precondition || options_.prediction == Prediction::Data,
               "EDM preconditioning wraps a data prediction; got prediction '", prediction_name(options_.prediction),
               "'");
  SDEGEN_CHECK(options_.sigma_data > 0, "sigma_data must be positive, got ", options_.sigma_data);
  Mlp net = net_;
  const SchedulePtr schedule = schedule_;
  const bool precondition = options_.precondition;
  const double sigma_data = options_.sigma_data;
  field_ = std::make_shared<PredictionField>(
      [net, schedule, precondition, sigma_data](const torch::Tensor& x, const torch::Tensor& t) mutable {
        if (!precondition) return net->forward(x, t);
        return edm_denoiser(*net, *schedule, sigma_data, x, t);
      },
      options_.prediction, schedule_, raw_prediction(net_, schedule_, precondition, sigma_data));
}

torch::Tensor edm_denoiser(MlpImpl& net, const AffineSchedule& schedule, double sigma_data, const torch::Tensor& x,
                           const torch::Tensor& t) {
  const ScheduleCoefficients c = schedule.coefficients(t).like(x);
  const torch::Tensor z = x / c.a;  // the data-scale state: y + sigma eps
  const torch::Tensor sigma = c.b / c.a, s2 = sigma * sigma + sigma_data * sigma_data;
  const torch::Tensor c_in = torch::rsqrt(s2), c_skip = sigma_data * sigma_data / s2;
  const torch::Tensor c_out = sigma * sigma_data * torch::rsqrt(s2);
  return c_skip * z + c_out * net.forward(c_in * z, t);
}

torch::Tensor AffineModel::predict_native(const torch::Tensor& x, const torch::Tensor& t) {
  return options_.precondition ? edm_denoiser(*net_, *schedule_, options_.sigma_data, x, t) : net_->forward(x, t);
}

torch::Tensor AffineModel::sample_times(int64_t n, const torch::TensorOptions& to) const {
  const auto [lo, hi] = time_range();
  torch::Tensor u;
  if (options_.time_sampling == "antithetic") {
    // Low-discrepancy: one uniform offset, then evenly spaced (VDM).
    u = torch::remainder(torch::rand({1}, to) + torch::arange(n, to) / static_cast<double>(n), 1.0);
  } else if (options_.time_sampling == "lognormal") {
    // EDM: log sigma ~ N(P_mean, P_std^2) with sigma = b / a, i.e. lambda = -2 log sigma.
    const torch::Tensor log_sigma = options_.lognormal_mean + options_.lognormal_std * torch::randn({n}, to);
    return schedule_->inverse_lambda(-2.0 * log_sigma).clamp(lo, hi);
  } else {
    u = torch::rand({n}, to);
  }
  return lo + (hi - lo) * u;
}

torch::Tensor AffineModel::loss(const torch::Tensor& y) {
  SDEGEN_CHECK(y.dim() == 2 && y.size(1) == dim(), "model expects data of shape [batch, ", dim(), "], got ",
               y.sizes());
  const torch::Tensor t = sample_times(y.size(0), y.options());
  const torch::Tensor eps = torch::randn_like(y);
  const ScheduleCoefficients c = schedule_->coefficients(t).like(y);
  const torch::Tensor x = c.a * y + c.b * eps;
  const AffineLoss l = affine_loss({y, eps, t, predict_native(x, t), options_.prediction}, *schedule_,
                                   options_.weighting, {options_.sigma_data});
  torch::Tensor total = l.loss.mean();
  if (options_.weighting == Weighting::Elbo) {
    // The whole negative ELBO: the drift term above (an unbiased estimate of its integral over
    // the time range) plus the reconstruction term, which trains delta.
    const auto [lo, hi] = time_range();
    total = (hi - lo) * total;
  }
  // The reconstruction term depends on delta only; adding it trains the likelihood width
  // without touching the network's gradients.
  const ElboTerms ends = elbo(y.detach(), 0);
  return total - ends.reconstruction.mean() + ends.prior.mean();
}

ElboTerms AffineModel::elbo(const torch::Tensor& y, int64_t time_samples) {
  SDEGEN_CHECK(y.dim() == 2 && y.size(1) == dim(), "model expects data of shape [batch, ", dim(), "], got ",
               y.sizes());
  const auto [lo, hi] = time_range();
  const int64_t n = y.size(0);
  // Reconstruction at the data end hi: x = a y + b eps, p(y | x) = N(y; x / a, delta^2 I).
  const double a1 = schedule_->a(hi), b1 = schedule_->b(hi);
  const torch::Tensor delta = torch::exp(log_delta_).to(y.options());
  ElboTerms terms;
  terms.reconstruction = expected_reconstruction(y, y, torch::full({}, b1 / a1, y.options()), delta);
  terms.prior = gaussian_kl_to_prior(schedule_->a(lo) * y, torch::full({}, schedule_->b(lo), y.options()),
                                     schedule_->prior_std());
  terms.drift = torch::zeros({n}, y.options());
  for (int64_t k = 0; k < time_samples; ++k) {
    const torch::Tensor t = lo + (hi - lo) * torch::rand({n}, y.options());
    const torch::Tensor eps = torch::randn_like(y);
    const ScheduleCoefficients c = schedule_->coefficients(t).like(y);
    const torch::Tensor pred = predict_native(c.a * y + c.b * eps, t);
    terms.drift = terms.drift + (hi - lo) * affine_loss({y, eps, t, pred, options_.prediction}, *schedule_,
                                                        Weighting::Elbo).elbo_integrand;
  }
  if (time_samples > 0) terms.drift = terms.drift / static_cast<double>(time_samples);
  return terms;
}

std::shared_ptr<const GenerativeSde> AffineModel::sde(const DiffusionSpec& diffusion) const {
  return std::make_shared<MarginalSde>(field_, diffusion);
}

nlohmann::json AffineModel::config() const { return to_json(options_); }

nlohmann::json to_json(const AffineModelOptions& options_) {
  return {{"kind", options_.kind},
          {"schedule", options_.schedule},
          {"prediction", prediction_name(options_.prediction)},
          {"weighting", weighting_name(options_.weighting)},
          {"time_sampling", options_.time_sampling},
          {"t_epsilon", options_.t_epsilon},
          {"b_min", options_.schedule_options.b_min},
          {"delta", options_.delta},
          {"precondition", options_.precondition},
          {"sigma_data", options_.sigma_data},
          {"net", to_json(options_.net)}};
}

}  // namespace sdegen
