#pragma once
// The exact oracle: for data from a Gaussian mixture (weights w_k, means mu_k, diagonal stds s_k)
// and an affine schedule, the marginal p_t is again a mixture, with means a(t) mu_k and
// variances a(t)^2 s_k^2 + b(t)^2. Its log density, score and every prediction are closed forms:
// the ground truth for solvers, likelihoods, the Fokker-Planck solver and trained models.
#include <torch/torch.h>

#include "sdegen/data/mixture.h"
#include "sdegen/process/generative.h"

namespace sdegen {

class GmmOracle final : public MarginalField {
 public:
  GmmOracle(GaussianMixture mixture, SchedulePtr schedule);

  const AffineSchedule& schedule() const override { return *schedule_; }
  const GaussianMixture& data() const { return mixture_; }

  // p_t itself, as a mixture.
  GaussianMixture marginal(double t) const;
  // log p_t(x), [batch]; x is [batch, d].
  torch::Tensor log_prob(const torch::Tensor& x, double t) const;
  // d log p_t / dx.
  torch::Tensor score(const torch::Tensor& x, double t) const;
  // E[y | x_t = x] (Tweedie), the ideal data prediction.
  torch::Tensor posterior_mean(const torch::Tensor& x, double t) const;
  // The probability-flow velocity sum_k r_k(x) v_k(x), with r_k the responsibilities and
  // v_k = a' mu_k + (V_k' / 2 V_k)(x - a mu_k) the velocity that carries component k
  // (V_k = a^2 s_k^2 + b^2; V_k' / 2 = a a' s_k^2 + b b' with the schedule's b_db, which stays
  // finite where b' does not). Finite at both ends of [0, 1] even where a or b vanish.
  torch::Tensor velocity(const torch::Tensor& x, double t) const;
  // Any prediction; noise and v are formed as -b s and a eps - b y_hat, so they stay finite.
  torch::Tensor predict(const torch::Tensor& x, double t, Prediction to) const override;
  // Both from one computation of the moments and responsibilities.
  std::pair<torch::Tensor, torch::Tensor> velocity_and_score(const torch::Tensor& x,
                                                             double t) const override;

 private:
  struct Moments {
    torch::Tensor mean, var, dmean, dvar;  // [K, d]
  };
  Moments moments(double t) const;
  // E[y | x_t = x] and the score from one computation of the responsibilities.
  std::pair<torch::Tensor, torch::Tensor> data_and_score(const torch::Tensor& x, double t) const;
  // Responsibilities r_k(x) under p_t: [batch, K].
  torch::Tensor responsibilities(const torch::Tensor& x, const Moments& m) const;

  GaussianMixture mixture_;
  SchedulePtr schedule_;
};

}  // namespace sdegen
