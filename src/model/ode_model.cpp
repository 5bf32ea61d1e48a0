#include "sdegen/model/ode_model.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/error.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"

namespace sdegen {
namespace {

class FlowSde final : public GenerativeSde {
 public:
  FlowSde(NetworkPtr net, std::shared_ptr<MlpImpl> mlp) : net_(std::move(net)), mlp_(std::move(mlp)) {}
  torch::Tensor drift(const torch::Tensor& x, double t) const override {
    return net_->forward(x, torch::full({x.size(0)}, t, x.options()));
  }
  torch::Tensor diffusion(const torch::Tensor& x, double t) const override {
    return torch::zeros({}, x.options());
  }
  double prior_std() const override { return 1.0; }
  // F and its exact divergence from the Jacobian tangents of the raw forward (net/mlp_kernel.h).
  RawDivergenceField raw_drift_divergence() const override {
    if (!mlp_ || !MlpKernel::supports(*mlp_)) return {};
    const auto kernel = std::make_shared<const MlpKernel>(*mlp_);
    const auto workspace = std::make_shared<Workspace>();
    const auto times = std::make_shared<std::vector<double>>();
    return [kernel, workspace, times](double t, const double* x, int64_t n, double* v, double* div) {
      times->assign(static_cast<size_t>(n), t);
      kernel->forward_trace(x, times->data(), n, v, div, *workspace);
    };
  }

