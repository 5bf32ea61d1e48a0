// Stochastic samplers with their own noise: DDPM ancestral sampling, the reverse-diffusion
// predictor of Song et al. (2021) and EDM's stochastic sampler (Karras et al. 2022, Algorithm 2).
//
// The papers run from data to noise; here time runs from the prior (t = 0) to the data (t = 1),
// and the one mapping is the grid: a grid t_0 < ... < t_N is their noise levels in reverse order.
// Its forward (noising) Markov chain steps from t_{i+1} back to t_i:
//   x_i = r x_{i+1} + G z,   r = a_i / a_{i+1},   G^2 = b_i^2 - r^2 b_{i+1}^2 = b_i^2 (1 - w^2),
// with w = (a_i b_{i+1}) / (a_{i+1} b_i) = exp(-(lambda_{i+1} - lambda_i) / 2) in [0, 1), formed
// directly so that a_i = 0 (the prior end of linear and trig) and b_{i+1} = 0 (the data end) need
// no special case: w = 0 at both.
#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {
namespace {

struct ChainStep {
  double a, b, a_next, b_next, w;
};

ChainStep chain_step(const AffineSchedule& s, double t, double t_next) {
  ChainStep c{s.a(t), s.b(t), s.a(t_next), s.b(t_next), 0.0};
  SDEGEN_CHECK(c.b > 0 && c.a_next > 0, "cannot step the forward chain from t = ", t, " to ", t_next,
               " (a = ", c.a_next, " at the end, b = ", c.b, " at the start)");
  c.w = (c.a * c.b_next) / (c.a_next * c.b);
  return c;
}

// The mean of x_{i+1} given x_i and y, the Gaussian posterior of the chain with the prior
// x_{i+1} ~ N(a_{i+1} y, b_{i+1}^2):
//   mean = (r b_{i+1}^2 x_i + G^2 a_{i+1} y) / b_i^2 = (b_{i+1} / b_i) w x_i + a_{i+1} (1 - w^2) y,
//   var  = b_{i+1}^2 G^2 / b_i^2 = b_{i+1}^2 (1 - w^2).
// With y = y_hat(x_i) it is also E[x_{i+1} | x_i] (Tweedie's formula for the Gaussian kernel of
// the chain), so both samplers below share it and differ only in the noise they add.
torch::Tensor chain_mean(const ChainStep& c, const torch::Tensor& x, const torch::Tensor& y) {
  return (c.b_next / c.b * c.w) * x + (c.a_next * (1.0 - c.w * c.w)) * y;
}

// DDPM ancestral step: a draw from the posterior, with y_hat(x_i, t_i) for y. The last step to
// b = 0 has zero variance and lands on a y_hat. Exact for a point mass (y_hat = y); for data with
// spread it misses a_{i+1}^2 (1 - w^2)^2 Var[y | x_i] per step (Ho et al.'s lower variance choice),
// which vanishes as the steps shrink.
torch::Tensor ddpm_step(const MarginalField& m, double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
  const ChainStep c = chain_step(m.schedule(), t, t_next);
  const torch::Tensor y = m.predict(x, t, Prediction::Data);
  ++nfe;
  const double std_dev = c.b_next * std::sqrt(1.0 - c.w * c.w);
  const torch::Tensor mean = chain_mean(c, x, y);
  return std_dev > 0 ? mean + std_dev * torch::randn_like(x) : mean;
}

// Song et al.'s reverse-diffusion predictor for this chain:
//   x_{i+1} = (x_i + G^2 s(x_i, t_i)) / r + (G / r) z.
// Its mean is E[x_{i+1} | x_i] exactly (Tweedie: E[r x_{i+1} | x_i] = x_i + G^2 s), and equals
// chain_mean with y_hat, since x + G^2 s = w^2 x + (1 - w^2) a_i y_hat. Song's own form,
// x_{i+1} = (2 - r) x_i + G^2 s + G z, is its first-order expansion in 1 - r (exact only as r -> 1,
// and not for ve-like r = 1 with large G); the exact mean costs nothing more. Its variance G^2 / r^2
// exceeds DDPM's by e^(lambda_{i+1} - lambda_i). The last step adds no noise (Song et al.'s
// sampler returns the last mean: its G / r is a_N b_{N-1} / a_{N-1} where b_N = 0). It needs
// r > 0: a_i > 0, checked before sampling.
torch::Tensor reverse_diffusion_step(const MarginalField& m, double t, double t_next, bool last,
                                     const torch::Tensor& x, int64_t& nfe) {
  const ChainStep c = chain_step(m.schedule(), t, t_next);
  SDEGEN_CHECK(c.a > 0, "the reverse-diffusion step divides by r = a(t) / a(t_next), and a = 0 at t = ", t);
  const torch::Tensor y = m.predict(x, t, Prediction::Data);
  ++nfe;
  const torch::Tensor mean = chain_mean(c, x, y);
  const double g_over_r = c.b * std::sqrt(1.0 - c.w * c.w) * c.a_next / c.a;
  return last || !(g_over_r > 0) ? mean : mean + g_over_r * torch::randn_like(x);
}

// EDM's noise level sigma = b / a at t, and the time of a noise level through lambda = -2 log sigma.
double sigma_at(const AffineSchedule& s, double t) { return s.b(t) / s.a(t); }

void check_edm_options(const EdmOptions& o) {
  SDEGEN_CHECK(o.churn >= 0 && std::isfinite(o.churn), "edm churn (S_churn) must be >= 0 and finite, got ", o.churn);
  SDEGEN_CHECK(o.s_noise > 0 && std::isfinite(o.s_noise), "edm s_noise (S_noise) must be > 0 and finite, got ",
               o.s_noise);
  SDEGEN_CHECK(o.s_tmin >= 0 && o.s_tmax >= o.s_tmin, "edm s_tmin and s_tmax (S_tmin <= S_tmax, noise levels ",
               "sigma = b / a) need 0 <= s_tmin <= s_tmax, got s_tmin = ", o.s_tmin, ", s_tmax = ", o.s_tmax);
}

}  // namespace

