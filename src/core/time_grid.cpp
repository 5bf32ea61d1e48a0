#include "sdegen/core/time_grid.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {

std::vector<std::string> grid_kind_names() { return {"uniform", "lambda", "edm", "flow"}; }

GridKind grid_kind_from_name(const std::string& name) {
  check_name("time grid", name, grid_kind_names());
  if (name == "lambda") return GridKind::Lambda;
  if (name == "edm") return GridKind::Edm;
  if (name == "flow") return GridKind::Flow;
  return GridKind::Uniform;
}

namespace {

// Only infinite end points (a = 0 or b = 0) are replaced; a finite range is used as it is.
double clip(double lam, double c) { return std::isfinite(lam) ? lam : std::clamp(lam, -c, c); }

// r = sigmoid(lambda / 2) and back; r = 0 and r = 1 are lambda = -inf and +inf.
double flow_time(double lam) { return 1.0 / (1.0 + std::exp(-lam / 2)); }
double flow_lambda(double r) { return 2.0 * (std::log(r) - std::log1p(-r)); }

}  // namespace

TimeGrid make_time_grid(int n_steps, const GridOptions& o, const LambdaMap* map) {
  SDEGEN_CHECK(n_steps > 0, "number of steps must be positive, got ", n_steps);
  SDEGEN_CHECK(o.t0 < o.t1, "time grid needs t0 < t1, got t0 = ", o.t0, ", t1 = ", o.t1);
  TimeGrid grid(static_cast<size_t>(n_steps) + 1);
  const double n = n_steps;
  if (o.kind == GridKind::Uniform) {
    for (int i = 0; i <= n_steps; ++i) grid[i] = o.t0 + (o.t1 - o.t0) * (i / n);
  } else if (o.kind == GridKind::Flow) {
    SDEGEN_CHECK(map && map->lambda && map->inverse, "a flow time grid needs the schedule's lambda and its inverse");
    const double lo = flow_time(map->lambda(o.t0)), hi = flow_time(map->lambda(o.t1));
    SDEGEN_CHECK(lo < hi, "flow time a / (a + b) must increase over the grid, got ", lo, " at t0 and ", hi, " at t1");
    for (int i = 0; i <= n_steps; ++i)
      grid[i] = std::clamp(map->inverse(flow_lambda(lo + (hi - lo) * (i / n))), o.t0, o.t1);
  } else {
    SDEGEN_CHECK(map && map->lambda && map->inverse,
                 "a lambda or edm time grid needs the schedule's lambda and its inverse");
    const double lo = clip(map->lambda(o.t0), o.lambda_clip);
    const double hi = clip(map->lambda(o.t1), o.lambda_clip);
    SDEGEN_CHECK(lo < hi, "lambda must increase over the grid, got lambda(t0) = ", lo,
                 ", lambda(t1) = ", hi);
    for (int i = 0; i <= n_steps; ++i) {
      const double u = i / n;
      double lam;
      if (o.kind == GridKind::Lambda) {
        lam = lo + u * (hi - lo);
      } else {
        SDEGEN_CHECK(o.rho > 0, "edm grid needs rho > 0, got ", o.rho);
        const double smax = std::exp(-lo / 2), smin = std::exp(-hi / 2);
        const double r = 1.0 / o.rho;
        const double s = std::pow(std::pow(smax, r) + u * (std::pow(smin, r) - std::pow(smax, r)), o.rho);
        lam = -2.0 * std::log(s);
      }
      grid[i] = std::clamp(map->inverse(lam), o.t0, o.t1);
    }
  }
  grid.front() = o.t0;
  grid.back() = o.t1;
  // Round-off in the inverse must not produce a non-increasing grid.
  for (size_t i = 1; i < grid.size(); ++i)
    SDEGEN_CHECK(grid[i] > grid[i - 1], "time grid is not strictly increasing at step ", i,
                 " (", grid[i - 1], " -> ", grid[i], "); use fewer steps or another grid");
  return grid;
}

}  // namespace sdegen
