#pragma once
// The general variational model of shared/docs/math.md, everything learned:
//   inference process   alpha(y, t) = t y + t (1 - t) A(y, t)
//                       beta(y, t)  = (1 - t + t b1) exp(t (1 - t) B(y, t))
//   generative SDE      dx = F(x, t) dt + sigma(t) dW,  x_0 ~ N(0, I)
//   likelihood          p(y | x_1) = N(y; x_1, delta^2 I)
// A, B (one network with twice the outputs: an MLP of 2d outputs, a U-Net of 2C channels) and F
// are networks of one configuration; log sigma(t) is piecewise linear on equally spaced knots;
// b1 = beta(y, 1) and delta are learned scalars. The boundary conditions are built in:
// q_0 = N(0, I) is the prior (the prior KL is zero) and alpha(y, 1) = y.
// Trained by the full ELBO. The time derivatives of alpha and beta come in closed form from the
// MLP's forward tangents (Mlp::forward_with_tangents: no double backward); for another network
// (a U-Net on images) from reverse mode twice, about three network passes instead of one.
// Its marginal score is unknown, so it has no probability-flow ODE: it samples with its own
// diffusion (euler-maruyama) and reports its ELBO, not an exact likelihood.
#include <memory>
#include <string>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"
#include "sdegen/net/mlp_kernel.h"
#include "sdegen/net/network.h"
#include "sdegen/process/variational.h"

namespace sdegen {

struct SdeModelOptions {
  // The configuration of A/B and of F: the MLP (out_dim is set from the input's size) or the
  // U-Net (out_channels is set from its in_channels).
  nlohmann::json net = to_json(MlpOptions(1));
  double b1 = 0.01;                       // initial beta(y, 1), learned, in (0, 1)
  double delta = 0.01;                    // initial likelihood width, learned
  int64_t sigma_knots = 16;               // knots of log sigma(t), >= 2
  std::string time_sampling = "antithetic";  // uniform | antithetic
  std::string dtype = "float64";          // float32 | float64; images train in float32
};

// alpha, beta and their time derivatives at once (one pass through the inference network).
struct ProcessMoments {
  torch::Tensor alpha, beta, dalpha, dbeta;  // each like y
};

// The configuration a checkpoint records (GenerativeModel::config() of a model built from it).
nlohmann::json to_json(const SdeModelOptions& options);

class SdeModel final : public GenerativeModel {
 public:
  // Refuses a conditional network and a network type whose outputs cannot be doubled.
  explicit SdeModel(SdeModelOptions options);

  std::string kind() const override { return "sde"; }
  int64_t dim() const override { return example_numel(shape_); }
  std::vector<int64_t> shape() const override { return shape_; }
  torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) override;
  // loss(y) and its gradient by a fused kernel (src/model/sde_fused.cpp) when both nets run on
  // raw buffers and y is float64 on the CPU; autograd otherwise.
  double loss_and_gradient(const torch::Tensor& y, const Condition& condition = {}) override;
  bool has_fused_step(const torch::Tensor& y) const override;
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) override;
  // The learned SDE. Its diffusion is its own: `diffusion` must be zero (the default).
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  bool has_probability_flow() const override { return false; }
  nlohmann::json config() const override;

  const SdeModelOptions& options() const { return options_; }
  // y [batch, *shape], t [batch] or 0-dim.
  ProcessMoments moments(const torch::Tensor& y, const torch::Tensor& t);
  // sigma(t) for t [batch] (or 0-dim), same shape as t.
  torch::Tensor sigma(const torch::Tensor& t) const;
  torch::Tensor drift(const torch::Tensor& x, const torch::Tensor& t);
  // The learned inference process as a VariationalProcess (for checks and plots).
  std::shared_ptr<const VariationalProcess> process();
  // The ELBO's drift integrand |F - g|^2 / (2 sigma^2) per row at times t, with x ~ q_t(. | y)
  // drawn with the noise eps.
  torch::Tensor drift_integrand(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps);

 private:
  torch::Tensor sample_times(int64_t n, const torch::TensorOptions& options) const;
  void check_shape(const torch::Tensor& y) const;  // [batch, *shape], naming both when not

  SdeModelOptions options_;
  NetworkPtr inference_, drift_;
  std::shared_ptr<MlpImpl> inference_mlp_, drift_mlp_;  // the same, when they are MLPs (the fused path)
  std::vector<int64_t> shape_;
  torch::Tensor log_b1_, log_delta_, log_sigma_knots_;
  Workspace workspace_;  // the fused step's buffers
};

}  // namespace sdegen
