#include "sdegen/eval/regressor.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

Mlp fit_mse_regressor(const torch::Tensor& conditions, const torch::Tensor& targets, const RegressorOptions& o) {
  SDEGEN_CHECK(conditions.dim() == 2 && targets.dim() == 2 && conditions.size(0) == targets.size(0) &&
                   conditions.size(0) >= 1,
               "fit_mse_regressor: conditions [n, k] and targets [n, d] need the same n >= 1 rows, got ",
               conditions.sizes(), " and ", targets.sizes());
  SDEGEN_CHECK(all_finite(conditions) && all_finite(targets), "fit_mse_regressor: NaN or infinite values");
  SDEGEN_CHECK(o.width >= 1 && o.depth >= 0 && o.steps >= 1 && o.batch >= 1 && o.lr > 0,
               "fit_mse_regressor: width, steps, batch and lr must be positive and depth >= 0");
  torch::manual_seed(o.seed);
  Mlp net(MlpOptions(conditions.size(1)).out_dim(targets.size(1)).width(o.width).depth(o.depth));
  net->to(torch::kDouble);
  const torch::Tensor x = conditions.to(torch::kDouble), y = targets.to(torch::kDouble);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(o.lr));
  const torch::Tensor t = torch::zeros({o.batch}, torch::kDouble);
  for (int64_t step = 0; step < o.steps; ++step) {
    const double lr = o.lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(o.steps)));
    for (auto& group : opt.param_groups()) group.options().set_lr(lr);
    const torch::Tensor rows = torch::randint(x.size(0), {o.batch}, torch::kLong);
    const torch::Tensor loss = (net->forward(x.index_select(0, rows), t) - y.index_select(0, rows)).square().mean();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  return net;
}

}  // namespace sdegen
