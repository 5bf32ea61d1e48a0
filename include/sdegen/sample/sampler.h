#pragma once
// Sampling a generative model: from x0 ~ prior at t0 forward to t1 with a solver chosen by name.
//   ODE (probability flow dx/dt = v):   euler, midpoint, heun, rk4, dopri5, and the Adams
//     predictor-correctors abm3, abm4 (one evaluation per step)
//   SDE (dx = [v + sigma^2/2 s] dt + sigma dW):  euler-maruyama, pc
//   diffusion multistep on the data prediction:  ddim, dpm++2m, dpm++3m, unipc
//   stochastic samplers with their own noise (sample/stochastic.cpp): ddpm (ancestral),
//     reverse-diffusion (Song et al.'s predictor, also pc's with PcOptions::predictor) and edm
//     (Karras et al.'s Algorithm 2: Heun in sigma = b / a with churn; deterministic at churn 0)
// The fixed-grid ODE solvers integrate in schedule time t or in flow time r = a / (a + b)
// (sample/flow_time.h), where every affine schedule's flow is the linear schedule's.
// The model is anything that gives predictions (a MarginalField): a trained network or the
// exact oracle.
//
// The ends of [0, 1]. sample() integrates from t0 to t1 exactly as given, and every named
// schedule's field has a finite limit at both ends where the model's prediction determines one:
// the exact oracle's velocity at vp's and vp-cosine's t = 1 uses b b' (finite) where b' = -inf
// (AffineSchedule::b_db); flow time steps y_hat - eps_hat, formed from the v-prediction, which
// stays finite where dr/dt does not; the lambda grids clip lambda = +-inf at a = 0 and b = 0,
// which the schedules reach exactly. A network whose native prediction is singular at b = 0
// (data, noise or v: its velocity there is b' eps_hat with b' = -inf, or (x - a y_hat) / b)
// is sampled by generate() (model/factory.h) to 1 - t_epsilon and finished with its data
// prediction, the final denoising step.
// Refused before any evaluation, as ill-posed: an SDE solver (euler-maruyama, pc) with the
// reverse diffusion sigma^2 = b^2 lambda' from a time where a = 0 (t = 0 under linear, trig and
// vp-cosine): sigma is infinite there and its integral diverges, so no step can start there.
// For the same reason reverse-diffusion (and pc with its predictor) and edm refuse to start where
// a = 0: the first needs a_i / a_{i+1} > 0, the second sigma = b / a finite.
#include <limits>
#include <string>
#include <vector>

#include "sdegen/core/time_grid.h"
#include "sdegen/process/generative.h"
#include "sdegen/solver/ode.h"
#include "sdegen/solver/sde.h"

