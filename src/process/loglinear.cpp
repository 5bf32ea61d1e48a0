// The loglinear schedule lambda(t) = l0 + (l1 - l0) m(t), with m(t) = t or piecewise linear.
#include "sdegen/process/loglinear.h"

#include <cmath>
#include <vector>

#include "sdegen/core/check.h"

namespace sdegen {

using torch::Tensor;

namespace {

// A parameter on t's device and in t's dtype, still differentiable.
Tensor like(const Tensor& p, const Tensor& t) { return p.to(t.device(), t.scalar_type()); }

// values[index] for a long index tensor of any shape.
Tensor pick(const Tensor& values, const Tensor& index) {
  return values.index_select(0, index.reshape({-1})).view(index.sizes());
}

}  // namespace

LogLinearParameters loglinear_parameters(double lambda_0, double lambda_1, int64_t pieces) {
  SDEGEN_CHECK(pieces >= 1, "loglinear schedule needs at least 1 piece, got ", pieces);
  return {torch::tensor(lambda_0, torch::kDouble), torch::tensor(lambda_1, torch::kDouble),
          torch::zeros({pieces}, torch::kDouble)};
}

LogLinearSchedule::LogLinearSchedule(LogLinearParameters p) : parameters_(std::move(p)) {
  SDEGEN_CHECK(parameters_.lambda_0.defined() && parameters_.lambda_0.dim() == 0 &&
                   parameters_.lambda_1.defined() && parameters_.lambda_1.dim() == 0,
               "loglinear schedule: lambda_0 and lambda_1 must be 0-dim tensors");
  SDEGEN_CHECK(parameters_.shape_logits.defined() && parameters_.shape_logits.dim() == 1,
               "loglinear schedule: the shape logits must be a 1-D tensor");
  SDEGEN_CHECK(pieces() >= 1, "loglinear schedule needs at least 1 piece (knots >= 1), got ", pieces());
  SDEGEN_CHECK(lambda_0() < lambda_1(), "loglinear schedule needs lambda(0) < lambda(1), got lambda(0) = ",
               lambda_0(), " and lambda(1) = ", lambda_1());
}

double LogLinearSchedule::lambda_0() const { return parameters_.lambda_0.item<double>(); }
double LogLinearSchedule::lambda_1() const { return parameters_.lambda_1.item<double>(); }

Tensor LogLinearSchedule::increments(const Tensor& t) const {
  return torch::softmax(like(parameters_.shape_logits, t), 0);
}

Tensor LogLinearSchedule::knot_values(const Tensor& p) const {
  return torch::cat({torch::zeros({1}, p.options()), torch::cumsum(p, 0)});
}

Tensor LogLinearSchedule::piece_of(const Tensor& t) const {
  const int64_t k = pieces();
  return (t.detach() * static_cast<double>(k)).floor().clamp(0, k - 1).to(torch::kLong);
}

Tensor LogLinearSchedule::shape(const Tensor& t) const {
  if (pieces() == 1) return t;
  const Tensor p = increments(t), c = knot_values(p);
  const Tensor i = piece_of(t);
  const Tensor start = i.to(t.scalar_type()) / static_cast<double>(pieces());
  return pick(c, i) + (t - start) * static_cast<double>(pieces()) * pick(p, i);
}

Tensor LogLinearSchedule::dshape(const Tensor& t) const {
  if (pieces() == 1) return torch::ones_like(t);
  return static_cast<double>(pieces()) * pick(increments(t), piece_of(t));
}

Tensor LogLinearSchedule::inverse_shape(const Tensor& m) const {
  if (pieces() == 1) return m;
  const int64_t k = pieces();
  const Tensor p = increments(m), c = knot_values(p);
  // The piece of m: how many interior knot values c_1 .. c_{K-1} lie at or below it.
  const Tensor interior = c.slice(0, 1, k).detach().contiguous();
  const Tensor i = torch::searchsorted(interior, m.detach().reshape({-1}).contiguous(), /*out_int32=*/false,
                                       /*right=*/true)
                       .view(m.sizes());
  return (i.to(m.scalar_type()) + (m - pick(c, i)) / pick(p, i)) / static_cast<double>(k);
}

Tensor LogLinearSchedule::lambda(const Tensor& t) const {
  const Tensor l0 = like(parameters_.lambda_0, t), l1 = like(parameters_.lambda_1, t);
  return l0 + (l1 - l0) * shape(t);
}

Tensor LogLinearSchedule::dlambda(const Tensor& t) const {
  return (like(parameters_.lambda_1, t) - like(parameters_.lambda_0, t)) * dshape(t);
}

Tensor LogLinearSchedule::inverse_lambda(const Tensor& l) const {
  const Tensor l0 = like(parameters_.lambda_0, l), l1 = like(parameters_.lambda_1, l);
  return inverse_shape((l - l0) / (l1 - l0));
}

// a^2 = sigmoid(lambda), so a' = 1/2 a sigmoid(-lambda) lambda' and b' = -1/2 b sigmoid(lambda) lambda'.
Tensor LogLinearSchedule::a(const Tensor& t) const { return torch::sqrt(torch::sigmoid(lambda(t))); }
Tensor LogLinearSchedule::b(const Tensor& t) const { return torch::sqrt(torch::sigmoid(-lambda(t))); }
Tensor LogLinearSchedule::da(const Tensor& t) const {
  const Tensor l = lambda(t);
  return 0.5 * torch::sqrt(torch::sigmoid(l)) * torch::sigmoid(-l) * dlambda(t);
}
Tensor LogLinearSchedule::db(const Tensor& t) const {
  const Tensor l = lambda(t);
  return -0.5 * torch::sqrt(torch::sigmoid(-l)) * torch::sigmoid(l) * dlambda(t);
}

void LogLinearSchedule::evaluate(const double* t, int64_t n, RawCoefficients& o) const {
  torch::NoGradGuard no_grad;
  const int64_t k = pieces();
  const double l0 = lambda_0(), dl = lambda_1() - l0;
  const torch::Tensor inc = torch::softmax(parameters_.shape_logits.to(torch::kDouble), 0).contiguous();
  const double* p = inc.data_ptr<double>();
  std::vector<double> c(static_cast<size_t>(k + 1), 0.0);
  for (int64_t i = 0; i < k; ++i) c[i + 1] = c[i] + p[i];
  o.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    double m = t[i], dm = 1.0;
    if (k > 1) {
      const int64_t piece = std::min<int64_t>(k - 1, std::max<int64_t>(0, static_cast<int64_t>(std::floor(t[i] * k))));
      m = c[piece] + (t[i] - static_cast<double>(piece) / k) * k * p[piece];
      dm = k * p[piece];
    }
    const double l = l0 + dl * m, up = 1.0 / (1.0 + std::exp(-l)), down = 1.0 / (1.0 + std::exp(l));
    o.a[i] = std::sqrt(up), o.b[i] = std::sqrt(down);
    o.dlambda[i] = dl * dm;
    o.da[i] = 0.5 * o.a[i] * down * o.dlambda[i], o.db[i] = -0.5 * o.b[i] * up * o.dlambda[i];
  }
}

}  // namespace sdegen
