#include "sdegen/eval/likelihood.h"

#include <cmath>

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

}  // namespace

LikelihoodResult log_likelihood(const VectorField& velocity, const torch::Tensor& x,
                                double prior_std, const LikelihoodOptions& o) {
  SDEGEN_CHECK(x.dim() >= 2 && x.size(0) > 0, "likelihood needs points of shape [n, ...], got ", x.sizes());
  SDEGEN_CHECK(all_finite(x), "likelihood points contain non-finite values");
  SDEGEN_CHECK(prior_std > 0, "prior std must be positive, got ", prior_std);
  SDEGEN_CHECK(o.exact_divergence || o.probes > 0, "Hutchinson's estimator needs probes > 0, got ", o.probes);
  const std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  const int64_t n = x.size(0), dim = row_numel(x);
  torch::Tensor probes;
  if (!o.exact_divergence)
    probes = torch::randint(0, 2, {o.probes, n, dim}, x.options()) * 2.0 - 1.0;

  // Augmented state [x_flat, ell]: d ell/dt = div v.
  const VectorField augmented = [&](double t, const torch::Tensor& z) {
    torch::Tensor v;
    const torch::Tensor div = divergence(velocity, t, z.narrow(1, 0, dim), shape, probes, v);
    return torch::cat({v, div.unsqueeze(1)}, 1);
  };
  const torch::Tensor z1 = torch::cat({x.detach().reshape({n, dim}), torch::zeros({n, 1}, x.options())}, 1);
  Solution sol;
  if (o.solver == "dopri5") {
    sol = solve_ode_adaptive(augmented, z1, o.t1, o.t0, o.adaptive);
  } else {
    GridOptions g;
    g.t0 = o.t0;
    g.t1 = o.t1;
    TimeGrid grid = make_time_grid(o.steps, g);
    std::reverse(grid.begin(), grid.end());
    sol = solve_ode(augmented, z1, grid, *make_ode_stepper(o.solver));
  }
  sol.check();
  const torch::Tensor x0 = sol.x.narrow(1, 0, dim);
  const torch::Tensor ell = sol.x.select(1, dim);  // = -int_{t0}^{t1} div v dt
  const double log_2pi = std::log(2.0 * M_PI);
  const torch::Tensor prior = -0.5 * (x0 / prior_std).pow(2).sum(1) - dim * (std::log(prior_std) + 0.5 * log_2pi);
  return {prior + ell, prior, x0.reshape(shape), sol.nfe};
}

LikelihoodResult log_likelihood(const MarginalField& model, const torch::Tensor& x,
                                const LikelihoodOptions& o) {
  return log_likelihood(probability_flow(model), x, model.schedule().prior_std(), o);
}

}  // namespace sdegen
