#include "sdegen/model/sde_model.h"

#include <cmath>
#include <tuple>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/core/shard.h"
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

// t [batch] (or 0-dim) as a column [batch, 1, ...] that broadcasts against like [batch, *shape].
torch::Tensor column(const torch::Tensor& t, const torch::Tensor& like) {
  std::vector<int64_t> sizes(static_cast<size_t>(like.dim()), 1);
  sizes[0] = like.size(0);
  return (t.dim() == 0 ? t.expand({like.size(0)}) : t).to(like.dtype()).reshape(sizes);
}

// A network's output at (y, t) and its derivative in t, for a network without closed-form
// tangents. Each example's output depends on its own time only (every layer here acts per
// example), so d out / dt is a Jacobian-vector product with a tangent of ones, formed by reverse
// mode twice: w(u) = (d out / dt)^T u is linear in a dummy cotangent u, and d <w(u), 1> / du is
// d out / dt, example by example. create_graph keeps both trainable when gradients are on.
std::pair<torch::Tensor, torch::Tensor> value_and_time_derivative(NetworkImpl& net, const torch::Tensor& y,
                                                                  const torch::Tensor& t) {
  const bool train = torch::GradMode::is_enabled();
  torch::AutoGradMode grad_on(true);
  const torch::Tensor times = (t.dim() == 0 ? t.expand({y.size(0)}) : t).detach().clone().requires_grad_(true);
  const torch::Tensor out = net.forward(y, times);
  const torch::Tensor u = torch::zeros_like(out).requires_grad_(true);
  const torch::Tensor w = torch::autograd::grad({out}, {times}, {u}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  const torch::Tensor d_dt =
      torch::autograd::grad({w}, {u}, {torch::ones_like(w)}, /*retain_graph=*/train, /*create_graph=*/train)[0];
  if (train) return {out, d_dt};
  return {out.detach(), d_dt.detach()};
}

// `net` with `factor` times its input's size of outputs (1: the drift F; 2: the inference
// network, A and B stacked along dimension 1), which each network type names its own way.
nlohmann::json with_outputs(nlohmann::json net, int64_t factor) {
  const std::string type = net.value("type", "");
  if (type == "mlp") {
    const MlpOptions m = mlp_options_from_json(net);
    return to_json(MlpOptions(m).out_dim(factor * m.in_dim()));
  }
  if (type == "unet") {
    SDEGEN_CHECK(net.contains("in_channels") && net["in_channels"].is_number_integer(),
                 "sde model: the U-Net configuration has no integer in_channels: ", net.dump());
    net["out_channels"] = factor * net["in_channels"].get<int64_t>();
    return net;
  }
  throw InvalidArgument(detail::concat("sde model: a network of type '", type, "' cannot hold the inference ",
                                       "process (A and B stacked); use mlp or unet"));
}

// Holds the drift network and the sigma knots themselves (shared with the model), so it stays
// valid on its own and sees the weights the model loads.
class LearnedSde final : public GenerativeSde {
 public:
  LearnedSde(NetworkPtr drift, torch::Tensor log_sigma_knots)
      : drift_(std::move(drift)), log_sigma_knots_(std::move(log_sigma_knots)) {}
  torch::Tensor drift(const torch::Tensor& x, double t) const override {
    return drift_->forward(x, torch::full({x.size(0)}, t, x.options()));
  }
  torch::Tensor diffusion(const torch::Tensor& x, double t) const override {
    return piecewise_log_linear(log_sigma_knots_, torch::full({}, t, x.options()));
  }
  double prior_std() const override { return 1.0; }

 private:
  NetworkPtr drift_;
  torch::Tensor log_sigma_knots_;
};

}  // namespace

void SdeModel::check_shape(const torch::Tensor& y) const {
  std::vector<int64_t> sizes{y.dim() > 0 ? y.size(0) : 0};
  sizes.insert(sizes.end(), shape_.begin(), shape_.end());
  SDEGEN_CHECK(y.sizes() == torch::IntArrayRef(sizes), "sde model expects data of shape [batch, ",
               torch::IntArrayRef(shape_), "], got ", y.sizes());
}

