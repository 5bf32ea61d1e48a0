#pragma once
// The loglinear (VDM) schedule of shared/docs/math.md, fixed or learned:
//   lambda(t) = l0 + (l1 - l0) m(t),   a(t) = sqrt(sigmoid(lambda)),   b(t) = sqrt(sigmoid(-lambda)),
// variance preserving (a^2 + b^2 = 1), with m increasing from m(0) = 0 to m(1) = 1. With one piece
// m(t) = t, the named `loglinear` schedule. With K > 1 pieces m is piecewise linear on the knots
// k / K, the increments of its pieces being softmax(w) of K logits w: increasing for any w, equal
// to t at w = 0, and with the closed-form derivative m'(t) = K softmax(w)_k on piece k and a
// closed-form inverse, which the samplers and time grids need.
//
// Tensors and doubles. The schedule holds l0, l1 and w as tensors shared with whoever owns and
// trains them (AffineModel registers them as parameters of the vdm model). Its tensor functions
// are differentiable in them under grad mode, so a loss built from a(t), b(t) and lambda'(t)
// trains them; its scalar functions (a(double), lambda_map(), ...) read their current values.
// Since the tensors are shared, never copied, the schedule sees whatever the optimiser, the weight
// average or a loaded checkpoint writes into them.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "sdegen/process/schedule.h"

namespace sdegen {

struct LogLinearParameters {
  torch::Tensor lambda_0;      // 0-dim: lambda(0), the prior end
  torch::Tensor lambda_1;      // 0-dim: lambda(1), the data end; above lambda_0
  torch::Tensor shape_logits;  // [K], K >= 1: the increments of m over its K pieces are softmax(w)
};

// Constant parameters (no gradient): the given endpoints and K zero logits, so m(t) = t.
LogLinearParameters loglinear_parameters(double lambda_0, double lambda_1, int64_t pieces = 1);

class LogLinearSchedule final : public AffineSchedule {
 public:
  // Refuses lambda_0 >= lambda_1, fewer than one piece and tensors of the wrong shape.
  explicit LogLinearSchedule(LogLinearParameters parameters);

  std::string name() const override { return "loglinear"; }
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor b(const torch::Tensor& t) const override;
  torch::Tensor da(const torch::Tensor& t) const override;
  torch::Tensor db(const torch::Tensor& t) const override;
  torch::Tensor lambda(const torch::Tensor& t) const override;
  torch::Tensor dlambda(const torch::Tensor& t) const override;
  torch::Tensor inverse_lambda(const torch::Tensor& lambda) const override;
  // Closed form on doubles at the parameters' current values (no gradient to them).
  void evaluate(const double* t, int64_t n, RawCoefficients& out) const override;
  using AffineSchedule::a;
  using AffineSchedule::b;
  using AffineSchedule::inverse_lambda;
  using AffineSchedule::lambda;

  // m(t), m'(t) and the inverse of m, elementwise; linear continuation outside [0, 1].
  torch::Tensor shape(const torch::Tensor& t) const;
  torch::Tensor dshape(const torch::Tensor& t) const;
  torch::Tensor inverse_shape(const torch::Tensor& m) const;

  int64_t pieces() const { return parameters_.shape_logits.size(0); }
  const LogLinearParameters& parameters() const { return parameters_; }
  // The current endpoints, as numbers.
  double lambda_0() const;
  double lambda_1() const;

 private:
  // Piece k's increment p_k and the knot values c_0 = 0, c_k = p_1 + ... + p_k, on like's device
  // and dtype (still differentiable in the logits).
  torch::Tensor increments(const torch::Tensor& like) const;
  torch::Tensor knot_values(const torch::Tensor& increments) const;
  // The piece that holds each time, as a long tensor in [0, K - 1].
  torch::Tensor piece_of(const torch::Tensor& t) const;

  LogLinearParameters parameters_;
};

}  // namespace sdegen
