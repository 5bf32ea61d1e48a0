// OdeModel's fused training step: the negative log-likelihood of the continuous normalizing
// flow through a fixed-step explicit Runge-Kutta solve from t = 1 to t = 0, and its gradient by
// the discrete adjoint of that same solve, on raw buffers (net/mlp_kernel.h).
// Forward, per step from t to t + h (h < 0) with the solver's tableau (a, b, c; solver/ode.h):
//   X_i = x + h sum_{j<i} a_ij K_i,   K_i = F(X_i, t + c_i h),   D_i = tr dF/dx (X_i, ...)
//   x <- x + h sum_i b_i K_i,         ell <- ell + h sum_i b_i D_i
// and L = mean(|x_0|^2 / 2 + d/2 log 2 pi - ell_0). Backward, with lambda = dL/dx (x_0 / n at
// the end) and dL/d ell = -1/n throughout: per step, stages last to first,
//   dL/dK_i = h b_i lambda + sum_{m>i} h a_mi dL/dX_m,   dL/dD_i = -h b_i / n,
// the net's reverse pass through its value and Jacobian blocks gives dL/dX_i and the weights'
// gradients, and lambda <- lambda + sum_i dL/dX_i. Every stage's tape is kept from the forward
// solve (memory ~ steps x stages x the net's activations), so nothing is recomputed.
#include <cmath>
#include <cstring>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/model/ode_model.h"
#include "sdegen/solver/ode.h"

namespace sdegen {
namespace {

enum Slot : size_t { kState, kNext, kStage, kSlopes, kTimes, kEll, kLambda, kGradSlopes, kGradStack, kGradX };

}  // namespace

bool OdeModel::has_fused_step(const torch::Tensor& y) const {
  return is_cpu_double(y) && options_.exact_divergence && mlp_ && MlpKernel::supports(*mlp_);
}

double OdeModel::loss_and_gradient(const torch::Tensor& y_in, const Condition& condition) {
  check_unconditional(*this, condition);
  if (!has_fused_step(y_in)) return autograd_loss_and_gradient(*this, y_in);  // likelihood() checks the shape
  SDEGEN_CHECK(y_in.dim() == 2 && y_in.size(1) == dim(), "ode model expects data of shape [batch, ", dim(),
               "], got ", y_in.sizes());
  const torch::Tensor y = y_in.contiguous();
  const int64_t n = y.size(0), d = dim(), nd = n * d, S = options_.steps;
  const ButcherTableau tab = butcher_tableau(options_.solver);
  const int64_t s = tab.stages();
  zero_gradients(parameters());
  const MlpKernel net(*mlp_);
  const Directions dirs{false, true};  // the value and the Jacobian's columns

  double* x = workspace_.get(kState, nd);
  double* next = workspace_.get(kNext, nd);
  double* X = workspace_.get(kStage, nd);
  double* K = workspace_.get(kSlopes, s * nd);
  double* times = workspace_.get(kTimes, n);
  double* ell = workspace_.get(kEll, n);
  std::memcpy(x, y.data_ptr<double>(), sizeof(double) * static_cast<size_t>(nd));
  std::fill(ell, ell + n, 0.0);
  auto step_of = [S](int64_t k) {  // the grid 1 - k / S, as OdeModel::likelihood builds it
    return std::pair<double, double>{1.0 - static_cast<double>(k) / S, 1.0 - static_cast<double>(k + 1) / S};
  };
  for (int64_t k = 0; k < S; ++k) {
    const auto [t, t_next] = step_of(k);
    const double h = t_next - t;
    std::memcpy(next, x, sizeof(double) * static_cast<size_t>(nd));
    for (int64_t i = 0; i < s; ++i) {
      std::memcpy(X, x, sizeof(double) * static_cast<size_t>(nd));
      for (int64_t j = 0; j < i; ++j) {
        const double w = h * tab.a[i][j];
        if (w != 0.0)
          for (int64_t e = 0; e < nd; ++e) X[e] += w * K[j * nd + e];
      }
      std::fill(times, times + n, t + tab.c[i] * h);
      MlpTape& tape = workspace_.tape(static_cast<size_t>(k * s + i));
      net.forward(X, times, n, dirs, tape);
      const double* out = tape.output();
      std::memcpy(K + i * nd, out, sizeof(double) * static_cast<size_t>(nd));
      const double w = h * tab.b[i];
      for (int64_t e = 0; e < nd; ++e) next[e] += w * out[e];
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < d; ++j) ell[r] += w * out[(1 + j) * nd + r * d + j];  // tr dF/dx
    }
    std::swap(x, next);
  }

  const double nn = static_cast<double>(n), dd = static_cast<double>(d);
  double loss = 0.0;
  for (int64_t e = 0; e < nd; ++e) loss += 0.5 * x[e] * x[e];
  for (int64_t r = 0; r < n; ++r) loss -= ell[r];
  loss = loss / nn + 0.5 * dd * std::log(2.0 * M_PI);
  if (!std::isfinite(loss)) return loss;

  double* lambda = workspace_.get(kLambda, nd);
  for (int64_t e = 0; e < nd; ++e) lambda[e] = x[e] / nn;
  double* grad_K = workspace_.get(kGradSlopes, s * nd);
  double* stack = workspace_.get(kGradStack, (1 + d) * nd);
  double* grad_X = workspace_.get(kGradX, nd);
  for (int64_t k = S - 1; k >= 0; --k) {
    const auto [t, t_next] = step_of(k);
    const double h = t_next - t;
    for (int64_t i = 0; i < s; ++i)
      for (int64_t e = 0; e < nd; ++e) grad_K[i * nd + e] = h * tab.b[i] * lambda[e];
    for (int64_t i = s - 1; i >= 0; --i) {
      // The value block takes dL/dK_i; Jacobian block j takes dL/dD_i on its diagonal entry.
      std::memcpy(stack, grad_K + i * nd, sizeof(double) * static_cast<size_t>(nd));
      std::fill(stack + nd, stack + (1 + d) * nd, 0.0);
      const double g_div = -h * tab.b[i] / nn;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < d; ++j) stack[(1 + j) * nd + r * d + j] = g_div;
      net.backward(workspace_.tape(static_cast<size_t>(k * s + i)), stack, grad_X);
      for (int64_t e = 0; e < nd; ++e) lambda[e] += grad_X[e];
      for (int64_t j = 0; j < i; ++j) {
        const double w = h * tab.a[i][j];
        if (w != 0.0)
          for (int64_t e = 0; e < nd; ++e) grad_K[j * nd + e] += w * grad_X[e];
      }
    }
  }
  return loss;
}

}  // namespace sdegen
