#pragma once
// Exact log-likelihood through the probability-flow ODE (instantaneous change of variables):
// integrating dx/dt = v(x, t) and d ell/dt = div v from the data at t1 back to t0 gives
//   log p_{t1}(x) = log p_prior(x_{t0}) - int_{t0}^{t1} div v dt.
// The divergence is exact (one backward pass per dimension) or Hutchinson's estimate with
// Rademacher probes held fixed over the solve.
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
};

struct LikelihoodResult {
  torch::Tensor log_prob;        // [n]: log p_{t1}(x)
  torch::Tensor prior_log_prob;  // [n]: log p_prior at the state reached at t0
  torch::Tensor x_prior;         // the states at t0
  int64_t nfe = 0;
};

// velocity(t, x) for x of the data's shape; the prior is N(0, prior_std^2 I).
// Throws NumericError with the solver's message if the solve fails.
LikelihoodResult log_likelihood(const VectorField& velocity, const torch::Tensor& x,
                                double prior_std, const LikelihoodOptions& options = {});
// The probability-flow velocity of a model (trained network or oracle).
LikelihoodResult log_likelihood(const MarginalField& model, const torch::Tensor& x,
                                const LikelihoodOptions& options = {});

}  // namespace sdegen
