#pragma once
// SDE solvers for dx = f(t, x) dt + sigma(t, x) dW on a time grid, with Brownian increments
// drawn from torch's default generator (seed it with torch::manual_seed).
#include <string>
#include <vector>

#include "sdegen/core/time_grid.h"
#include "sdegen/solver/solution.h"

namespace sdegen {

// Euler-Maruyama: x += f dt + sigma sqrt(|dt|) z. Strong order 1/2, weak order 1.
Solution solve_sde_euler_maruyama(const VectorField& drift, const DiffusionField& diffusion,
                                  const torch::Tensor& x0, const TimeGrid& grid,
                                  const Observer& observer = {});

struct PcOptions {
  std::string predictor = "euler-maruyama";  // or reverse-diffusion (sample/sampler.h builds it)
  int corrector_steps = 1;   // Langevin steps after each predictor step
  double snr = 0.16;         // target signal-to-noise ratio of the Langevin step (Song et al.)
  bool final_corrector = false;  // also correct after the last step
};

// The predictors of pc: euler-maruyama (on any drift and diffusion) and reverse-diffusion (on a
// schedule's discretised forward chain, so only sample() with a marginal field can build it).
std::vector<std::string> pc_predictor_names();

// One predictor step from (t, x) to t_next; adds its evaluations to nfe.
using PredictorStep =
    std::function<torch::Tensor(double t, double t_next, const torch::Tensor& x, int64_t& nfe)>;

// Predictor-corrector: an Euler-Maruyama predictor followed by Langevin corrector steps
// x += eps s(t, x) + sqrt(2 eps) z, with eps = 2 (snr |z| / |s|)^2 and the row norms averaged
// over the batch (per-row steps inflate the variance in low dimension); score is the
// marginal score d log p_t / dx at the time reached.
Solution solve_sde_pc(const VectorField& drift, const DiffusionField& diffusion,
                      const VectorField& score, const torch::Tensor& x0, const TimeGrid& grid,
                      const PcOptions& options = {}, const Observer& observer = {});

// The same corrector after any predictor step (options.predictor names it, for the messages).
Solution solve_pc(const PredictorStep& predictor, const VectorField& score, const torch::Tensor& x0,
                  const TimeGrid& grid, const PcOptions& options = {}, const Observer& observer = {});

}  // namespace sdegen
