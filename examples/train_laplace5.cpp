// Trains one affine specialisation on laplace5 with a plain Adam loop and reports the samples'
// Wasserstein-1 distance to held-out data and the ELBO. Usage: example_train_laplace5 [kind] [steps]
#include <chrono>
#include <iostream>

#include "sdegen/data/density.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/sample/sampler.h"

int main(int argc, char** argv) {
  using namespace sdegen;
  const std::string kind = argc > 1 ? argv[1] : "flow";
  const int steps = argc > 2 ? std::stoi(argv[2]) : 300;
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const DensityPtr data = make_density("laplace5");
  const torch::Tensor train = data->sample(1000), val = data->sample(8000);
  // Standardise: the networks see unit-scale data.
  const double mean = train.mean().item<double>(), std = train.std().item<double>();
  AffineModelOptions o = affine_model_defaults(kind, 1);
  o.net.width(64).depth(3).activation("silu").time_embedding("fourier").fourier_scale(4.0);
  auto model = std::make_shared<AffineModel>(o);
  model->to(torch::kDouble);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(2e-3));
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= steps; ++step) {
    const torch::Tensor idx = torch::randint(0, train.size(0), {125}, torch::kLong);
    const torch::Tensor loss = model->loss((train.index_select(0, idx) - mean) / std);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 500 == 0) std::cout << "step " << step << " loss " << loss.item<double>() << "\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::NoGradGuard no_grad;
  SamplerOptions so;
  so.solver = "heun";
  so.steps = 100;
  const auto [lo, hi] = std::pair<double, double>{0.0, model->schedule().b(1.0) == 0.0 && kind != "flow" ? 0.999 : 1.0};
  so.t1 = hi;
  (void)lo;
  const torch::Tensor x0 = model->schedule().prior_std() * torch::randn({8000, 1}, torch::kDouble);
  const Solution sol = sample(*model->field(), x0, so).check();
  torch::Tensor x = sol.x;
  if (hi < 1.0) x = model->field()->predict(x, hi, Prediction::Data);
  const double w1 = wasserstein1(x * std + mean, val);
  const ElboTerms e = model->elbo((val - mean) / std, 4);
  const double elbo = (e.total().mean().item<double>()) - std::log(std);
  std::cout << kind << ": " << steps << " steps in " << seconds << " s; W1 = " << w1
            << "; ELBO = " << elbo << " nats (true mean log density "
            << data->log_prob(val).mean().item<double>() << ")\n";
  return 0;
}
