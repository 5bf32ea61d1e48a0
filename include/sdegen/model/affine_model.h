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
#include "sdegen/net/network.h"
#include "sdegen/objective/coupling.h"
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
  // The network (net/network.h) by its configuration: the MLP for vectors, the U-Net for images.
  nlohmann::json net = to_json(MlpOptions(1));
  // Conditional nets (num_classes > 0): each training label becomes kNullLabel with this
  // probability, so the same weights learn the unconditional model (classifier-free guidance).
  double p_uncond = 0.1;
  // How training pairs each data row with a prior draw (objective/coupling.h): independent, or
  // minibatch optimal transport (ot, ot-sinkhorn with coupling_epsilon), within each class.
  std::string coupling = "independent";
  double coupling_epsilon = 0.05;
  // float64 for vectors (the fused kernels and the likelihood's tolerances need it); float32 for
  // image networks, where double precision would halve the speed for nothing.
  std::string dtype = "float64";
  // vdm: learn lambda(0) and lambda(1), starting from schedule_options.lambda_min and lambda_max
  // (model parameters "lambda_0" and "lambda_1"). Needs the loglinear schedule and ELBO weighting.
  bool learn_endpoints = false;
  // vdm: pieces K of the schedule's monotone shape m(t); K > 1 learns m (parameter
  // "schedule_logits", starting at m(t) = t). K = 1 is lambda linear in t. Needs ELBO weighting.
  int64_t schedule_knots = 1;
};

// EDM's preconditioned data prediction of a raw network at (x, t) (see AffineModelOptions).
torch::Tensor edm_denoiser(NetworkImpl& net, const AffineSchedule& schedule, double sigma_data, const torch::Tensor& x,
                           const torch::Tensor& t, const Condition& condition = {});

// The native prediction of `net` (EDM's preconditioning included) on raw buffers through
// net/mlp_kernel.h: PredictionField's raw sampling path (src/model/affine_fused.cpp).
RawPredictionFactory raw_prediction(Mlp net, SchedulePtr schedule, bool precondition, double sigma_data);

// The defaults of each named specialisation (schedule, prediction, weighting, time sampling).
AffineModelOptions affine_model_defaults(const std::string& kind, int64_t dim);

// The configuration a checkpoint records (GenerativeModel::config() of a model built from it).
nlohmann::json to_json(const AffineModelOptions& options);

class AffineModel final : public GenerativeModel {
 public:
  // The network is built from options.net; or, for a network of the caller's own (any
  // NetworkImpl), given here, and options.net then becomes its config().
  explicit AffineModel(AffineModelOptions options, NetworkPtr net = nullptr);

  std::string kind() const override { return options_.kind; }
  int64_t dim() const override { return example_numel(shape_); }
  std::vector<int64_t> shape() const override { return shape_; }
  int64_t num_classes() const override { return net_->num_classes(); }
  int64_t condition_dim() const override { return net_->condition_dim(); }
  // The negative ELBO for vdm (or a weighted ELBO integrand plus the end terms): the drift term
  // at times from options().time_sampling and one noise draw per row, plus end_terms(y). Labels
  // are dropped to kNullLabel with probability options().p_uncond.
  torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) override;
  // loss(y) and its gradient by a fused kernel (src/model/affine_fused.cpp) when the net is an
  // unconditional MLP that runs on raw buffers (MlpKernel::supports) and y is float64 on the
  // CPU; autograd otherwise.
  double loss_and_gradient(const torch::Tensor& y, const Condition& condition = {}) override;
  bool has_fused_step(const torch::Tensor& y) const override;
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) override;
  // The ELBO's reconstruction and prior terms per row (drift zero), differentiable in delta and
  // in the schedule's parameters.
  ElboTerms end_terms(const torch::Tensor& y) const;
  // The ELBO integrand and the training loss per row at times t [batch] with noise eps (like y),
  // differentiable in the network and the schedule's parameters.
  AffineLoss drift_terms(const torch::Tensor& y, const torch::Tensor& t, const torch::Tensor& eps,
                         const Condition& condition = {});
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  // The unconditional field (the null label for a conditional net).
  std::shared_ptr<const MarginalField> field() const override { return field_; }
  // Classifier-free guidance (math.md): the native prediction uncond + w (cond - uncond) at the
  // given labels, one batched network call for both; w = 1 is the conditional model, w = 0 the
  // unconditional one. Every prediction is affine in the native one at fixed (x, t), so the
  // guided field means the same whatever the parameterisation. An empty condition gives field().
  std::shared_ptr<const MarginalField> guided_field(const Condition& condition, double w) const;
  // The guided field's probability-flow velocity with a time per row, t [batch]: what
  // guided_field(condition, w)->predict(x, t_i, Velocity) gives row by row, in one network call
  // (two rows per row with guidance) where the field takes one time per call.
  torch::Tensor guided_velocity(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition,
                                double w) const;
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
  // The network's native prediction at (x, t) (EDM's preconditioning included).
  torch::Tensor predict_native(const torch::Tensor& x, const torch::Tensor& t, const Condition& condition = {});
  NetworkImpl& net() const { return *net_; }
  // How loss() pairs the data with prior draws (options().coupling and coupling_epsilon).
  CouplingOptions coupling() const;
  // The prior draws paired with y in training: condition.source when given (reflow), else fresh
  // draws coupled by coupling().
  torch::Tensor prior_pairs(const torch::Tensor& y, const Condition& condition) const;

 private:
  torch::Tensor sample_times(int64_t n, const torch::TensorOptions& options) const;
  // Refuses data that is not [batch, *shape()], naming both shapes.
  void check_data(const torch::Tensor& y) const;
  // The condition with each label replaced by kNullLabel with probability p_uncond.
  Condition drop_labels(const Condition& condition, int64_t batch) const;
  // The native prediction as a function of (x, t) at a fixed condition.
  PredictionFn native_fn(const Condition& condition) const;
  // The guided native prediction (guided_field's); an empty condition or w = 0: the unconditional one.
  PredictionFn guided_fn(const Condition& condition, double w) const;
  SchedulePtr make_learnable_schedule();
  // Throws NumericError when an optimiser step has carried the learned lambda(1) below lambda(0).
  void check_learned_endpoints() const;

  AffineModelOptions options_;
  SchedulePtr schedule_;
  const LogLinearSchedule* learned_ = nullptr;  // schedule_, when it has parameters of its own
  std::pair<double, double> range_;
  NetworkPtr net_;
  std::shared_ptr<MlpImpl> mlp_;  // net_, when it is an MLP (the fused kernels' path)
  std::vector<int64_t> shape_;
  torch::Tensor log_delta_;
  std::shared_ptr<const MarginalField> field_;
  Workspace workspace_;  // the fused step's buffers
};

}  // namespace sdegen
