#include "sdegen/model/sde_model.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/objective/elbo.h"

namespace sdegen {
namespace {

class LearnedProcess final : public VariationalProcess {
 public:
  explicit LearnedProcess(SdeModel* model) : model_(model) {}
  torch::Tensor alpha(const torch::Tensor& y, const torch::Tensor& t) const override {
    return model_->moments(y, t).alpha;
  }
  torch::Tensor beta(const torch::Tensor& y, const torch::Tensor& t) const override {
    return model_->moments(y, t).beta;
  }
  torch::Tensor dalpha_dt(const torch::Tensor& y, const torch::Tensor& t) const override {
    return model_->moments(y, t).dalpha;
  }
  torch::Tensor dbeta_dt(const torch::Tensor& y, const torch::Tensor& t) const override {
    return model_->moments(y, t).dbeta;
  }

 private:
  SdeModel* model_;
};

// log sigma linear between the knots k / (K - 1); t of any shape.
torch::Tensor piecewise_log_linear(const torch::Tensor& log_knots, const torch::Tensor& t) {
  const int64_t K = log_knots.size(0);
  const torch::Tensor pos = t.clamp(0.0, 1.0) * static_cast<double>(K - 1);
  const torch::Tensor i = pos.floor().clamp(0, K - 2).to(torch::kLong);
  const torch::Tensor w = pos - i.to(pos.dtype());
  const torch::Tensor knots = log_knots.to(t.dtype());
  const torch::Tensor lo = knots.index_select(0, i.flatten()).view(i.sizes());
  const torch::Tensor hi = knots.index_select(0, (i + 1).flatten()).view(i.sizes());
  return torch::exp(lo + w * (hi - lo));
}

// Holds the drift network and the sigma knots themselves (shared with the model), so it stays
// valid on its own and sees the weights the model loads.
class LearnedSde final : public GenerativeSde {
 public:
  LearnedSde(Mlp drift, torch::Tensor log_sigma_knots)
      : drift_(std::move(drift)), log_sigma_knots_(std::move(log_sigma_knots)) {}
  torch::Tensor drift(const torch::Tensor& x, double t) const override {
    return drift_->forward(x, torch::full({x.size(0)}, t, x.options()));
  }
  torch::Tensor diffusion(const torch::Tensor& x, double t) const override {
    return piecewise_log_linear(log_sigma_knots_, torch::full({}, t, x.options()));
  }
  double prior_std() const override { return 1.0; }

