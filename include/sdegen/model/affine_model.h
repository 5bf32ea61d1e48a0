#pragma once
// The specialisations with an affine schedule and one prediction network: flow matching,
// diffusion (noise, data or v prediction; EDM), score matching and VDM. They are the general
// model with alpha = a(t) y, beta = b(t) and the drift f = v_hat + (sigma^2 / 2) s_hat; each is
// trained by a weight times the same ELBO integrand (objective/weighting.h) and reports the same
// ELBO. The schedule is fixed, except for vdm, whose loglinear schedule learns its endpoints
// (and optionally its shape) by the ELBO:
//
//   -ELBO(y) = int_0^1 1/2 lambda'(t) E|eps - eps_hat(x_t, t)|^2 dt   drift: l0, l1, w, net
//              - E log N(y; x_1 / a(1), delta^2 I)                   reconstruction: l1, delta
//              + KL(N(a(0) y, b(0)^2 I) || N(0, I))                   prior: l0
//
// with lambda(t) = l0 + (l1 - l0) m(t) and shape logits w (process/loglinear.h),
// x_t = a(t) y + b(t) eps, lambda'(t) = (l1 - l0) m'(t), b(1)/a(1) = exp(-l1/2) and
// a(0)^2 = sigmoid(l0) = 1 - b(0)^2. The network sees t, not lambda.
#include <cstdint>
#include <memory>
#include <string>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/mlp.h"
#include "sdegen/net/mlp_kernel.h"
#include "sdegen/objective/weighting.h"

namespace sdegen {

class LogLinearSchedule;

struct AffineModelOptions {
  std::string kind = "flow";           // flow | diffusion | score | vdm
  std::string schedule = "linear";
  ScheduleOptions schedule_options;
  Prediction prediction = Prediction::Velocity;  // what the network outputs
  Weighting weighting = Weighting::Native;
  std::string time_sampling = "uniform";  // uniform | antithetic | lognormal (EDM's noise levels)
  double lognormal_mean = -1.2;           // EDM P_mean (log sigma)
  double lognormal_std = 1.2;             // EDM P_std
  double t_epsilon = 1e-3;                // training times in [t_epsilon, 1 - t_epsilon] where an end is singular
  double delta = 0.01;                    // initial likelihood width (learned)
  // EDM's preconditioning (data prediction only): y_hat = c_skip x/a + c_out F(c_in x/a, t) with
  // sigma = b/a, c_in = 1/sqrt(sigma^2 + s_d^2), c_skip = s_d^2/(sigma^2 + s_d^2),
  // c_out = sigma s_d/sqrt(sigma^2 + s_d^2), so the net's input and target have unit scale.
  bool precondition = false;
  double sigma_data = 1.0;                // the data's scale (1: sdegen standardises data)
  MlpOptions net{1};
  // vdm: learn lambda(0) and lambda(1), starting from schedule_options.lambda_min and lambda_max
  // (model parameters "lambda_0" and "lambda_1"). Needs the loglinear schedule and ELBO weighting.
  bool learn_endpoints = false;
  // vdm: pieces K of the schedule's monotone shape m(t); K > 1 learns m (parameter
  // "schedule_logits", starting at m(t) = t). K = 1 is lambda linear in t. Needs ELBO weighting.
  int64_t schedule_knots = 1;
};

// EDM's preconditioned data prediction of a raw network at (x, t) (see AffineModelOptions).
torch::Tensor edm_denoiser(MlpImpl& net, const AffineSchedule& schedule, double sigma_data, const torch::Tensor& x,
                           const torch::Tensor& t);

// The native prediction of `net` (EDM's preconditioning included) on raw buffers through
// net/mlp_kernel.h: PredictionField's raw sampling path (src/model/affine_fused.cpp).
RawPredictionFactory raw_prediction(Mlp net, SchedulePtr schedule, bool precondition, double sigma_data);

// The defaults of each named specialisation (schedule, prediction, weighting, time sampling).
AffineModelOptions affine_model_defaults(const std::string& kind, int64_t dim);

// The configuration a checkpoint records (GenerativeModel::config() of a model built from it).
nlohmann::json to_json(const AffineModelOptions& options);

class AffineModel final : public GenerativeModel {
 public:
  explicit AffineModel(AffineModelOptions options);

  std::string kind() const override { return options_.kind; }
  int64_t dim() const override { return options_.net.in_dim(); }
  // The negative ELBO for vdm (or a weighted ELBO integrand plus the end terms): the drift term
  // at times from options().time_sampling and one noise draw per row, plus end_terms(y).
  torch::Tensor loss(const torch::Tensor& y) override;
  // loss(y) and its gradient by a fused kernel (src/model/affine_fused.cpp) when the net runs
  // on raw buffers (MlpKernel::supports) and y is float64 on the CPU; autograd otherwise.
  double loss_and_gradient(const torch::Tensor& y) override;
  bool has_fused_step(const torch::Tensor& y) const override;
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples) override;
  // The ELBO's reconstruction and prior terms per row (drift zero), differentiable in delta and
  // in the schedule's parameters.
  ElboTerms end_terms(const torch::Tensor& y) const;
  // The ELBO integrand and the training loss per row at times t [batch] with noise eps (like y),
  // differentiable in the network and the schedule's parameters.
  AffineLoss drift_terms(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps);
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  std::shared_ptr<const MarginalField> field() const override { return field_; }
  nlohmann::json config() const override;

  // The schedule that training, sampling, likelihood and grids use. For vdm with learned parts it
  // shares the model's parameters: it always has their current values (process/loglinear.h).
  const AffineSchedule& schedule() const { return *schedule_; }
  // Whether the schedule has parameters of its own (learned endpoints or shape).
  bool learns_schedule() const { return options_.learn_endpoints || options_.schedule_knots > 1; }
  const AffineModelOptions& options() const { return options_; }
  // The time range used for training and the ELBO, [t_lo, t_hi] within [0, 1]. Fixed at
  // construction: learned endpoints stay finite, so a(0) and b(1) never vanish.
  std::pair<double, double> time_range() const { return range_; }
  // The network's raw output at (x, t).
  torch::Tensor predict_native(const torch::Tensor& x, const torch::Tensor& t);

 private:
  torch::Tensor sample_times(int64_t n, const torch::TensorOptions& options) const;
  SchedulePtr make_learnable_schedule();
  // Throws NumericError when an optimiser step has carried the learned lambda(1) below lambda(0).
  void check_learned_endpoints() const;

  AffineModelOptions options_;
  SchedulePtr schedule_;
  const LogLinearSchedule* learned_ = nullptr;  // schedule_, when it has parameters of its own
  std::pair<double, double> range_;
  Mlp net_{nullptr};
  torch::Tensor log_delta_;
  std::shared_ptr<const MarginalField> field_;
  Workspace workspace_;  // the fused step's buffers
};

}  // namespace sdegen
