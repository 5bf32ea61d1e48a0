#pragma once
// Generative SDEs: x_0 ~ N(0, prior_std^2 I), dx = f(x, t) dt + sigma(x, t) dW, integrated
// forward from t = 0 (prior) to t = 1 (data). sigma = 0 is an ODE (a continuous normalizing flow).
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sdegen/param/prediction.h"
#include "sdegen/process/schedule.h"

namespace sdegen {

// dx/dt at (t, x) for the n rows of x [n, d] on raw float64 buffers (solver/solution.h's
// RawVectorField, spelled out to keep this module below the solvers).
using RawField = std::function<void(double t, const double* x, int64_t n, double* dx)>;
// dx/dt = v(t, x) and its divergence tr(dv/dx) on raw float64 buffers: writes v [n, d] and
// div [n] for the n rows of x [n, d]. What an exact likelihood integrates.
using RawDivergenceField = std::function<void(double t, const double* x, int64_t n, double* v, double* div)>;
// The change of variables on raw buffers: the field of the state [x, ell] (rows of width d + 1)
// with dx/dt = v and d ell/dt = div v, for a solver of RawField.
RawField with_divergence(RawDivergenceField field, int64_t dim);

class GenerativeSde {
 public:
  virtual ~GenerativeSde() = default;
  virtual torch::Tensor drift(const torch::Tensor& x, double t) const = 0;
  // sigma(x, t); broadcasts against x (a 0-dim tensor for a diffusion that depends on t only).
  virtual torch::Tensor diffusion(const torch::Tensor& x, double t) const = 0;
  virtual double prior_std() const = 0;
  // The drift and its exact divergence on raw buffers, for one solve, when the drift evaluates
  // without tensors; empty otherwise. Only a deterministic flow's drift has a use for it (the
  // exact likelihood), so an SDE with noise may leave it empty. The callback keeps work
  // buffers: one solve, one thread.
  virtual RawDivergenceField raw_drift_divergence() const { return {}; }
  // n draws from the prior, each of shape `shape` (so the result is [n, shape...]).
  torch::Tensor sample_prior(int64_t n, torch::IntArrayRef shape,
                             torch::TensorOptions options = torch::kDouble) const;
};

// The diffusion of the prediction-based family: sigma(t) = scale (constant) or
// sigma(t) = scale * sqrt(b^2 lambda'(t)) (the standard reverse diffusion at scale 1).
struct DiffusionSpec {
  enum class Kind { Constant, Reverse };
  Kind kind = Kind::Constant;
  double scale = 0.0;
  bool is_zero() const { return scale == 0.0; }
};
// "0", "0.5", "reverse", "reverse:0.5"; anything else throws InvalidArgument.
DiffusionSpec parse_diffusion(const std::string& text);
std::string diffusion_name(const DiffusionSpec& spec);

// sigma(t) of a DiffusionSpec under a schedule. The reverse diffusion b^2 lambda' takes its
// finite limit -2 b b' where b = 0 (the data end), and is infinite where a = 0 (the prior end
// of linear, trig and vp-cosine), where its integral diverges too.
double diffusion_at(const DiffusionSpec& spec, const AffineSchedule& schedule, double t);

// What a sampler may ask of a model of the marginals p_t: any prediction at (x, t). Trained
// networks (through PredictionField) and the exact Gaussian-mixture oracle both implement it.
class MarginalField {
 public:
  virtual ~MarginalField() = default;
  // The probability-flow velocity on raw buffers, for one solve, when this field evaluates
  // without tensors (a network that net/mlp_kernel.h runs); empty otherwise. The callback
  // keeps work buffers: one solve, one thread.
  virtual RawField raw_velocity() const { return {}; }
  // The same velocity with its exact divergence, on raw buffers, for one solve; empty when this
  // field does not evaluate without tensors.
  virtual RawDivergenceField raw_velocity_divergence() const { return {}; }
  virtual const AffineSchedule& schedule() const = 0;
  // x [batch, ...]; all rows at time t.
  virtual torch::Tensor predict(const torch::Tensor& x, double t, Prediction to) const = 0;
  // Velocity and score together (the SDE drift needs both); a network evaluates once.
  virtual std::pair<torch::Tensor, torch::Tensor> velocity_and_score(const torch::Tensor& x,
                                                                     double t) const;
};

// A model's raw output at (x, t): x [batch, ...], t [batch].
using PredictionFn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t)>;

// The same prediction on raw buffers: out [n, dim] at x [n, dim], all rows at time t.
struct RawPrediction {
  int64_t dim = 0;
  std::function<void(const double* x, double t, int64_t n, double* out)> fn;  // empty: unavailable
  // The same prediction and the trace of its Jacobian in x per row, trace [n] (empty: unavailable).
  std::function<void(const double* x, double t, int64_t n, double* out, double* trace)> with_trace;
};
// Makes one solve's raw evaluator (fresh buffers), or an empty one when the network cannot run
// on raw buffers right now (e.g. it was moved to float32).
using RawPredictionFactory = std::function<RawPrediction()>;

// A network that outputs one kind of prediction, converted on request.
class PredictionField final : public MarginalField {
 public:
  PredictionField(PredictionFn fn, Prediction kind, SchedulePtr schedule, RawPredictionFactory raw = {});
  RawField raw_velocity() const override;
  RawDivergenceField raw_velocity_divergence() const override;
  const AffineSchedule& schedule() const override { return *schedule_; }
  torch::Tensor predict(const torch::Tensor& x, double t, Prediction to) const override;
  std::pair<torch::Tensor, torch::Tensor> velocity_and_score(const torch::Tensor& x,
                                                             double t) const override;

 private:
  PredictionFn fn_;
  Prediction kind_;
  SchedulePtr schedule_;
  RawPredictionFactory raw_;
};

// The family dx = [v + (sigma^2 / 2) s] dt + sigma dW of a marginal field; every member has
// the marginals of the probability-flow ODE dx/dt = v (Fokker-Planck). sigma = 0 is that ODE.
class MarginalSde final : public GenerativeSde {
 public:
  MarginalSde(std::shared_ptr<const MarginalField> field, DiffusionSpec diffusion);
  torch::Tensor drift(const torch::Tensor& x, double t) const override;
  torch::Tensor diffusion(const torch::Tensor& x, double t) const override;
  double prior_std() const override { return field_->schedule().prior_std(); }
  // The field's raw velocity and divergence when the diffusion is zero (the drift is then the
  // velocity); empty otherwise.
  RawDivergenceField raw_drift_divergence() const override;
  const MarginalField& field() const { return *field_; }
  const DiffusionSpec& diffusion_spec() const { return diffusion_; }

 private:
  std::shared_ptr<const MarginalField> field_;
  DiffusionSpec diffusion_;
};

}  // namespace sdegen