SdeModel::SdeModel(SdeModelOptions o) : options_(std::move(o)) {
  SDEGEN_CHECK(options_.b1 > 0 && options_.b1 < 1, "sde model: b1 (beta at t = 1) must lie in (0, 1), got ",
               options_.b1);
  SDEGEN_CHECK(options_.delta > 0, "sde model: initial delta must be positive, got ", options_.delta);
  SDEGEN_CHECK(options_.sigma_knots >= 2, "sde model: sigma_knots must be >= 2, got ", options_.sigma_knots);
  check_name("time sampling", options_.time_sampling, {"uniform", "antithetic"});
  check_name("dtype", options_.dtype, {"float32", "float64"});
  SDEGEN_CHECK(options_.net.is_object(), "sde model: the net configuration must be a JSON object, got ",
               options_.net.dump());
  inference_ = register_module("inference", make_network(with_outputs(options_.net, 2)));
  drift_ = register_module("drift", make_network(with_outputs(options_.net, 1)));
  inference_mlp_ = std::dynamic_pointer_cast<MlpImpl>(inference_);
  drift_mlp_ = std::dynamic_pointer_cast<MlpImpl>(drift_);
  shape_ = drift_->shape();
  SDEGEN_CHECK(drift_->num_classes() == 0, "sde model: class-conditional nets are not supported");
  log_b1_ = register_parameter("log_b1", torch::full({}, std::log(options_.b1), torch::kDouble));
  log_delta_ = register_parameter("log_delta", torch::full({}, std::log(options_.delta), torch::kDouble));
  // Start at sigma^2 = 2 beta |beta'| of the path beta = 1 - t (1 - b1): the diffusion for which
  // the noise terms of the conditional drift cancel, so the untrained model already has the
  // conditional flow's drift as its target.
  const torch::Tensor knots = torch::linspace(0.0, 1.0, options_.sigma_knots, torch::kDouble);
  const double slope = 1.0 - options_.b1;
  const torch::Tensor sigma2 = 2.0 * (1.0 - knots * slope) * slope;
  log_sigma_knots_ = register_parameter("log_sigma_knots", 0.5 * torch::log(sigma2));
  to(options_.dtype == "float32" ? torch::kFloat : torch::kDouble);
}

ProcessMoments SdeModel::moments(const torch::Tensor& y, const torch::Tensor& t) {
  check_shape(y);
  torch::Tensor out, d_dt;
  if (inference_mlp_) {
    const auto tangents = inference_mlp_->forward_with_tangents(y, t, /*time_derivative=*/true, /*jacobian=*/false);
    out = tangents.out;
    d_dt = tangents.d_dt;
  } else {
    std::tie(out, d_dt) = value_and_time_derivative(*inference_, y, t);
  }
  // A and B are the two halves of the outputs along dimension 1 (features or channels).
  const int64_t half = y.size(1);
  const torch::Tensor A = out.slice(1, 0, half), B = out.slice(1, half);
  const torch::Tensor dA = d_dt.slice(1, 0, half), dB = d_dt.slice(1, half);
  const torch::Tensor tt = column(t, y);
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
  const torch::Tensor s = column(sigma(t), y);
  // g = alpha' + beta' (x - alpha) / beta - (sigma^2 / 2)(x - alpha) / beta^2, with
  // (x - alpha) / beta = eps (VariationalProcess::conditional_drift for this process).
  const torch::Tensor g = m.dalpha + (m.dbeta - s * s / (2.0 * m.beta)) * eps;
  return girsanov_integrand(drift_->forward(x, t), g, s);
}

torch::Tensor SdeModel::sample_times(int64_t n, const torch::TensorOptions& to) const {
  if (options_.time_sampling == "antithetic")
    return batch_stratified(n, to);
  return batch_rand(n, to);
}

ElboTerms SdeModel::elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition) {
  check_unconditional(*this, condition);
  check_shape(y);
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
    const torch::Tensor eps = batch_randn_like(y);
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
          {"dtype", options_.dtype},
          {"net", options_.net}};
}

}  // namespace sdegen
