#include "sdegen/sample/flow_time.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

// r <-> t. Grid points map back exactly (no round trip through lambda); stage points between
// them go through the schedule's inverse lambda.
class FlowClock {
 public:
  FlowClock(const AffineSchedule& s, const TimeGrid& grid) : s_(s), t_(grid) {
    for (double t : grid) r_.push_back(flow_time(s, t));
    lo_ = std::min(grid.front(), grid.back());
    hi_ = std::max(grid.front(), grid.back());
  }
  const TimeGrid& r_grid() const { return r_; }
  double t_of(double r) const {
    for (size_t i = 0; i < r_.size(); ++i)
      if (r == r_[i]) return t_[i];
    return std::clamp(s_.inverse_lambda(2.0 * (std::log(r) - std::log1p(-r))), lo_, hi_);
  }

 private:
  const AffineSchedule& s_;
  TimeGrid t_, r_;
  double lo_ = 0.0, hi_ = 1.0;
};

}  // namespace

double flow_time(const AffineSchedule& schedule, double t) {
  const double a = schedule.a(t), b = schedule.b(t);
  return a / (a + b);
}

Solution solve_in_flow_time(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                            const GridSolve& solve, const Observer& observer) {
  detail::check_grid(grid);
  const AffineSchedule& s = model.schedule();
  const FlowClock clock(s, grid);
  const TimeGrid& r = clock.r_grid();
  for (size_t i = 1; i < r.size(); ++i)
    SDEGEN_CHECK((r[i] - r[i - 1]) * (grid[i] - grid[i - 1]) > 0, "flow time a / (a + b) of the '", s.name(),
                 "' schedule does not move with t between t = ", grid[i - 1], " and t = ", grid[i], " (r = ",
                 r[i - 1], " and ", r[i], "); use fewer steps or step in schedule time");
  const auto scale_at = [&](double t) { return s.a(t) + s.b(t); };
  // y_hat - eps_hat from the v-prediction, whose conversions to y_hat and eps_hat divide by
  // a^2 + b^2 only: finite at both ends, also where b' is infinite (vp at t = 1), where the
  // velocity form [(a + b) v - (a' + b') x] / (a' b - a b') is inf / inf.
  const VectorField field = [&](double rr, const torch::Tensor& xb) {
    const double t = clock.t_of(rr);
    const double a = s.a(t), b = s.b(t);
    const torch::Tensor x = (a + b) * xb;
    const torch::Tensor v = model.predict(x, t, Prediction::V);
    return ((a - b) * x - (a + b) * v) / (a * a + b * b);
  };
  Observer seen;
  if (observer)
    seen = [&](double rr, const torch::Tensor& xb) {
      const double t = clock.t_of(rr);
      observer(t, scale_at(t) * xb);
    };
  Solution sol = solve(field, x0 / scale_at(grid.front()), r, seen);
  sol.t = clock.t_of(sol.t);
  sol.x = scale_at(sol.t) * sol.x;
  return sol;
}

}  // namespace sdegen