 private:
  mutable Mlp drift_;
  torch::Tensor log_sigma_knots_;
};

}  // namespace

SdeModel::SdeModel(SdeModelOptions o) : options_(std::move(o)) {
  SDEGEN_CHECK(options_.b1 > 0 && options_.b1 < 1, "sde model: b1 (beta at t = 1) must lie in (0, 1), got ",
               options_.b1);
  SDEGEN_CHECK(options_.delta > 0, "sde model: initial delta must be positive, got ", options_.delta);
  SDEGEN_CHECK(options_.sigma_knots >= 2, "sde model: sigma_knots must be >= 2, got ", options_.sigma_knots);
  check_name("time sampling", options_.time_sampling, {"uniform", "antithetic"});
  const int64_t d = options_.net.in_dim();
  SDEGEN_CHECK(options_.net.num_classes() == 0, "sde model: class-conditional nets are not supported");
  inference_ = register_module("inference", Mlp(MlpOptions(options_.net).out_dim(2 * d)));
  drift_ = register_module("drift", Mlp(MlpOptions(options_.net).out_dim(d)));
  log_b1_ = register_parameter("log_b1", torch::full({}, std::log(options_.b1), torch::kDouble));
  log_delta_ = register_parameter("log_delta", torch::full({}, std::log(options_.delta), torch::kDouble));
  // Start at sigma^2 = 2 beta |beta'| of the path beta = 1 - t (1 - b1): the diffusion for which
  // the noise terms of the conditional drift cancel, so the untrained model already has the
  // conditional flow's drift as its target.
  const torch::Tensor knots = torch::linspace(0.0, 1.0, options_.sigma_knots, torch::kDouble);
  const double slope = 1.0 - options_.b1;
  const torch::Tensor sigma2 = 2.0 * (1.0 - knots * slope) * slope;
  log_sigma_knots_ = register_parameter("log_sigma_knots", 0.5 * torch::log(sigma2));
}

ProcessMoments SdeModel::moments(const torch::Tensor& y, const torch::Tensor& t) {
  SDEGEN_CHECK(y.dim() == 2 && y.size(1) == dim(), "sde model expects data of shape [batch, ", dim(), "], got ",
               y.sizes());
  const int64_t d = dim();
  const auto out = inference_->forward_with_tangents(y, t, /*time_derivative=*/true, /*jacobian=*/false);
  const torch::Tensor A = out.out.slice(1, 0, d), B = out.out.slice(1, d);
  const torch::Tensor dA = out.d_dt.slice(1, 0, d), dB = out.d_dt.slice(1, d);
  const torch::Tensor tt = (t.dim() == 0 ? t.expand({y.size(0)}) : t).to(y.dtype()).unsqueeze(1);
  const torch::Tensor b1 = torch::exp(log_b1_).to(y.dtype());
  const torch::Tensor bridge = tt * (1.0 - tt), dbridge = 1.0 - 2.0 * tt;
  const torch::Tensor c = 1.0 - tt + tt * b1;  // beta's envelope, from 1 at t = 0 to b1 at t = 1
  ProcessMoments m;
  m.alpha = tt * y + bridge * A;
  m.dalpha = y + dbridge * A + bridge * dA;
  m.beta = c * torch::exp(bridge * B);
  m.dbeta = m.beta * ((b1 - 1.0) / c + dbridge * B + bridge * dB);
  return m;
}

torch::Tensor SdeModel::sigma(const torch::Tensor& t) const {
  return piecewise_log_linear(log_sigma_knots_, t);
}

torch::Tensor SdeModel::drift(const torch::Tensor& x, const torch::Tensor& t) { return drift_->forward(x, t); }

std::shared_ptr<const VariationalProcess> SdeModel::process() { return std::make_shared<LearnedProcess>(this); }

torch::Tensor SdeModel::drift_integrand(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps) {
  const ProcessMoments m = moments(y, t);
  const torch::Tensor x = m.alpha + m.beta * eps;
  const torch::Tensor s = sigma(t).unsqueeze(1);
  // g = alpha' + beta' (x - alpha) / beta - (sigma^2 / 2)(x - alpha) / beta^2, with
  // (x - alpha) / beta = eps (VariationalProcess::conditional_drift for this process).
  const torch::Tensor g = m.dalpha + (m.dbeta - s * s / (2.0 * m.beta)) * eps;
  return girsanov_integrand(drift_->forward(x, t), g, s);
}

torch::Tensor SdeModel::sample_times(int64_t n, const torch::TensorOptions& to) const {
  if (options_.time_sampling == "antithetic")
    return torch::remainder(torch::rand({1}, to) + torch::arange(n, to) / static_cast<double>(n), 1.0);
  return torch::rand({n}, to);
}

ElboTerms SdeModel::elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition) {
  check_unconditional(*this, condition);
  SDEGEN_CHECK(y.dim() == 2 && y.size(1) == dim(), "sde model expects data of shape [batch, ", dim(), "], got ",
               y.sizes());
  const int64_t n = y.size(0);
  ElboTerms terms;
  const ProcessMoments end = moments(y, torch::ones({n}, y.options()));
  terms.reconstruction = expected_reconstruction(y, end.alpha, end.beta, torch::exp(log_delta_).to(y.dtype()));
  const ProcessMoments start = moments(y, torch::zeros({n}, y.options()));
  terms.prior = gaussian_kl_to_prior(start.alpha, start.beta, 1.0);
  terms.drift = torch::zeros({n}, y.options());
  for (int64_t k = 0; k < time_samples; ++k) {
    // The times, then the noise, in that order (not left to argument evaluation order): the
    // fused step (sde_fused.cpp) draws the same numbers.
    const torch::Tensor t = sample_times(n, y.options());
    const torch::Tensor eps = torch::randn_like(y);
    terms.drift = terms.drift + drift_integrand(y, t, eps);
  }
  if (time_samples > 0) terms.drift = terms.drift / static_cast<double>(time_samples);
  return terms;
}

torch::Tensor SdeModel::loss(const torch::Tensor& y, const Condition& condition) {
  return -elbo(y, 1, condition).total().mean();
}

std::shared_ptr<const GenerativeSde> SdeModel::sde(const DiffusionSpec& diffusion) const {
  SDEGEN_CHECK(diffusion.is_zero(), "the sde model samples with its own learned diffusion; do not set sigma (got ",
               diffusion_name(diffusion), ")");
  return std::make_shared<LearnedSde>(drift_, log_sigma_knots_);
}

nlohmann::json SdeModel::config() const { return to_json(options_); }

nlohmann::json to_json(const SdeModelOptions& options_) {
  return {{"kind", "sde"},
          {"b1", options_.b1},
          {"delta", options_.delta},
          {"sigma_knots", options_.sigma_knots},
          {"time_sampling", options_.time_sampling},
          {"net", to_json(options_.net)}};
}

}  // namespace sdegen
