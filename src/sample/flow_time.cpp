#include "sdegen/sample/flow_time.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

struct Scalars {
  double a, b, da, db;
  double scale() const { return a + b; }
  double dscale() const { return da + db; }
  double drdt_times_scale2() const { return da * b - a * db; }  // dr/dt (a + b)^2
};

Scalars scalars(const AffineSchedule& s, double t) {
  const ScheduleCoefficients c = s.coefficients(torch::tensor(t, torch::kDouble));
  return {c.a.item<double>(), c.b.item<double>(), c.da.item<double>(), c.db.item<double>()};
}

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
  for (double t : grid) {
    const Scalars c = scalars(s, t);
    SDEGEN_CHECK(std::isfinite(c.drdt_times_scale2()) && c.drdt_times_scale2() > 0 && c.scale() > 0,
                 "flow time needs a finite, positive dr/dt, but the '", s.name(), "' schedule at t = ", t,
                 " has a'b - ab' = ", c.drdt_times_scale2(), "; end the grid short of b = 0 (t1 < 1)");
  }
  const FlowClock clock(s, grid);
  const VectorField field = [&](double r, const torch::Tensor& xb) {
    const double t = clock.t_of(r);
    const Scalars c = scalars(s, t);
    const torch::Tensor x = c.scale() * xb;
    const torch::Tensor v = model.predict(x, t, Prediction::Velocity);
    return (c.scale() * v - c.dscale() * x) / c.drdt_times_scale2();
  };
  const auto scale_at = [&](double r) { return scalars(s, clock.t_of(r)).scale(); };
  Observer seen;
  if (observer) seen = [&](double r, const torch::Tensor& xb) { observer(clock.t_of(r), scale_at(r) * xb); };
  Solution sol = solve(field, x0 / scale_at(clock.r_grid().front()), clock.r_grid(), seen);
  sol.x = scale_at(sol.t) * sol.x;
  sol.t = clock.t_of(sol.t);
  return sol;
}

}  // namespace sdegen
