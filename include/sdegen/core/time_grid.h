#pragma once
// Time grids for fixed-step solvers: increasing sequences from t0 to t1 (t = 0 prior,
// t = 1 data). Grids that follow the noise level need the schedule's lambda(t) = log(a^2/b^2)
// and its inverse; they are passed as plain functions so that core depends on nothing else
// (process/schedule.h has the convenience overload that takes a schedule).
#include <functional>
#include <string>
#include <vector>

namespace sdegen {

using TimeGrid = std::vector<double>;

enum class GridKind { Uniform, Lambda, Edm, Flow };

// "uniform", "lambda", "edm", "flow"; an unknown name lists the valid ones.
GridKind grid_kind_from_name(const std::string& name);
std::vector<std::string> grid_kind_names();

struct LambdaMap {
  std::function<double(double)> lambda;   // t -> lambda(t), increasing, may be +-inf at the ends
  std::function<double(double)> inverse;  // lambda -> t
};

struct GridOptions {
  GridKind kind = GridKind::Uniform;
  double t0 = 0.0;
  double t1 = 1.0;
  double rho = 7.0;            // EDM spacing exponent
  double lambda_clip = 10.0;   // infinite lambda at an end point is replaced by +-lambda_clip
};

// n_steps + 1 increasing points, the first exactly t0 and the last exactly t1.
// Uniform needs no map; Lambda spaces lambda uniformly; Edm spaces the noise level
// sigma = exp(-lambda/2) as (sigma_max^(1/rho) + u (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho;
// Flow spaces the flow time r = a / (a + b) = sigmoid(lambda / 2) uniformly: the linear
// schedule's own time, so every affine schedule gets the grid that is uniform for flow matching
// (finite at both ends, so it needs no clipping).
TimeGrid make_time_grid(int n_steps, const GridOptions& options, const LambdaMap* map = nullptr);

}  // namespace sdegen
