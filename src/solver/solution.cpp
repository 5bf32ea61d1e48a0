#include "sdegen/solver/solution.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

std::string status_name(SolveStatus status) {
  switch (status) {
    case SolveStatus::Success: return "success";
    case SolveStatus::NonFinite: return "non-finite";
    case SolveStatus::StepSizeUnderflow: return "step size underflow";
    case SolveStatus::MaxStepsReached: return "maximum steps reached";
  }
  return "unknown";
}

const Solution& Solution::check() const {
  if (!ok()) throw NumericError(message.empty() ? status_name(status) : message);
  return *this;
}

namespace detail {

void check_initial_state(const torch::Tensor& x0) {
  SDEGEN_CHECK(x0.defined(), "initial state is undefined; pass a tensor of shape [batch, ...]");
  SDEGEN_CHECK(x0.dim() >= 1 && x0.numel() > 0,
               "initial state must have shape [batch, ...] with at least one element, got shape ",
               x0.sizes());
  SDEGEN_CHECK(x0.is_floating_point(), "initial state must be a floating-point tensor, got ",
               x0.dtype());
  SDEGEN_CHECK(all_finite(x0), "initial state contains non-finite values");
}

void check_grid(const TimeGrid& grid) {
  SDEGEN_CHECK(grid.size() >= 2, "time grid needs at least two points, got ", grid.size());
  for (size_t i = 0; i < grid.size(); ++i)
    SDEGEN_CHECK(std::isfinite(grid[i]), "time grid point ", i, " is not finite: ", grid[i]);
  // One direction for the whole grid: the sign of the first step.
  const bool increasing = grid[1] > grid[0];
  for (size_t i = 1; i < grid.size(); ++i) {
    const bool ok = increasing ? grid[i] > grid[i - 1] : grid[i] < grid[i - 1];
    SDEGEN_CHECK(ok, "time grid must be strictly ", increasing ? "increasing" : "decreasing",
                 ", but point ", i, " is ", grid[i], " after ", grid[i - 1]);
  }
}

torch::Tensor evaluate(const VectorField& f, double t, const torch::Tensor& x) {
  torch::Tensor out = f(t, x);
  SDEGEN_CHECK(out.defined(), "vector field returned an undefined tensor at t = ", t);
  SDEGEN_CHECK(out.sizes() == x.sizes(), "vector field returned shape ", out.sizes(),
               " at t = ", t, " for a state of shape ", x.sizes());
  return out;
}

Solution march(const TimeGrid& grid, const torch::Tensor& x0, const GridStep& step,
               const Observer& observer) {
  check_initial_state(x0);
  check_grid(grid);
  Solution sol;
  sol.x = x0;
  sol.t = grid.front();
  if (observer) observer(sol.t, sol.x);
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    torch::Tensor next = step(grid[i], grid[i + 1], sol.x, sol.nfe);
    if (!all_finite(next)) {
      // Keep the last finite state so the caller can inspect where things went wrong.
      sol.status = SolveStatus::NonFinite;
      sol.message = concat("non-finite state in the step from t = ", grid[i], " to t = ",
                           grid[i + 1], "; check the vector field there or use a finer grid");
      return sol;
    }
    sol.x = next;
    sol.t = grid[i + 1];
    ++sol.steps;
    if (observer) observer(sol.t, sol.x);
  }
  return sol;
}

}  // namespace detail
}  // namespace sdegen
