#pragma once
// A continuous normalizing flow: x_0 ~ N(0, I), dx/dt = F(x, t) with an MLP F, trained by exact
// maximum likelihood through the instantaneous change of variables,
//   log p_1(y) = log N(x_0; 0, I) - int_0^1 div F(x_t, t) dt,
// integrating (x, int div F) from y at t = 1 back to t = 0 with a fixed-step solver and
// backpropagating through every step. The divergence is exact (the trace of the network's
// closed-form Jacobian, Mlp::forward_with_tangents: no double backward) or Hutchinson's
// estimate with Rademacher probes held fixed over the solve.
// It is the general model with sigma = 0: its ELBO is its log-likelihood (reported as the
// terms of the change of variables, see elbo()).
#include <memory>
#include <string>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"
#include "sdegen/net/mlp_kernel.h"

namespace sdegen {

struct OdeModelOptions {
  MlpOptions net{1};
  int steps = 100;                  // fixed steps of the training solve, >= 1
  std::string solver = "midpoint";  // euler, midpoint, heun, rk4
  bool exact_divergence = true;     // false: Hutchinson's estimator
  int64_t probes = 1;               // Hutchinson probes per point
};

// The change of variables for each row of y: log_prob = prior_log_prob - integrated_divergence.
struct FlowLikelihood {
  torch::Tensor log_prob, prior_log_prob, integrated_divergence, x0;
};

// The configuration a checkpoint records (GenerativeModel::config() of a model built from it).
nlohmann::json to_json(const OdeModelOptions& options);

class OdeModel final : public GenerativeModel {
 public:
  explicit OdeModel(OdeModelOptions options);

  std::string kind() const override { return "ode"; }
  int64_t dim() const override { return options_.net.in_dim(); }
  // The mean negative log-likelihood of the batch.
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
  Mlp net_{nullptr};
  Workspace workspace_;  // the fused step's buffers and one tape per stage of the solve
};

}  // namespace sdegen
