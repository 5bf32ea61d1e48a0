#include "sdegen/objective/elbo.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

torch::Tensor gaussian_kl_to_prior(const torch::Tensor& mean, const torch::Tensor& std, double prior_std) {
  SDEGEN_CHECK(prior_std > 0, "prior std must be positive, got ", prior_std);
  const torch::Tensor s2 = (std * std / (prior_std * prior_std)).expand_as(mean);
  const torch::Tensor m2 = mean * mean / (prior_std * prior_std);
  return sum_rows(0.5 * (s2 + m2 - 1.0 - torch::log(s2)));
}

torch::Tensor expected_reconstruction(const torch::Tensor& y, const torch::Tensor& alpha,
                                      const torch::Tensor& beta, const torch::Tensor& delta) {
  SDEGEN_CHECK(delta.dim() == 0 || (delta.dim() == 1 && delta.size(0) == y.size(0)),
               "likelihood width delta must be a scalar or one value per row, got shape ", delta.sizes());
  const double d = static_cast<double>(row_numel(y));
  const torch::Tensor dev = sum_rows((y - alpha).pow(2) + beta.expand_as(y).pow(2));
  const torch::Tensor d2 = delta * delta;
  return -0.5 * d * torch::log(2.0 * M_PI * d2) - dev / (2.0 * d2);
}

torch::Tensor girsanov_integrand(const torch::Tensor& f, const torch::Tensor& g, const torch::Tensor& sigma) {
  return sum_rows((f - g).pow(2) / (2.0 * sigma * sigma));
}

torch::Tensor native_target(Prediction native, const torch::Tensor& y, const torch::Tensor& eps,
                            const ScheduleCoefficients& c) {
  return from_data_noise({y, eps}, native, c);
}

AffineLoss affine_loss(const AffineLossInput& in, const AffineSchedule& schedule, Weighting weighting,
                       const WeightingOptions& options) {
  SDEGEN_CHECK(in.y.sizes() == in.eps.sizes() && in.y.sizes() == in.prediction.sizes(),
               "affine loss needs data, noise and prediction of one shape, got ", in.y.sizes(), ", ",
               in.eps.sizes(), " and ", in.prediction.sizes());
  SDEGEN_CHECK(in.t.dim() == 1 && in.t.size(0) == in.y.size(0), "affine loss needs one time per row, got t of shape ",
               in.t.sizes(), " for a batch of ", in.y.size(0));
  const ScheduleCoefficients c = schedule.coefficients(in.t);
  const torch::Tensor dlambda = schedule.dlambda(in.t);
  const ScheduleCoefficients cx = c.like(in.y);
  const torch::Tensor err2 = sum_rows((in.prediction - native_target(in.native, in.y, in.eps, cx)).pow(2));
  const torch::Tensor integrand = elbo_factor(in.native, c, dlambda) * err2;
  return {integrand, loss_weight(weighting, in.native, c, dlambda, options) * integrand};
}

}  // namespace sdegen
