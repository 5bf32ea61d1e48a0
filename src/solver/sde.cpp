// Euler-Maruyama and the predictor-corrector sampler of Song et al. (2021): both walk a fixed
// grid through detail::march, so validation, observation and non-finite handling are shared
// with the ODE driver.
#include "sdegen/solver/sde.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {
namespace {

using detail::evaluate;

// True when a tensor of shape `from` broadcasts to exactly `to` (numpy rules, `to` unchanged).
bool broadcasts_to(at::IntArrayRef from, at::IntArrayRef to) {
  if (from.size() > to.size()) return false;
  const size_t offset = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i)
    if (from[i] != 1 && from[i] != to[offset + i]) return false;
  return true;
}

// sigma(t, x) z with z ~ N(0, I); refuses a sigma that would not broadcast to x's shape.
torch::Tensor diffusion_noise(const DiffusionField& diffusion, double t, const torch::Tensor& x) {
  const torch::Tensor sigma = diffusion(t, x);
  SDEGEN_CHECK(sigma.defined(), "diffusion returned an undefined tensor at t = ", t);
  SDEGEN_CHECK(broadcasts_to(sigma.sizes(), x.sizes()), "diffusion of shape ", sigma.sizes(),
               " at t = ", t, " does not broadcast to the state's shape ", x.sizes());
  return sigma * torch::randn_like(x);
}

// x + f dt + sigma sqrt(|dt|) z; |dt| because Brownian increments have variance |dt| whichever
// way the grid runs.
torch::Tensor euler_maruyama_step(const VectorField& drift, const DiffusionField& diffusion,
                                  double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
  const double dt = t_next - t;
  const torch::Tensor f = evaluate(drift, t, x);
  ++nfe;
  return x + f * dt + diffusion_noise(diffusion, t, x) * std::sqrt(std::abs(dt));
}

// Euclidean norm of each row over all non-batch dimensions: [batch, ...] -> [batch].
torch::Tensor row_norm(const torch::Tensor& x) { return x.reshape({x.size(0), -1}).norm(2, 1); }

// One Langevin step x + eps s + sqrt(2 eps) z towards p_t, with one step size for the batch:
// eps = 2 (snr |z| / |s|)^2 where |.| is the per-row norm averaged over the batch (Song et al.).
// Per-row step sizes look more adaptive but are wrong in low dimension: rows that happen to sit
// near a mode (small |s|) get huge steps, and on a Gaussian the stationary variance rises by
// about 4 / (d - 2), without bound for d <= 2.
torch::Tensor langevin_step(const VectorField& score, double t, const torch::Tensor& x,
                            double snr, int64_t& nfe) {
  const torch::Tensor s = evaluate(score, t, x);
  ++nfe;
  const torch::Tensor z = torch::randn_like(x);
  const double s_norm = row_norm(s).mean().item<double>();
  if (!(s_norm > 0)) return x;  // a zero score gives no direction and an infinite step
  const double eps = 2 * std::pow(snr * row_norm(z).mean().item<double>() / s_norm, 2);
  return x + eps * s + std::sqrt(2 * eps) * z;
}

void check_fields(const VectorField& drift, const DiffusionField& diffusion) {
  SDEGEN_CHECK(static_cast<bool>(drift), "SDE solve: the drift is empty");
  SDEGEN_CHECK(static_cast<bool>(diffusion), "SDE solve: the diffusion is empty");
}

}  // namespace

Solution solve_sde_euler_maruyama(const VectorField& drift, const DiffusionField& diffusion,
                                  const torch::Tensor& x0, const TimeGrid& grid,
                                  const Observer& observer) {
  check_fields(drift, diffusion);
  const auto step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    return euler_maruyama_step(drift, diffusion, t, t_next, x, nfe);
  };
  return detail::march(grid, x0, step, observer);
}

std::vector<std::string> pc_predictor_names() { return {"euler-maruyama", "reverse-diffusion"}; }

Solution solve_sde_pc(const VectorField& drift, const DiffusionField& diffusion,
                      const VectorField& score, const torch::Tensor& x0, const TimeGrid& grid,
                      const PcOptions& options, const Observer& observer) {
  check_fields(drift, diffusion);
  check_name("pc predictor", options.predictor, pc_predictor_names());
  SDEGEN_CHECK(options.predictor == "euler-maruyama", "the pc predictor '", options.predictor,
               "' steps a schedule's forward chain, which a drift and a diffusion do not give: sample a ",
               "marginal field with sample() (sample/sampler.h), or use the euler-maruyama predictor");
  const PredictorStep predictor = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    return euler_maruyama_step(drift, diffusion, t, t_next, x, nfe);
  };
  return solve_pc(predictor, score, x0, grid, options, observer);
}

Solution solve_pc(const PredictorStep& predictor, const VectorField& score, const torch::Tensor& x0,
                  const TimeGrid& grid, const PcOptions& options, const Observer& observer) {
  SDEGEN_CHECK(static_cast<bool>(predictor), "solve_pc: the predictor is empty");
  SDEGEN_CHECK(static_cast<bool>(score), "solve_sde_pc: the score is empty");
  SDEGEN_CHECK(options.corrector_steps >= 0, "corrector_steps must be >= 0, got ",
               options.corrector_steps);
  SDEGEN_CHECK(options.snr > 0 && std::isfinite(options.snr),
               "snr must be positive and finite, got ", options.snr);
  const auto step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    torch::Tensor next = predictor(t, t_next, x, nfe);
    // By default the solve ends on a predictor step, as Song et al.'s sampler does (it
    // corrects before predicting); final_corrector adds Langevin steps at the end time too.
    const bool correct = options.final_corrector || t_next != grid.back();
    for (int j = 0; correct && j < options.corrector_steps; ++j)
      next = langevin_step(score, t_next, next, options.snr, nfe);
    return next;
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace sdegen
