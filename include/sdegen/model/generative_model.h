#pragma once
// What training, sampling and evaluation ask of a model. Every specialisation (sde, ode, flow,
// diffusion, score, vdm) is one of these; they differ in what is learned and fixed, not in how
// they are trained or evaluated.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <string>

#include "sdegen/net/network.h"
#include "sdegen/objective/elbo.h"
#include "sdegen/process/generative.h"

namespace sdegen {

class GenerativeModel : public torch::nn::Module {
 public:
  // "sde", "ode", "flow", "diffusion", "score", "vdm", "consistency".
  virtual std::string kind() const = 0;
  // Elements of one example (d for vectors, C*H*W for images) and its shape ({d}, {C, H, W}).
  virtual int64_t dim() const = 0;
  virtual std::vector<int64_t> shape() const { return {dim()}; }
  // Classes the model is conditioned on (0: unconditional). A conditional model takes labels
  // [batch] with every batch (kNullLabel: no label), and an empty Condition means no label.
  virtual int64_t num_classes() const { return 0; }
  // Width of the condition vector the model takes (Condition::vector; 0: none). Such a model takes
  // a vector [batch, condition_dim] with every batch, and an empty Condition means none observed.
  virtual int64_t condition_dim() const { return 0; }

  // The scalar training loss on a batch of data y [batch, *shape] with its condition (the mean
  // over the batch of the weighted ELBO integrand, or of the negative ELBO, or of the negative
  // log-likelihood). A conditional model drops labels to kNullLabel at its p_uncond rate here.
  virtual torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) = 0;

  // One training step's work: the value of loss(y), with its gradient written into every
  // parameter's .grad() (earlier gradients are discarded). The default is loss(y) and autograd
  // (autograd_loss_and_gradient). A model overrides it with a fused kernel (net/mlp_kernel.h:
  // hand-derived gradients on raw buffers) for the configurations it supports and falls back to
  // the default for the others. Both draw the same random numbers in the same order, so they
  // give the same loss and gradients up to rounding. When the loss is not finite the
  // gradients are unspecified.
  virtual double loss_and_gradient(const torch::Tensor& y, const Condition& condition = {});
  // Whether loss_and_gradient runs a fused kernel for data like y (else it is autograd).
  virtual bool has_fused_step(const torch::Tensor& y) const { return false; }

  // A Monte Carlo estimate of the ELBO's three terms for each row of y, with `time_samples`
  // draws of t per row for the drift term (conditional on the labels, none dropped).
  virtual ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) = 0;

  // The generative SDE with diffusion `diffusion` (zero: the probability-flow ODE), for sampling.
  virtual std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const = 0;

  // Whether sde(zero diffusion) is the model's probability-flow ODE, so that it gives exact
  // likelihoods and deterministic samples. False for the general sde model, whose marginal
  // score is unknown: it samples with its own learned diffusion and reports only its ELBO.
  virtual bool has_probability_flow() const { return true; }
  // Whether elbo() gives the model's ELBO. False for a consistency model, a map with no SDE.
  virtual bool has_elbo() const { return true; }

  // The marginal field (predictions at (x, t)) when the model has one; samplers that need
  // predictions (ddim, dpm++2m, pc) use it. nullptr for models with a free drift.
  virtual std::shared_ptr<const MarginalField> field() const { return nullptr; }

  // Everything needed to rebuild this model's architecture (not its weights) with make_model.
  virtual nlohmann::json config() const = 0;
};

using ModelPtr = std::shared_ptr<GenerativeModel>;

// loss(y) and backward(): the reference every fused loss_and_gradient is tested against.
double autograd_loss_and_gradient(GenerativeModel& model, const torch::Tensor& y, const Condition& condition = {});

// Refuses labels for a model without classes, and a condition vector for a model without one,
// naming its kind.
void check_unconditional(const GenerativeModel& model, const Condition& condition);

}  // namespace sdegen