 private:
  NetworkPtr net_;
  std::shared_ptr<MlpImpl> mlp_;
};

}  // namespace

OdeModel::OdeModel(OdeModelOptions o, NetworkPtr net) : options_(std::move(o)) {
  SDEGEN_CHECK(options_.steps >= 1, "ode model: steps must be >= 1, got ", options_.steps);
  check_name("ode model solver", options_.solver, fixed_ode_solver_names());
  SDEGEN_CHECK(options_.probes >= 1, "ode model: probes must be >= 1, got ", options_.probes);
  check_name("dtype", options_.dtype, {"float32", "float64"});
  SDEGEN_CHECK(net || options_.net.is_object(), "ode model: the net configuration must be a JSON object, got ",
               options_.net.dump());
  if (net) {
    options_.net = net->config();
  } else if (options_.net.value("type", "") == "mlp") {
    // F maps the state to its velocity: the MLP's output is its input's size.
    const MlpOptions m = mlp_options_from_json(options_.net);
    net = std::make_shared<MlpImpl>(MlpOptions(m).out_dim(m.in_dim()));
  } else {
    net = make_network(options_.net);
  }
  net_ = register_module("net", std::move(net));
  mlp_ = std::dynamic_pointer_cast<MlpImpl>(net_);
  shape_ = net_->shape();
  SDEGEN_CHECK(net_->num_classes() == 0, "ode model: class-conditional nets are not supported");
  if (mlp_)
    SDEGEN_CHECK(mlp_->options.resolved_out_dim() == mlp_->options.in_dim(), "ode model: the MLP must output its ",
                 "input's size ", mlp_->options.in_dim(), ", got out_dim ", mlp_->options.out_dim());
  SDEGEN_CHECK(mlp_ || !options_.exact_divergence, "ode model: the exact divergence needs the MLP's closed-form ",
               "Jacobian; a network of type ", options_.net.value("type", std::string("?")),
               " takes Hutchinson's estimator (exact_divergence false)");
  to(options_.dtype == "float32" ? torch::kFloat : torch::kDouble);
}

torch::Tensor OdeModel::velocity(const torch::Tensor& x, const torch::Tensor& t) { return net_->forward(x, t); }

FlowLikelihood OdeModel::likelihood(const torch::Tensor& y_in) {
  std::vector<int64_t> sizes{y_in.dim() > 0 ? y_in.size(0) : 0};
  sizes.insert(sizes.end(), shape_.begin(), shape_.end());
  SDEGEN_CHECK(y_in.sizes() == torch::IntArrayRef(sizes), "ode model expects data of shape [batch, ",
               torch::IntArrayRef(shape_), "], got ", y_in.sizes());
  // The solve runs on rows [x, ell] of width d + 1; the network sees x in its own shape.
  const int64_t n = y_in.size(0), d = dim();
  const torch::Tensor y = y_in.reshape({n, d});
  // Rademacher probes, one set per solve (Hutchinson).
  torch::Tensor probes;
  if (!options_.exact_divergence) {
    auto signs = [&](int64_t rows) { return torch::randint(0, 2, {options_.probes, rows, d}, y.options()); };
    probes = shard_draw(n, signs, /*dim=*/1) * 2.0 - 1.0;
  }
  // The augmented state [x, ell] of shape [n, d + 1], with d ell/dt = div F.
  const VectorField field = [&](double t, const torch::Tensor& state) {
    const torch::Tensor x = state.slice(1, 0, d);
    const torch::Tensor tt = torch::full({n}, t, state.options());
    torch::Tensor v, div;
    if (options_.exact_divergence) {
      const auto out = mlp_->forward_with_tangents(x, tt, /*time_derivative=*/false, /*jacobian=*/true);
      v = out.out;
      div = out.jacobian.diagonal(0, 1, 2).sum(1);
    } else {
      // e^T (dF/dx) e by a vector-Jacobian product; create_graph keeps it trainable. The
      // state has no graph at the first step (the data), so a fresh leaf loses nothing there.
      const bool train = torch::GradMode::is_enabled();
      const torch::Tensor xin = x.requires_grad() ? x : x.detach().requires_grad_(true);
      torch::AutoGradMode grad_on(true);
      v = net_->forward(xin.reshape(sizes), tt).reshape({n, d});
      div = torch::zeros({n}, state.options());
      for (int64_t k = 0; k < options_.probes; ++k) {
        const torch::Tensor vjp = torch::autograd::grad({v}, {xin}, {probes[k]}, /*retain_graph=*/true,
                                                        /*create_graph=*/train)[0];
        div = div + (vjp * probes[k]).sum(1);
      }
      div = div / static_cast<double>(options_.probes);
      if (!train) {
        v = v.detach();
        div = div.detach();
      }
    }
    return torch::cat({v, div.unsqueeze(1)}, 1);
  };
  TimeGrid grid(options_.steps + 1);
  for (int k = 0; k <= options_.steps; ++k) grid[k] = 1.0 - static_cast<double>(k) / options_.steps;
  const torch::Tensor start = torch::cat({y, torch::zeros({n, 1}, y.options())}, 1);
  // Without gradients (validation, evaluation) the same solve runs on raw buffers.
  const RawDivergenceField raw = !torch::GradMode::is_enabled() && options_.exact_divergence && is_cpu_double(y)
                                     ? FlowSde(net_, mlp_).raw_drift_divergence()
                                     : RawDivergenceField{};
  const Solution sol = raw ? solve_ode_raw(with_divergence(raw, d), start, grid, options_.solver)
                           : solve_ode(field, start, grid, *make_ode_stepper(options_.solver));
  if (!sol.ok()) throw NumericError("ode model likelihood: " + sol.message);
  FlowLikelihood out;
  out.x0 = sol.x.slice(1, 0, d).reshape(sizes);
  // The solve ran from 1 to 0, so ell(0) = -int_0^1 div F dt.
  out.integrated_divergence = -sol.x.select(1, d);
  out.prior_log_prob = -0.5 * sum_rows(out.x0 * out.x0) - 0.5 * static_cast<double>(d) * std::log(2.0 * M_PI);
  out.log_prob = out.prior_log_prob - out.integrated_divergence;
  return out;
}

torch::Tensor OdeModel::loss(const torch::Tensor& y, const Condition& condition) {
  check_unconditional(*this, condition);
  return -likelihood(y).log_prob.mean();
}

ElboTerms OdeModel::elbo(const torch::Tensor& y, int64_t /*time_samples*/, const Condition& condition) {
  check_unconditional(*this, condition);
  const FlowLikelihood l = likelihood(y);
  return {torch::zeros_like(l.log_prob), -l.prior_log_prob, l.integrated_divergence};
}

std::shared_ptr<const GenerativeSde> OdeModel::sde(const DiffusionSpec& diffusion) const {
  SDEGEN_CHECK(diffusion.is_zero(), "the ode model is deterministic; it samples with zero diffusion, not sigma = ",
               diffusion_name(diffusion));
  return std::make_shared<FlowSde>(net_, mlp_);
}

nlohmann::json OdeModel::config() const { return to_json(options_); }

nlohmann::json to_json(const OdeModelOptions& options_) {
  return {{"kind", "ode"},
          {"steps", options_.steps},
          {"solver", options_.solver},
          {"exact_divergence", options_.exact_divergence},
          {"probes", options_.probes},
          {"dtype", options_.dtype},
          {"net", options_.net}};
}

}  // namespace sdegen
