#pragma once
// Sampling a generative model: from x0 ~ prior at t0 forward to t1 with a solver chosen by name.
//   ODE (probability flow dx/dt = v):   euler, midpoint, heun, rk4, dopri5
//   SDE (dx = [v + sigma^2/2 s] dt + sigma dW):  euler-maruyama, pc
//   diffusion multistep on the data prediction:  ddim, dpm++2m
// The model is anything that gives predictions (a MarginalField): a trained network or the
// exact oracle.
#include <string>
#include <vector>

#include "sdegen/core/time_grid.h"
#include "sdegen/process/generative.h"
#include "sdegen/solver/ode.h"
#include "sdegen/solver/sde.h"

namespace sdegen {

struct SamplerOptions {
  std::string solver = "heun";
  int steps = 50;                 // fixed-step solvers: number of steps
  std::string grid;               // uniform | lambda | edm; empty: lambda for ddim and dpm++2m,
                                  // uniform otherwise
  double t0 = 0.0;
  double t1 = 1.0;
  double rho = 7.0;               // edm grid
  DiffusionSpec diffusion;        // sigma of the SDE solvers; must be zero for ODE solvers
  AdaptiveOptions adaptive;       // dopri5
  PcOptions pc;                   // pc
};

std::vector<std::string> sampler_names();
std::vector<std::string> ode_sampler_names();  // the deterministic ones (sigma must be 0)

// Throws InvalidArgument for an unknown solver (listing the valid ones), a bad grid or step
// count, or a nonzero diffusion given to a deterministic solver. Numeric failure is reported in
// the Solution's status.
Solution sample(const MarginalField& model, const torch::Tensor& x0, const SamplerOptions& options,
                const Observer& observer = {});

// Samples a generative SDE with a free drift (a model without a marginal field): the ODE
// solvers integrate its drift (its diffusion must be zero), euler-maruyama its drift and
// diffusion; on a uniform grid. pc, ddim and dpm++2m need predictions and are refused.
Solution sample_sde(const GenerativeSde& sde, const torch::Tensor& x0, const SamplerOptions& options,
                    const Observer& observer = {});

// The probability-flow ODE's vector field dx/dt = v(x, t) of a model, as a solver callback.
VectorField probability_flow(const MarginalField& model);

// The grid the options describe, for the model's schedule.
TimeGrid sampler_grid(const AffineSchedule& schedule, const SamplerOptions& options);

// DDIM (deterministic) and DPM-Solver++(2M) on a grid, from the model's data prediction.
Solution solve_ddim(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer = {});
Solution solve_dpmpp_2m(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                        const Observer& observer = {});

}  // namespace sdegen