Solution solve_ddpm(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer) {
  const detail::GridStep step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    return ddpm_step(model, t, t_next, x, nfe);
  };
  return detail::march(grid, x0, step, observer);
}

PredictorStep reverse_diffusion_predictor(const MarginalField& model, const TimeGrid& grid) {
  const double end = grid.back();
  return [&model, end](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    return reverse_diffusion_step(model, t, t_next, t_next == end, x, nfe);
  };
}

Solution solve_reverse_diffusion(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                                 const Observer& observer) {
  return detail::march(grid, x0, reverse_diffusion_predictor(model, grid), observer);
}

// Algorithm 2 on x~ = x / a (x~ = y + sigma eps: EDM's variance-exploding process), with
// D(x~; sigma) = y_hat(a(t) x~, t) at the t where b / a = sigma. Churn raises sigma_i to
// sigma_hat = sigma_i (1 + gamma) by adding noise of variance sigma_hat^2 - sigma_i^2; sigma_hat is
// capped at the schedule's sigma at t = 0 (the model is not defined before it) and mapped to a
// time through the schedule's inverse of lambda, then back to sigma, so that D is evaluated at
// exactly the sigma the step uses. A Heun step to sigma_{i+1}; the last step to sigma = 0 is Euler.
Solution solve_edm(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                   const EdmOptions& o, const Observer& observer) {
  check_edm_options(o);
  detail::check_grid(grid);
  const AffineSchedule& s = model.schedule();
  SDEGEN_CHECK(s.a(grid.front()) > 0, "edm works in sigma = b / a, which is infinite at t = ", grid.front(),
               " under the '", s.name(), "' schedule (a = 0 there): start at t0 > 0 or use the ve or edm schedule");
  const double gamma_max = std::min(o.churn / (grid.size() - 1), std::sqrt(2.0) - 1.0);
  const double sigma_cap = sigma_at(s, 0.0);  // +inf where a(0) = 0
  const detail::GridStep step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    const double a = s.a(t), sigma = sigma_at(s, t), a_next = s.a(t_next), sigma_next = sigma_at(s, t_next);
    torch::Tensor xt = x / a;
    double t_hat = t, sigma_hat = sigma;
    const double gamma = o.s_tmin <= sigma && sigma <= o.s_tmax ? gamma_max : 0.0;
    if (gamma > 0 && sigma < sigma_cap) {
      t_hat = std::clamp(s.inverse_lambda(-2.0 * std::log(std::min(sigma * (1 + gamma), sigma_cap))), 0.0, t);
      sigma_hat = sigma_at(s, t_hat);
      xt = xt + std::sqrt(std::max(0.0, sigma_hat * sigma_hat - sigma * sigma)) * o.s_noise * torch::randn_like(xt);
    }
    const torch::Tensor d = (xt - model.predict(s.a(t_hat) * xt, t_hat, Prediction::Data)) / sigma_hat;
    ++nfe;
    torch::Tensor next = xt + (sigma_next - sigma_hat) * d;
    if (sigma_next > 0) {
      const torch::Tensor d_next = (next - model.predict(a_next * next, t_next, Prediction::Data)) / sigma_next;
      ++nfe;
      next = xt + (0.5 * (sigma_next - sigma_hat)) * (d + d_next);
    }
    return a_next * next;
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace sdegen
