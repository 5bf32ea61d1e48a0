// Trains one affine specialisation on laplace5 with a plain Adam loop and reports the samples'
// Wasserstein-1 distance to held-out data and the ELBO. Usage: example_train_laplace5 [kind] [steps]
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "sdegen/data/density.h"
#include "sdegen/eval/metrics.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/model/factory.h"
#include "sdegen/sample/sampler.h"

int main(int argc, char** argv) {
  using namespace sdegen;
  const std::string kind = argc > 1 ? argv[1] : "flow";
  const int steps = argc > 2 ? std::stoi(argv[2]) : 300;
  torch::set_num_threads(1);
  torch::manual_seed(0);
  const DensityPtr data = make_density(std::getenv("DATA") ? std::getenv("DATA") : "laplace5");
  const torch::Tensor train = data->sample(1000), val = data->sample(8000);
  // Standardise: the networks see unit-scale data.
  const bool raw = std::getenv("NOSTD") != nullptr;
  const double mean = raw ? 0.0 : train.mean().item<double>(), std = raw ? 1.0 : train.std().item<double>();
  AffineModelOptions o = affine_model_defaults(kind, 1);
  auto env = [](const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return std::string(v ? v : fallback);
  };
  o.net = to_json(MlpOptions(1)
                      .width(std::stoi(env("WIDTH", "64")))
                      .depth(std::stoi(env("DEPTH", "3")))
                      .activation(env("ACT", "silu"))
                      .time_embedding(env("EMBED", "fourier"))
                      .fourier_scale(std::stod(env("FSCALE", "4"))));
  const double lr = std::stod(env("LR", "2e-3"));
  auto model = std::make_shared<AffineModel>(o);
  model->to(torch::kDouble);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(lr));
  const auto start = std::chrono::steady_clock::now();
  for (int step = 1; step <= steps; ++step) {
    const torch::Tensor idx = torch::randint(0, train.size(0), {125}, torch::kLong);
    const torch::Tensor loss = model->loss((train.index_select(0, idx) - mean) / std);
    opt.zero_grad();
    loss.backward();
    opt.step();
    // Cosine decay of the learning rate to zero.
    for (auto& g : opt.param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr * 0.5 * (1 + std::cos(M_PI * step / steps)));
    if (step % 500 == 0) std::cout << "step " << step << " loss " << loss.item<double>() << "\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::NoGradGuard no_grad;
  SamplerOptions so;
  so.solver = "heun";
  so.steps = 100;
  const torch::Tensor x0 = model->schedule().prior_std() * torch::randn({8000, 1}, torch::kDouble);
  const torch::Tensor x = generate(*model, x0, so).check().x;
  const double w1 = wasserstein1(x * std + mean, val);
  if (std::getenv("DEBUG")) {
    const torch::Tensor q = torch::tensor({0.05, 0.25, 0.5, 0.75, 0.95}, torch::kDouble);
    std::cout << "sample quantiles " << torch::quantile(x.squeeze(1) * std + mean, q) << "\n"
              << "data quantiles " << torch::quantile(val.squeeze(1), q) << "\n";
  }
  if (data->mixture() && raw && kind == "flow") {
    const GmmOracle oracle(*data->mixture(), make_schedule("linear"));
    const torch::Tensor g = torch::linspace(-4, 4, 81, torch::kDouble).unsqueeze(1);
    for (double t : {0.1, 0.5, 0.9, 0.99}) {
      const torch::Tensor vm = model->field()->predict(g, t, Prediction::Velocity);
      const torch::Tensor vo = oracle.velocity(g, t);
      const torch::Tensor w = torch::exp(oracle.log_prob(g, t));
      std::cout << "t = " << t << ": density-weighted mean |v_model - v_oracle| = "
                << ((vm - vo).abs().squeeze(1) * w).sum().item<double>() / w.sum().item<double>() << "\n";
    }
  }
  const ElboTerms e = model->elbo((val - mean) / std, 4);
  const double elbo = (e.total().mean().item<double>()) - std::log(std);
  std::cout << kind << ": " << steps << " steps in " << seconds << " s; W1 = " << w1
            << "; ELBO = " << elbo << " nats (true mean log density "
            << data->log_prob(val).mean().item<double>() << ")\n";
  return 0;
}
