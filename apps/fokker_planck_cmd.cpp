// sdegen fokker-planck: the density of the oracle's generative SDE over time, from the 1-D
// Fokker-Planck equation, beside the exact marginal it should reproduce.
#include <fmt/core.h>

#include <cmath>
#include <sstream>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/fokker_planck.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/io/csv.h"

namespace sdegen::app {
namespace {

struct FpArgs {
  std::string data = "gmm1d";
  std::string schedule = "linear";
  std::string sigma = "1";
  std::vector<double> times{0.0, 0.25, 0.5, 0.75, 0.9};
  double x_min = NAN, x_max = NAN;
  int64_t cells = 800;
  FokkerPlanckOptions solver;  // its cfl, max_dt and max_steps
  std::string out = "fokker_planck.csv";
};

// A range holding the marginals at every output time: 6 standard deviations past the
// outermost component.
std::pair<double, double> auto_range(const GmmOracle& oracle, const std::vector<double>& times) {
  double lo = INFINITY, hi = -INFINITY;
  for (double t : times) {
    const GaussianMixture m = oracle.marginal(t);
    lo = std::min(lo, (m.means - 6.0 * m.stds).min().item<double>());
    hi = std::max(hi, (m.means + 6.0 * m.stds).max().item<double>());
  }
  return {lo, hi};
}

void run(const FpArgs& a) {
  const DensityPtr data = make_density(a.data);
  SDEGEN_CHECK(data->mixture() != nullptr && data->dim() == 1,
               "fokker-planck needs 1-D Gaussian-mixture data (its marginals are exact); '", a.data,
               "' is ", data->dim(), "-D", data->mixture() ? "" : " and not a mixture");
  SDEGEN_CHECK(!a.times.empty(), "--times needs at least one time");
  for (size_t i = 0; i < a.times.size(); ++i) {
    SDEGEN_CHECK(a.times[i] >= 0 && a.times[i] <= 1, "--times must lie in [0, 1], got ", a.times[i]);
    SDEGEN_CHECK(i == 0 || a.times[i] > a.times[i - 1], "--times must increase, got ", a.times[i - 1],
                 " then ", a.times[i]);
  }
  auto oracle = std::make_shared<GmmOracle>(*data->mixture(), make_schedule(a.schedule));
  const MarginalSde sde(oracle, parse_diffusion(a.sigma));

  const double t0 = a.times.front() > 0 ? 0.0 : a.times.front();
  std::vector<double> all_times{t0};
  all_times.insert(all_times.end(), a.times.begin(), a.times.end());
  FokkerPlanckOptions o = a.solver;
  const auto [lo, hi] = auto_range(*oracle, all_times);
  o.grid.x_min = std::isnan(a.x_min) ? lo : a.x_min;
  o.grid.x_max = std::isnan(a.x_max) ? hi : a.x_max;
  o.grid.cells = a.cells;
  o.times = a.times;
  const std::vector<double> p0 = density_on_grid(
      [&](const torch::Tensor& x) { return oracle->log_prob(x, t0); }, o.grid);
  const FokkerPlanckResult r = solve_fokker_planck(sde, p0, t0, a.times.back(), o);

  // Long format, one row per (time, cell): easy to plot and to filter.
  std::vector<std::vector<double>> rows;
  const torch::Tensor x = torch::tensor(r.x, torch::kDouble).unsqueeze(1);
  fmt::print("Fokker-Planck for '{}' under {} with sigma = {}: grid [{:.3g}, {:.3g}], {} cells, {} steps\n",
             a.data, a.schedule, a.sigma, o.grid.x_min, o.grid.x_max, o.grid.cells, r.steps);
  fmt::print("{:>8}  {:>12}  {:>10}\n", "t", "L1 to exact", "mass");
  torch::Tensor table = torch::empty({static_cast<int64_t>(r.times.size()) * o.grid.cells, 4}, torch::kDouble);
  for (size_t k = 0; k < r.times.size(); ++k) {
    const std::vector<double> exact = density_on_grid(
        [&](const torch::Tensor& xx) { return oracle->log_prob(xx, r.times[k]); }, o.grid);
    fmt::print("{:>8.3f}  {:>12.3e}  {:>10.6f}\n", r.times[k], l1_distance(r.density[k], exact, r.dx), r.mass[k]);
    const int64_t base = static_cast<int64_t>(k) * o.grid.cells;
    table.narrow(0, base, o.grid.cells).select(1, 0).fill_(r.times[k]);
    table.narrow(0, base, o.grid.cells).select(1, 1).copy_(x.squeeze(1));
    table.narrow(0, base, o.grid.cells).select(1, 2).copy_(torch::tensor(r.density[k], torch::kDouble));
    table.narrow(0, base, o.grid.cells).select(1, 3).copy_(torch::tensor(exact, torch::kDouble));
  }
  write_csv(a.out, table, {"t", "x", "density", "exact"});
  fmt::print("wrote {}\n", a.out);
}

}  // namespace

void register_fokker_planck(CLI::App& app) {
  auto args = std::make_shared<FpArgs>();
  CLI::App* cmd = app.add_subcommand(
      "fokker-planck", "Density of the oracle's SDE over time from the 1-D Fokker-Planck equation");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--data", args->data, "1-D Gaussian-mixture data: gmm1d or a mixture JSON file");
  cmd->add_option("--schedule", args->schedule, "Affine schedule")->check(one_of(schedule_names(), "schedule"));
  cmd->add_option("--sigma", args->sigma,
                  "Diffusion: a number, 'reverse' (sigma^2 = b^2 lambda') or 'reverse:SCALE'; 0 is the "
                  "probability-flow ODE");
  cmd->add_option("--times", args->times, "Output times in [0, 1], increasing; the solve starts at 0")
      ->delimiter(',');
  cmd->add_option("--x-min", args->x_min, "Left end of the grid (default: 6 std past the marginals)");
  cmd->add_option("--x-max", args->x_max, "Right end of the grid (default: 6 std past the marginals)");
  cmd->add_option("--cells", args->cells, "Grid cells (at most " + std::to_string(kMaxCells) + ")")
      ->check(positive());
  cmd->add_option("--cfl", args->solver.cfl, "Target Courant number max|f| dt / dx (<= 0.4 keeps the density >= 0)")
      ->check(positive());
  cmd->add_option("--max-dt", args->solver.max_dt, "Largest time step")->check(positive());
  cmd->add_option("--max-steps", args->solver.max_steps, "Step limit of the solve")->check(positive());
  cmd->add_option("--out", args->out, "Output CSV with columns t, x, density, exact");
  cmd->callback([args] { run(*args); });
}

}  // namespace sdegen::app
