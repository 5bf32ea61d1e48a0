// The grid, the initial density and the comparisons of the Fokker-Planck solver
// (eval/fokker_planck.h); the time stepping is in fokker_planck.cpp.
#include <cmath>
#include <limits>

#include "sdegen/core/check.h"
#include "sdegen/eval/fokker_planck.h"

namespace sdegen {

void Grid1d::validate() const {
  SDEGEN_CHECK(cells > 0 && cells <= kMaxCells, "Fokker-Planck grid needs cells in [1, ", kMaxCells,
               "], got ", cells, " (a 1-D density is resolved with far fewer; memory and steps grow with cells)");
  SDEGEN_CHECK(std::isfinite(x_min) && std::isfinite(x_max) && x_min < x_max,
               "Fokker-Planck grid needs finite x_min < x_max, got [", x_min, ", ", x_max, "]");
}

std::vector<double> Grid1d::centres() const {
  std::vector<double> x(static_cast<size_t>(cells));
  for (int64_t i = 0; i < cells; ++i) x[static_cast<size_t>(i)] = x_min + (i + 0.5) * dx();
  return x;
}

std::vector<double> Grid1d::faces() const {
  std::vector<double> x(static_cast<size_t>(cells) + 1);
  for (int64_t i = 0; i <= cells; ++i) x[static_cast<size_t>(i)] = x_min + i * dx();
  x.back() = x_max;
  return x;
}

torch::Tensor FokkerPlanckResult::density_tensor() const {
  const auto n = static_cast<int64_t>(x.size());
  torch::Tensor out = torch::empty({static_cast<int64_t>(density.size()), n}, torch::kDouble);
  auto acc = out.accessor<double, 2>();
  for (size_t k = 0; k < density.size(); ++k)
    for (int64_t i = 0; i < n; ++i)
      acc[static_cast<int64_t>(k)][i] = density[k][static_cast<size_t>(i)];
  return out;
}

std::vector<double> density_on_grid(const LogDensityFn& log_density, const Grid1d& grid) {
  grid.validate();
  SDEGEN_CHECK(log_density != nullptr, "density_on_grid needs a log-density function");
  const std::vector<double> centres = grid.centres();
  const torch::Tensor x = torch::tensor(centres, torch::kDouble).reshape({grid.cells, 1});
  const torch::Tensor lp = log_density(x).to(torch::kDouble).contiguous().reshape({-1});
  SDEGEN_CHECK(lp.numel() == grid.cells, "density_on_grid: the log density returned ", lp.numel(),
               " values for ", grid.cells, " cells");
  SDEGEN_CHECK(!torch::isnan(lp).any().item<bool>() && !(lp == INFINITY).any().item<bool>(),
               "density_on_grid: the log density is NaN or +inf on the grid");
  const double top = lp.max().item<double>();
  SDEGEN_CHECK(std::isfinite(top), "density_on_grid: the density is zero on the whole grid [",
               grid.x_min, ", ", grid.x_max, "]");
  // Subtracting the maximum keeps exp from underflowing everywhere for very peaked densities.
  const torch::Tensor p = torch::exp(lp - top);
  const double mass = p.sum().item<double>() * grid.dx();
  std::vector<double> out(static_cast<size_t>(grid.cells));
  auto acc = p.accessor<double, 1>();
  for (int64_t i = 0; i < grid.cells; ++i) out[static_cast<size_t>(i)] = acc[i] / mass;
  return out;
}

double l1_distance(const std::vector<double>& p, const std::vector<double>& q, double dx) {
  SDEGEN_CHECK(p.size() == q.size(), "l1_distance: densities of different lengths ", p.size(),
               " and ", q.size());
  SDEGEN_CHECK(std::isfinite(dx) && dx > 0, "l1_distance: cell width must be > 0, got ", dx);
  double sum = 0.0;
  for (size_t i = 0; i < p.size(); ++i) sum += std::abs(p[i] - q[i]);
  return sum * dx;
}

}  // namespace sdegen
