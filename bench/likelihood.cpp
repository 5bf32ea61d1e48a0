// Workload 4: the exact log-likelihood of 10,000 2-D points through the probability-flow ODE,
// Dormand-Prince with rtol = atol = 1e-5 and the exact divergence, for a flow-matching model
// (MLP [x, t] -> 3 x 64 (silu) -> 2) with deterministic weights, so that the PyTorch
// reference (bench/python/likelihood.py) solves the same ODE with the same step sequence.
// It runs on raw buffers (the network's divergence from its Jacobian tangents, dopri5 on the
// buffers); with --tensor-path 1 (the default) it also times the reference tensor path (autograd's
// divergence, the tensor dopri5), reported as the case "... (tensor path)".
//   bench_likelihood [--n 10000] [--steps N] [--threads T] [--tensor-path 0|1]
// `metric` is the mean log-likelihood; `nfe` the evaluations of the augmented field.
#include "common.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/likelihood.h"
#include "sdegen/model/factory.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t n = args.integer("n", 10000);
  const int64_t reps = args.integer("steps", 3);

  const nlohmann::json net = {{"activation", "silu"}, {"width", 64}, {"depth", 3}, {"time_embedding", "raw"}};
  const sdegen::ModelPtr model = sdegen::make_model(sdegen::model_config("flow", 2, {{"net", net}}));
  bench::deterministic_init(*model, "net.");
  // Fixed points (a grid over [-3, 3]^2), identical in the reference.
  const int64_t side = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  const torch::Tensor g = torch::linspace(-3.0, 3.0, side, torch::kDouble);
  const torch::Tensor x = torch::stack(torch::meshgrid({g, g}, "ij"), 2).reshape({-1, 2}).narrow(0, 0, n).contiguous();

  const auto run = [&](bool reference) {
    sdegen::LikelihoodOptions options;  // dopri5, rtol = atol = 1e-5, exact divergence
    options.reference = reference;
    sdegen::LikelihoodResult result;
    const std::vector<double> times = bench::timed_steps(
        [&] {
          torch::NoGradGuard no_grad;  // as the reference; the divergence turns grad mode back on
          result = sdegen::log_likelihood(*model->field(), x, options);
        },
        1, reps);
    const std::string name = "dopri5-n" + std::to_string(n) + (reference ? " (tensor path)" : "");
    bench::report("4-likelihood", name, times,
                  {{"metric", result.log_prob.mean().item<double>()}, {"nfe", result.nfe}, {"raw", result.raw},
                   {"invalid", result.invalid}});
  };
  run(false);
  if (args.integer("tensor-path", 1)) run(true);
}
