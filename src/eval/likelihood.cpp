#include "sdegen/eval/likelihood.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {
namespace {

// div v at (t, x) for x [n, D] flat; v sees x in the data's shape.
torch::Tensor divergence(const VectorField& velocity, double t, const torch::Tensor& flat,
                         torch::IntArrayRef shape, const torch::Tensor& probes, torch::Tensor& v_out) {
  torch::AutoGradMode grad_on(true);
  const torch::Tensor x = flat.detach().requires_grad_(true);
  const torch::Tensor v = velocity(t, x.reshape(shape)).reshape({flat.size(0), -1});
  SDEGEN_CHECK(v.sizes() == flat.sizes(), "velocity of shape ", v.sizes(), " does not match the state ",
               flat.sizes());
  torch::Tensor div = torch::zeros({flat.size(0)}, flat.options());
  if (probes.defined()) {  // Hutchinson: mean over probes of e^T (dv/dx) e
    for (int64_t k = 0; k < probes.size(0); ++k) {
      const torch::Tensor e = probes[k];
      const torch::Tensor g = torch::autograd::grad({v}, {x}, {e}, /*retain_graph=*/true)[0];
      div = div + (g * e).sum(1);
    }
    div = div / static_cast<double>(probes.size(0));
  } else {
    for (int64_t i = 0; i < flat.size(1); ++i) {
      const torch::Tensor g = torch::autograd::grad({v.select(1, i).sum()}, {x}, {}, /*retain_graph=*/true)[0];
      div = div + g.select(1, i);
    }
  }
  v_out = v.detach();
  return div.detach();
}

// The fixed-step solvers' grid, from the data end t1 back to t0.
TimeGrid backward_grid(const LikelihoodOptions& o) {
  GridOptions g;
  g.t0 = o.t0;
  g.t1 = o.t1;
  TimeGrid grid = make_time_grid(o.steps, g);
  std::reverse(grid.begin(), grid.end());
  return grid;
}

bool use_raw(const RawDivergenceField& raw, const torch::Tensor& x, const LikelihoodOptions& o) {
  return raw && !o.reference && o.exact_divergence && is_cpu_double(x);
}

}  // namespace

LikelihoodResult log_likelihood(const VectorField& velocity, const torch::Tensor& x,
                                double prior_std, const LikelihoodOptions& o, const RawDivergenceField& raw) {
  SDEGEN_CHECK(x.dim() >= 2 && x.size(0) > 0, "likelihood needs points of shape [n, ...], got ", x.sizes());
  SDEGEN_CHECK(all_finite(x), "likelihood points contain non-finite values");
  SDEGEN_CHECK(prior_std > 0, "prior std must be positive, got ", prior_std);
  SDEGEN_CHECK(o.exact_divergence || o.probes > 0, "Hutchinson's estimator needs probes > 0, got ", o.probes);
  const std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  const int64_t n = x.size(0), dim = row_numel(x);
  const torch::Tensor z1 = torch::cat({x.detach().reshape({n, dim}), torch::zeros({n, 1}, x.options())}, 1);
  Solution sol;
  std::vector<int64_t> isolated;
  const bool on_raw = use_raw(raw, x, o);
  if (on_raw) {
    const RawVectorField augmented = with_divergence(raw, dim);
    sol = o.solver == "dopri5"
              ? solve_ode_adaptive_raw(augmented, z1, o.t1, o.t0, o.adaptive, {}, o.isolate_failures ? &isolated : nullptr)
              : solve_ode_raw(augmented, z1, backward_grid(o), o.solver);
  } else {
    torch::Tensor probes;
    if (!o.exact_divergence)
      // Drawn on the CPU and moved, as every random draw: one seed, the same probes on any device.
      probes = (torch::randint(0, 2, {o.probes, n, dim}, x.options().device(torch::kCPU)) * 2.0 - 1.0).to(x.device());
    // Augmented state [x_flat, ell]: d ell/dt = div v.
    const VectorField augmented = [&](double t, const torch::Tensor& z) {
      torch::Tensor v;
      const torch::Tensor div = divergence(velocity, t, z.narrow(1, 0, dim), shape, probes, v);
      return torch::cat({v, div.unsqueeze(1)}, 1);
    };
    sol = o.solver == "dopri5" ? solve_ode_adaptive(augmented, z1, o.t1, o.t0, o.adaptive)
                               : solve_ode(augmented, z1, backward_grid(o), *make_ode_stepper(o.solver));
  }
  sol.check();
  const torch::Tensor x0 = sol.x.narrow(1, 0, dim);
  const torch::Tensor ell = sol.x.select(1, dim);  // = -int_{t0}^{t1} div v dt
  const double log_2pi = std::log(2.0 * M_PI);
  torch::Tensor prior = -0.5 * (x0 / prior_std).pow(2).sum(1) - dim * (std::log(prior_std) + 0.5 * log_2pi);
  torch::Tensor log_prob = prior + ell;
  torch::Tensor valid = torch::isfinite(log_prob) & torch::isfinite(x0).all(1);
  if (!isolated.empty()) valid.index_put_({torch::tensor(isolated, torch::kLong)}, false);
  const torch::Tensor invalid = valid.logical_not();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  LikelihoodResult r;
  r.log_prob = log_prob.masked_fill(invalid, nan);
  r.prior_log_prob = prior.masked_fill(invalid, nan);
  r.x_prior = x0.masked_fill(invalid.unsqueeze(1), nan).reshape(shape);
  r.valid = valid;
  r.invalid = invalid.sum().item<int64_t>();
  r.nfe = sol.nfe;
  r.raw = on_raw;
  return r;
}

LikelihoodResult log_likelihood(const MarginalField& model, const torch::Tensor& x,
                                const LikelihoodOptions& o) {
  return log_likelihood(probability_flow(model), x, model.schedule().prior_std(), o, model.raw_velocity_divergence());
}

}  // namespace sdegen
