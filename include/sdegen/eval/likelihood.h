#pragma once
// Exact log-likelihood through the probability-flow ODE (instantaneous change of variables):
// integrating dx/dt = v(x, t) and d ell/dt = div v from the data at t1 back to t0 gives
//   log p_{t1}(x) = log p_prior(x_{t0}) - int_{t0}^{t1} div v dt.
// The divergence is exact or Hutchinson's estimate with Rademacher probes held fixed over the
// solve. Two paths compute it: tensors, with the exact divergence from one backward pass per
// dimension (any field, the reference), and raw float64 buffers, where the field supplies its
// own exact divergence (a network's from its Jacobian tangents, net/mlp_kernel.h) and dopri5
// runs on the buffers too (solve_ode_adaptive_raw).
#include <torch/torch.h>

#include <string>

#include "sdegen/process/generative.h"
#include "sdegen/solver/ode.h"

namespace sdegen {

struct LikelihoodOptions {
  std::string solver = "dopri5";  // or a fixed-step ODE solver: euler, midpoint, heun, rk4
  int steps = 100;                // fixed-step solvers only
  AdaptiveOptions adaptive{1e-5, 1e-5};
  bool exact_divergence = true;   // false: Hutchinson's estimator
  int64_t probes = 1;             // Hutchinson probes per point
  double t0 = 0.0;
  double t1 = 1.0;
  // The tensor path (autograd's divergence) even where the field has a raw one: the reference
  // the raw path is tested and benchmarked against.
  bool reference = false;
  // dopri5 on the raw path: a point whose solve cannot be controlled (it blows up) is set aside
  // and marked invalid, instead of failing the solve of every point (solve_ode_adaptive_raw).
  bool isolate_failures = true;
};

// Per-point trust: a point is valid when its solve finished (it was not set aside) and both its
// state at t0 and its log_prob are finite. An invalid point's log_prob, prior_log_prob and
// x_prior row are NaN, so that no average can take them in silently: average over `valid` only
// and report `invalid`. A solve that fails as a whole (no point to blame, too many steps, a
// fixed-step solve that meets a non-finite state) throws NumericError with the solver's message.
struct LikelihoodResult {
  torch::Tensor log_prob;        // [n]: log p_{t1}(x)
  torch::Tensor prior_log_prob;  // [n]: log p_prior at the state reached at t0
  torch::Tensor x_prior;         // the states at t0
  torch::Tensor valid;           // [n] bool
  int64_t invalid = 0;           // points with valid false
  int64_t nfe = 0;
  bool raw = false;              // computed on raw buffers (else the tensor path)
  // log_prob of the valid points.
  torch::Tensor valid_log_prob() const { return log_prob.index({valid}); }
};

// velocity(t, x) for x of the data's shape; the prior is N(0, prior_std^2 I). `raw`, when given,
// is the same velocity with its exact divergence on raw buffers: the solve then runs on it
// (no tensor work per evaluation) whenever the divergence is exact, x is CPU float64 and
// options.reference is false; the tensor path otherwise.
LikelihoodResult log_likelihood(const VectorField& velocity, const torch::Tensor& x,
                                double prior_std, const LikelihoodOptions& options = {},
                                const RawDivergenceField& raw = {});
// The probability-flow velocity of a model (trained network or oracle), on raw buffers where
// the field has them (MarginalField::raw_velocity_divergence).
LikelihoodResult log_likelihood(const MarginalField& model, const torch::Tensor& x,
                                const LikelihoodOptions& options = {});

}  // namespace sdegen
