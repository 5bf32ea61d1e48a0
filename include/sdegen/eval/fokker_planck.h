#pragma once
// A numerical 1-D Fokker-Planck solver: the density p(x, t) of dx = f(x, t) dt + sigma(x, t) dW,
//   dp/dt = -d(f p)/dx + 1/2 d^2(sigma^2 p)/dx^2,
// on a uniform grid of cells over [x_min, x_max] with zero-flux walls, forward from t0 to t1
// (t = 0 prior, t = 1 data). sigma = 0 is the continuity equation of an ODE drift. It is the
// reference that sampled ensembles, probability-flow ODEs and the exact oracle are checked against.
//
// Scheme (finite volume; cell averages):
// - advection: MUSCL reconstruction with a slope limiter and upwind fluxes at the faces,
//   stepped by SSP-RK2 (Heun) with f at both ends of the step;
// - diffusion: flux -d(D p)/dx, D = sigma^2 / 2 at the cell centres, central differences at the
//   faces, stepped implicitly by Crank-Nicolson, with D frozen at each end of the step;
// - Strang splitting: half a diffusion step with D(t_n), the advection step, half a diffusion
//   step with D(t_n+1). Second order in dt and (away from extrema, where the limiter clips) in dx.
// Every stage moves mass only between neighbouring cells, so the total mass is preserved to
// rounding. Each stage also keeps p >= 0: the advection while the Courant number
// |f| dt / dx <= 1/2, the Crank-Nicolson steps while D dt / dx^2 <= 1 (the solver splits a
// diffusion half step into as many substeps as that takes; they cost no drift evaluations).
// The drift and diffusion are evaluated once per step, on the whole grid at once.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "sdegen/process/generative.h"

namespace sdegen {

// The most cells a grid may have: the steps grow with cells squared (the CFL bound on dt), and
// a 1-D density needs a few thousand at most.
constexpr int64_t kMaxCells = 100000;

// A uniform grid of `cells` cells over [x_min, x_max].
struct Grid1d {
  double x_min = -8.0;
  double x_max = 8.0;
  int64_t cells = 800;

  double dx() const { return (x_max - x_min) / static_cast<double>(cells); }
  std::vector<double> centres() const;  // [cells]
  std::vector<double> faces() const;    // [cells + 1], from x_min to x_max
  // Throws InvalidArgument unless 0 < cells <= kMaxCells and x_min < x_max, both finite.
  void validate() const;
};

// A coefficient evaluated on the whole grid at once: x is [n, 1] (double, CPU); the result has
// n elements ([n, 1] or [n]) or is a 0-dim tensor that applies everywhere.
using GridField = std::function<torch::Tensor(const torch::Tensor& x, double t)>;

enum class SlopeLimiter { Minmod, VanLeer };

struct FokkerPlanckOptions {
  Grid1d grid;
  // Where the density is recorded: increasing, within [t0, t1]; t0 itself may be one of them.
  // Empty means t1 only.
  std::vector<double> times;
  // Target Courant number max |f| dt / dx. A step whose Courant number at its end exceeds
  // 1.25 * cfl is retried with a smaller dt; cfl <= 0.4 thus keeps p >= 0.
  double cfl = 0.4;
  // Upper bound on dt, for accuracy in time where the drift is small (pure diffusion).
  double max_dt = 1e-2;
  // The solve throws NumericError rather than take more steps than this.
  int64_t max_steps = 1000000;
  SlopeLimiter limiter = SlopeLimiter::VanLeer;
};

struct FokkerPlanckResult {
  std::vector<double> x;                     // cell centres [cells]
  double dx = 0.0;                           // cell width
  std::vector<double> times;                 // the output times
  std::vector<std::vector<double>> density;  // density[k][i]: cell i's average at times[k]
  std::vector<double> mass;                  // sum_i density[k][i] dx, for each output time
  int64_t steps = 0;                         // accepted time steps
  int64_t rejected = 0;                      // steps retried because the Courant number grew
  int64_t evaluations = 0;                   // evaluations of the drift (and of the diffusion)
  int64_t diffusion_substeps = 0;            // Crank-Nicolson substeps (cheap: no evaluations)

  // The densities as a [times, cells] double tensor.
  torch::Tensor density_tensor() const;
};

// Solves from the cell averages p0 (cells values, finite and >= 0) at t0 to t1 >= t0.
// Throws InvalidArgument for a bad grid, bad times or a bad p0, and NumericError when the
// drift, the diffusion or the density becomes non-finite, or max_steps would be exceeded.
FokkerPlanckResult solve_fokker_planck(const GridField& drift, const GridField& diffusion,
                                       const std::vector<double>& p0, double t0, double t1,
                                       const FokkerPlanckOptions& options = {});

// The same for a generative SDE (drift(x, t), diffusion(x, t) with x of shape [n, 1]).
FokkerPlanckResult solve_fokker_planck(const GenerativeSde& sde, const std::vector<double>& p0,
                                       double t0, double t1,
                                       const FokkerPlanckOptions& options = {});

// A log density evaluated at the cell centres (x [cells, 1] -> [cells]), exponentiated and
// renormalised to mass 1 on the grid: the initial condition for a solve.
using LogDensityFn = std::function<torch::Tensor(const torch::Tensor& x)>;
std::vector<double> density_on_grid(const LogDensityFn& log_density, const Grid1d& grid);

// sum_i |p_i - q_i| dx, the L1 distance between two densities on the same grid.
double l1_distance(const std::vector<double>& p, const std::vector<double>& q, double dx);

}  // namespace sdegen
