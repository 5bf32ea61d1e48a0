// Diffusion multistep solvers on the data prediction y_hat(x, t). With l = lambda / 2 = log(a / b)
// and h = l_{i+1} - l_i, the exact solution of the probability-flow ODE with y_hat held fixed is
//   x_{i+1} = (b_{i+1} / b_i) x_i + a_{i+1} (1 - e^{-h}) y_hat,
// which is DDIM; DPM-Solver++(2M) replaces y_hat by a linear extrapolation in l from the
// previous step. e^{-h} = (a_i b_{i+1}) / (b_i a_{i+1}) is formed directly, so the ends where
// a = 0 (l = -inf) or b = 0 (l = +inf) need no special case; the second-order correction is
// skipped wherever a step size in l is infinite.
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {
namespace {

struct GridCoefficients {
  std::vector<double> a, b, l;
};

GridCoefficients grid_coefficients(const AffineSchedule& s, const TimeGrid& grid) {
  GridCoefficients c;
  for (double t : grid) {
    c.a.push_back(s.a(t));
    c.b.push_back(s.b(t));
    c.l.push_back(std::log(c.a.back()) - std::log(c.b.back()));
  }
  return c;
}

// The grid walk, finiteness check and observation are the fixed-grid solvers' own
// (detail::march); the step carries the previous data prediction for the second-order update.
Solution multistep(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                   bool second_order, const Observer& observer) {
  detail::check_grid(grid);
  SDEGEN_CHECK(grid[1] > grid[0], "ddim and dpm++2m need an increasing grid, got ", grid[0], " then ", grid[1]);
  const GridCoefficients c = grid_coefficients(model.schedule(), grid);
  size_t i = 0;
  torch::Tensor y_prev;
  double h_prev = 0.0;
  const detail::GridStep step = [&](double t, double, const torch::Tensor& x, int64_t& nfe) {
    SDEGEN_CHECK(c.b[i] > 0, "ddim/dpm++2m cannot step from t = ", t, " where b(t) = 0");
    const torch::Tensor y = model.predict(x, t, Prediction::Data);
    ++nfe;
    const double h = c.l[i + 1] - c.l[i];
    const double exp_neg_h = (c.a[i] * c.b[i + 1]) / (c.b[i] * c.a[i + 1]);
    torch::Tensor d = y;
    if (second_order && y_prev.defined() && std::isfinite(h) && std::isfinite(h_prev)) {
      const double r = h_prev / h;
      d = (1.0 + 0.5 / r) * y - (0.5 / r) * y_prev;
    }
    const torch::Tensor next = (c.b[i + 1] / c.b[i]) * x + c.a[i + 1] * (1.0 - exp_neg_h) * d;
    y_prev = y;
    h_prev = h;
    ++i;
    return next;
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace

Solution solve_ddim(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer) {
  return multistep(model, x0, grid, false, observer);
}

Solution solve_dpmpp_2m(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                        const Observer& observer) {
  return multistep(model, x0, grid, true, observer);
}

}  // namespace sdegen
