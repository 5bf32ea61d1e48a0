// Fixed-step Runge-Kutta on raw buffers, through each stepper's Butcher tableau.
#include <cmath>
#include <cstring>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"

namespace sdegen {

ButcherTableau butcher_tableau(const std::string& stepper) {
  check_name("ode solver", stepper, fixed_ode_solver_names());
  if (stepper == "euler") return {{{}}, {1.0}, {0.0}};
  if (stepper == "midpoint") return {{{}, {0.5}}, {0.0, 1.0}, {0.0, 0.5}};
  if (stepper == "heun") return {{{}, {1.0}}, {0.5, 0.5}, {0.0, 1.0}};
  return {{{}, {0.5}, {0.0, 0.5}, {0.0, 0.0, 1.0}}, {1.0 / 6, 1.0 / 3, 1.0 / 3, 1.0 / 6}, {0.0, 0.5, 0.5, 1.0}};
}

Solution solve_ode_raw(const RawVectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                       const std::string& stepper, const Observer& observer) {
  detail::check_initial_state(x0);
  detail::check_grid(grid);
  SDEGEN_CHECK(f != nullptr, "solve_ode_raw needs a vector field");
  SDEGEN_CHECK(is_cpu_double(x0) && x0.dim() == 2,
               "solve_ode_raw needs a float64 CPU state of shape [n, d], got ", x0.scalar_type(), " ", x0.sizes());
  const ButcherTableau tab = butcher_tableau(stepper);
  const int64_t n = x0.size(0), nd = x0.numel(), s = tab.stages();
  torch::Tensor state = x0.contiguous().clone(), next = torch::empty_like(state), stage = torch::empty_like(state);
  std::vector<double> k(static_cast<size_t>(s * nd));
  auto finite = [nd](const double* v) {
    for (int64_t e = 0; e < nd; ++e)
      if (!std::isfinite(v[e])) return false;
    return true;
  };
  Solution sol;
  sol.t = grid.front();
  // Observers may keep what they are given: a copy, since the buffers are reused.
  if (observer) observer(sol.t, state.clone());
  for (size_t g = 0; g + 1 < grid.size(); ++g) {
    const double t = grid[g], h = grid[g + 1] - t;
    const double* x = state.data_ptr<double>();
    double* X = stage.data_ptr<double>();
    double* out = next.data_ptr<double>();
    std::memcpy(out, x, sizeof(double) * static_cast<size_t>(nd));
    for (int64_t i = 0; i < s; ++i) {
      const double* input = x;
      if (i > 0) {
        std::memcpy(X, x, sizeof(double) * static_cast<size_t>(nd));
        for (int64_t j = 0; j < i; ++j) {
          const double w = h * tab.a[i][j];
          if (w != 0.0)
            for (int64_t e = 0; e < nd; ++e) X[e] += w * k[j * nd + e];
        }
        input = X;
      }
      f(t + tab.c[i] * h, input, n, k.data() + i * nd);
      ++sol.nfe;
      const double w = h * tab.b[i];
      if (w != 0.0)
        for (int64_t e = 0; e < nd; ++e) out[e] += w * k[i * nd + e];
    }
    if (!finite(out)) {
      sol.x = state;
      sol.status = SolveStatus::NonFinite;
      sol.message = detail::concat("non-finite state in the step from t = ", t, " to t = ", grid[g + 1],
                                   "; check the vector field there or use a finer grid");
      return sol;
    }
    std::swap(state, next);
    sol.t = grid[g + 1];
    ++sol.steps;
    if (observer) observer(sol.t, state.clone());
  }
  sol.x = state;
  return sol;
}

}  // namespace sdegen
