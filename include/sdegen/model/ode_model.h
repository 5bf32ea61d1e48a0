#pragma once
// A continuous normalizing flow: x_0 ~ N(0, I), dx/dt = F(x, t) with a network F (net/network.h),
// trained by exact maximum likelihood through the instantaneous change of variables,
//   log p_1(y) = log N(x_0; 0, I) - int_0^1 div F(x_t, t) dt,
// integrating (x, int div F) from y at t = 1 back to t = 0 with a fixed-step solver and
// backpropagating through every step. The divergence is exact (the trace of the MLP's
// closed-form Jacobian, Mlp::forward_with_tangents: no double backward) or Hutchinson's
// estimate with Rademacher probes held fixed over the solve: the only one for another network
// (a U-Net on images, where d = C*H*W columns of a Jacobian would cost d network passes).
// It is the general model with sigma = 0: its ELBO is its log-likelihood (reported as the
// terms of the change of variables, see elbo()).
#include <memory>
#include <string>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"
#include "sdegen/net/mlp_kernel.h"
#include "sdegen/net/network.h"

namespace sdegen {

struct OdeModelOptions {
  // F by its configuration: the MLP (its output set to its input's size) or any network whose
  // output has its input's shape.
  nlohmann::json net = to_json(MlpOptions(1));
  int steps = 100;                  // fixed steps of the training solve, >= 1
  std::string solver = "midpoint";  // euler, midpoint, heun, rk4
  bool exact_divergence = true;     // false: Hutchinson's estimator
  int64_t probes = 1;               // Hutchinson probes per point
  std::string dtype = "float64";    // float32 | float64; images train in float32
};

// The change of variables for each row of y: log_prob = prior_log_prob - integrated_divergence.
struct FlowLikelihood {
  torch::Tensor log_prob, prior_log_prob, integrated_divergence, x0;
};

// The configuration a checkpoint records (GenerativeModel::config() of a model built from it).
nlohmann::json to_json(const OdeModelOptions& options);

class OdeModel final : public GenerativeModel {
 public:
  // F built from options.net, or given (any NetworkImpl; options.net then becomes its config()).
  // Refuses a conditional network, an output of another shape than the input, and the exact
  // divergence for a network that is not an MLP.
  explicit OdeModel(OdeModelOptions options, NetworkPtr net = nullptr);

  std::string kind() const override { return "ode"; }
  int64_t dim() const override { return example_numel(shape_); }
  std::vector<int64_t> shape() const override { return shape_; }
  // The mean negative log-likelihood of the batch y [batch, *shape].
  torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) override;
  // loss(y) and its gradient by the discrete adjoint of the training solve on raw buffers
  // (src/model/ode_fused.cpp) with the exact divergence, a net that runs on raw buffers and
  // float64 CPU data; autograd otherwise (Hutchinson's estimator included).
  double loss_and_gradient(const torch::Tensor& y, const Condition& condition = {}) override;
  bool has_fused_step(const torch::Tensor& y) const override;
  // The exact log-likelihood in ELBO form (time_samples is unused): reconstruction 0 (the flow
  // is deterministic; the bound is tight), prior = -log N(x_0; 0, I), drift = int_0^1 div F dt,
  // so that total() = log p_1(y).
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) override;
  // dx/dt = F(x, t); the flow is deterministic, so `diffusion` must be zero.
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  nlohmann::json config() const override;

  const OdeModelOptions& options() const { return options_; }
  // The change of variables through the training solve (options().solver and steps). Without
  // gradients (under torch::NoGradGuard) and with the exact divergence, it runs on raw buffers
  // (the net's Jacobian tangents, solve_ode_raw): the same states, no graph.
  FlowLikelihood likelihood(const torch::Tensor& y);
  torch::Tensor velocity(const torch::Tensor& x, const torch::Tensor& t);

 private:
  OdeModelOptions options_;
  NetworkPtr net_;
  std::shared_ptr<MlpImpl> mlp_;  // net_, when it is an MLP (exact divergence, the fused step)
  std::vector<int64_t> shape_;
  Workspace workspace_;  // the fused step's buffers and one tape per stage of the solve
};

}  // namespace sdegen
