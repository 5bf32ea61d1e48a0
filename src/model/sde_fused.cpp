// SdeModel's fused training step: loss() = -ELBO with one time per row, and its gradient,
// derived by hand on raw buffers (net/mlp_kernel.h). Per row, with bridge = t (1 - t),
// c = 1 - t + t b1 and the inference net's outputs A, B and their time derivatives A', B':
//   alpha  = t y + bridge A                 alpha' = y + (1 - 2t) A + bridge A'
//   beta   = c exp(bridge B)                beta'  = beta q,  q = (b1 - 1)/c + (1 - 2t) B + bridge B'
//   x      = alpha + beta eps               g      = alpha' + (beta' - s^2 / (2 beta)) eps
//   drift  = |F(x, t) - g|^2 / (2 s^2),     s = sigma(t) (log-linear between knots)
// The ends need no net: at t = 1, alpha = y and beta = b1, so the reconstruction is
// -d/2 log(2 pi delta^2) - d b1^2 / (2 delta^2); at t = 0, q_0 = N(0, I) and the prior KL is 0.
// The reverse pass runs these formulas backwards, then both nets' reverse passes (the drift
// net's gives dL/dx; the inference net's takes the value and time-derivative blocks).
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/sde_model.h"

namespace sdegen {
namespace {

enum Slot : size_t { kBeta, kQ, kX, kG, kGradF, kGradX, kGradQ, kSigma, kWeight, kKnot };

}  // namespace

bool SdeModel::has_fused_step(const torch::Tensor& y) const {
  return is_cpu_double(y) && inference_mlp_ && drift_mlp_ && MlpKernel::supports(*inference_mlp_) &&
         MlpKernel::supports(*drift_mlp_) &&
         is_raw_double(log_sigma_knots_);
}

double SdeModel::loss_and_gradient(const torch::Tensor& y_in, const Condition& condition) {
  check_unconditional(*this, condition);
  if (!has_fused_step(y_in)) return autograd_loss_and_gradient(*this, y_in);  // elbo() checks the shape
  SDEGEN_CHECK(y_in.dim() == 2 && y_in.size(1) == dim(), "sde model expects data of shape [batch, ", dim(),
               "], got ", y_in.sizes());
  const torch::Tensor y = y_in.contiguous();
  const int64_t n = y.size(0), d = dim(), K = options_.sigma_knots;
  // The same draws in the same order as loss() = -elbo(y, 1): the times, then the noise.
  const torch::Tensor t_tensor = sample_times(n, y.options()).contiguous();
  const torch::Tensor eps = batch_randn_like(y);
  zero_gradients(parameters());
  const double *Y = y.data_ptr<double>(), *E = eps.data_ptr<double>(), *t = t_tensor.data_ptr<double>();
  const double b1 = std::exp(*log_b1_.data_ptr<double>()), delta = std::exp(*log_delta_.data_ptr<double>());
  const double* knots = log_sigma_knots_.data_ptr<double>();

  const MlpKernel inference(*inference_mlp_), drift(*drift_mlp_);
  MlpTape& q_tape = workspace_.tape(0);
  MlpTape& f_tape = workspace_.tape(1);
  inference.forward(Y, t, n, {true, false}, q_tape);
  const double* AB = q_tape.output();  // [2, n, 2d]: [A, B], then [A', B']
  const double* dAB = AB + n * 2 * d;

  double *beta = workspace_.get(kBeta, n * d), *q = workspace_.get(kQ, n * d);
  double *x = workspace_.get(kX, n * d), *g = workspace_.get(kG, n * d);
  double *sigma = workspace_.get(kSigma, n), *weight = workspace_.get(kWeight, n);
  int64_t* knot = reinterpret_cast<int64_t*>(workspace_.get(kKnot, n));
  for (int64_t i = 0; i < n; ++i) {
    const double ti = t[i], bridge = ti * (1.0 - ti), dbridge = 1.0 - 2.0 * ti, c = 1.0 - ti + ti * b1;
    // sigma(t): as piecewise_log_linear in sde_model.cpp.
    const double pos = std::clamp(ti, 0.0, 1.0) * static_cast<double>(K - 1);
    const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(std::floor(pos)), 0, K - 2);
    const double w = pos - static_cast<double>(k);
    const double s = std::exp(knots[k] + w * (knots[k + 1] - knots[k]));
    sigma[i] = s, weight[i] = w, knot[i] = k;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      const double A = AB[i * 2 * d + j], B = AB[i * 2 * d + d + j];
      const double dA = dAB[i * 2 * d + j], dB = dAB[i * 2 * d + d + j];
      const double alpha = ti * Y[e] + bridge * A, dalpha = Y[e] + dbridge * A + bridge * dA;
      beta[e] = c * std::exp(bridge * B);
      q[e] = (b1 - 1.0) / c + dbridge * B + bridge * dB;
      x[e] = alpha + beta[e] * E[e];
      g[e] = dalpha + (beta[e] * q[e] - s * s / (2.0 * beta[e])) * E[e];
    }
  }

  drift.forward(x, t, n, {}, f_tape);
  const double* F = f_tape.output();
  const double nn = static_cast<double>(n);
  double* grad_F = workspace_.get(kGradF, n * d);
  double integral = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double s2 = sigma[i] * sigma[i];
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      const double r = F[e] - g[e];
      integral += r * r / (2.0 * s2);
      grad_F[e] = r / (s2 * nn);
    }
  }
  integral /= nn;
  double* grad_x = workspace_.get(kGradX, n * d);
  drift.backward(f_tape, grad_F, grad_x);

  // Backwards through the moments; the inference net's gradient stack is [2, n, 2d] like AB.
  double* grad_AB = workspace_.get(kGradQ, 2 * n * 2 * d);
  double* grad_knots = log_sigma_knots_.grad().data_ptr<double>();
  double grad_b1 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double ti = t[i], bridge = ti * (1.0 - ti), dbridge = 1.0 - 2.0 * ti, c = 1.0 - ti + ti * b1;
    const double s = sigma[i], s2 = s * s;
    double grad_s = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      const double r = F[e] - g[e], eps_e = E[e], b = beta[e];
      const double gg = -r / (s2 * nn);  // dL/dg
      const double gx = grad_x[e];       // dL/dx, from the drift net
      const double g_dbeta = gg * eps_e;
      const double g_beta = gg * eps_e * s2 / (2.0 * b * b) + gx * eps_e + g_dbeta * q[e];
      const double g_q = g_dbeta * b;
      grad_AB[i * 2 * d + j] = gx * bridge + gg * dbridge;                          // A
      grad_AB[i * 2 * d + d + j] = g_q * dbridge + g_beta * b * bridge;             // B
      grad_AB[n * 2 * d + i * 2 * d + j] = gg * bridge;                             // A'
      grad_AB[n * 2 * d + i * 2 * d + d + j] = g_q * bridge;                        // B'
      grad_b1 += g_beta * (b / c) * ti + g_q * (1.0 / c - (b1 - 1.0) * ti / (c * c));
      grad_s += -r * r / (s2 * s * nn) - gg * eps_e * s / b;
    }
    const int64_t k = knot[i];
    grad_knots[k] += grad_s * s * (1.0 - weight[i]);
    grad_knots[k + 1] += grad_s * s * weight[i];
  }
  inference.backward(q_tape, grad_AB, nullptr);

  const double dd = static_cast<double>(d);
  const double reconstruction = -0.5 * dd * std::log(2.0 * M_PI * delta * delta) - dd * b1 * b1 / (2.0 * delta * delta);
  *log_b1_.grad().data_ptr<double>() = b1 * grad_b1 + dd * b1 * b1 / (delta * delta);
  *log_delta_.grad().data_ptr<double>() = dd - dd * b1 * b1 / (delta * delta);
  return integral - reconstruction;
}

}  // namespace sdegen
