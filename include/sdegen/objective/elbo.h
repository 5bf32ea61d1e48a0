#pragma once
// The three terms of the ELBO of shared/docs/math.md, per data point:
//   log p(y) >= E_{q_1}[log p(y | x_1)] - KL(q_0(. | y) || p_0)
//               - int_0^1 E_{q_t} |f(x, t) - g(x, y, t)|^2 / (2 sigma^2) dt,
// and, for an affine schedule with a prediction network, the loss of every parameterisation as
// a weight times the drift term's integrand (objective/weighting.h).
#include <torch/torch.h>

#include "sdegen/objective/weighting.h"
#include "sdegen/process/variational.h"

namespace sdegen {

// The ELBO's terms for each row of a batch ([batch] tensors). drift is the (Monte Carlo)
// estimate of the integral over t, so total() = reconstruction - prior - drift.
struct ElboTerms {
  torch::Tensor reconstruction, prior, drift;
  torch::Tensor total() const { return reconstruction - prior - drift; }
};

// KL(N(mean, std^2 I) || N(0, prior_std^2 I)) per row; std broadcasts against mean.
torch::Tensor gaussian_kl_to_prior(const torch::Tensor& mean, const torch::Tensor& std, double prior_std);

// E_{x ~ N(alpha, beta^2 I)} log N(y; x, delta^2 I) per row, in closed form:
//   -d/2 log(2 pi delta^2) - (|y - alpha|^2 + d beta^2) / (2 delta^2).
torch::Tensor expected_reconstruction(const torch::Tensor& y, const torch::Tensor& alpha,
                                      const torch::Tensor& beta, const torch::Tensor& delta);

// The Girsanov integrand |f - g|^2 / (2 sigma^2) per row; sigma broadcasts against f.
torch::Tensor girsanov_integrand(const torch::Tensor& f, const torch::Tensor& g, const torch::Tensor& sigma);

// An affine schedule's noising of a batch at times t, and a network's output in its own space.
struct AffineLossInput {
  torch::Tensor y, eps, t;   // data [batch, ...], noise like y, times [batch]
  torch::Tensor prediction;  // the network's output at x_t = a y + b eps, like y
  Prediction native = Prediction::Noise;
};

struct AffineLoss {
  torch::Tensor elbo_integrand;  // [batch]: 1/2 lambda' |eps - eps_hat|^2, the ELBO's drift term per unit t
  torch::Tensor loss;            // [batch]: weight * elbo_integrand
};

// The regression target of a native prediction for (y, eps) at the coefficients c.
torch::Tensor native_target(Prediction native, const torch::Tensor& y, const torch::Tensor& eps,
                            const ScheduleCoefficients& c);

AffineLoss affine_loss(const AffineLossInput& in, const AffineSchedule& schedule, Weighting weighting,
                       const WeightingOptions& options = {});

}  // namespace sdegen