namespace sdegen {

// EDM's stochastic sampler (Karras et al. 2022, Algorithm 2), in its noise level sigma = b / a.
// At churn 0 it is EDM's deterministic Heun sampler.
struct EdmOptions {
  double churn = 0.0;   // S_churn: the noise added per step is gamma = min(churn / steps, sqrt 2 - 1)
  double s_tmin = 0.0;  // S_tmin, S_tmax: churn only where s_tmin <= sigma <= s_tmax
  double s_tmax = std::numeric_limits<double>::infinity();
  double s_noise = 1.0;  // S_noise: scale of the added noise (> 0)
  bool operator==(const EdmOptions& o) const {
    return churn == o.churn && s_tmin == o.s_tmin && s_tmax == o.s_tmax && s_noise == o.s_noise;
  }
};

struct SamplerOptions {
  std::string solver = "heun";
  int steps = 50;                 // fixed-step solvers: number of steps
  std::string grid;               // uniform | lambda | edm | flow; empty: lambda for ddim,
                                  // dpm++2m, dpm++3m and unipc, flow for abm3 and abm4, edm
                                  // for edm, uniform otherwise
  std::string time;               // schedule | flow: the variable the fixed-grid ODE solvers step
                                  // in; empty: flow for abm3 and abm4, schedule otherwise
  double t0 = 0.0;
  double t1 = 1.0;
  double rho = 7.0;               // edm grid
  DiffusionSpec diffusion;        // sigma of the SDE solvers; must be zero for ODE solvers
  AdaptiveOptions adaptive;       // dopri5
  PcOptions pc;                   // pc
  EdmOptions edm;                 // edm (refused for other solvers unless left at its defaults)
};

std::vector<std::string> sampler_names();
std::vector<std::string> ode_sampler_names();  // the deterministic ones (sigma must be 0)
std::vector<std::string> sampling_time_names();  // schedule, flow

// Throws InvalidArgument for an unknown solver (listing the valid ones), a bad grid, time or
// step count, flow time for a solver that does not step a grid in t, a nonzero diffusion
// given to a deterministic solver, or a diffusion that is infinite at a point an SDE solver
// steps from (see above). Numeric failure is reported in the Solution's status.
Solution sample(const MarginalField& model, const torch::Tensor& x0, const SamplerOptions& options,
                const Observer& observer = {});

// Samples a generative SDE with a free drift (a model without a marginal field): the ODE
// solvers integrate its drift (its diffusion must be zero), euler-maruyama its drift and
// diffusion; on a uniform grid in schedule time. pc and the diffusion multistep solvers need
// predictions and are refused.
Solution sample_sde(const GenerativeSde& sde, const torch::Tensor& x0, const SamplerOptions& options,
                    const Observer& observer = {});

// The probability-flow ODE's vector field dx/dt = v(x, t) of a model, as a solver callback.
VectorField probability_flow(const MarginalField& model);

// The grid the options describe, for the model's schedule, and the time they step in.
TimeGrid sampler_grid(const AffineSchedule& schedule, const SamplerOptions& options);
std::string sampler_time(const SamplerOptions& options);

// DDIM (deterministic) and DPM-Solver++(2M) on a grid, from the model's data prediction.
Solution solve_ddim(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer = {});
Solution solve_dpmpp_2m(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                        const Observer& observer = {});

// The stochastic samplers (sample/stochastic.cpp), on a grid from the model's predictions. Each
// step follows the forward chain that the grid discretises, x_i = r x_{i+1} + G z with
// r = a_i / a_{i+1} and G^2 = b_i^2 - r^2 b_{i+1}^2: ddpm draws from its Gaussian posterior given
// y_hat, reverse-diffusion from Song et al.'s reverse of it (neither adds noise on the last step).
Solution solve_ddpm(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                    const Observer& observer = {});
Solution solve_reverse_diffusion(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                                 const Observer& observer = {});
// The reverse-diffusion step as pc's predictor, on that grid (it needs a(t) > 0 where it starts).
PredictorStep reverse_diffusion_predictor(const MarginalField& model, const TimeGrid& grid);
// EDM's Algorithm 2 on x / a and sigma = b / a; needs a > 0 at the grid's start.
Solution solve_edm(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                   const EdmOptions& options = {}, const Observer& observer = {});

// Exponential Adams methods on the data prediction: y_hat is extrapolated by the polynomial (in
// lambda) through the last `order` predictions and integrated exactly. order 3 is
// DPM-Solver++(3M); the UniPC-style corrector re-solves each step with the prediction at the new
// point (one order higher) and reuses that evaluation, so every step costs one evaluation.
struct MultistepOptions {
  int order = 3;           // 1 to 4; the first steps use what history they have
  bool corrector = false;
};
Solution solve_exponential_multistep(const MarginalField& model, const torch::Tensor& x0,
                                     const TimeGrid& grid, const MultistepOptions& options,
                                     const Observer& observer = {});

namespace detail {
// J_j(h) = int_0^h e^{-(h - u)} (u / h)^j du for j < n (the phi functions, scaled).
std::vector<double> exponential_moments(double h, int n);
// w_m = int_0^h e^{-(h - u)} L_m(u) du for the Lagrange basis L_m of the nodes (in u).
std::vector<double> exponential_weights(const std::vector<double>& nodes, double h);
}  // namespace detail

}  // namespace sdegen
