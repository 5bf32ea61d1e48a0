// Workload 3: sampling a 2-D flow-matching model with 20 Heun steps (40 network evaluations),
// MLP [x, t] -> 3 x 128 (silu) -> 2 with deterministic weights; latency at batch 1 (a control
// loop) and throughput at batch 10,000.
//   bench_sample --batch 1|10000 [--steps N] [--warmup W] [--threads T]
// `metric` is the mean of the samples' first coordinate (the same weights give the same value
// in bench/python/sample.py).
#include "common.h"
#include "sdegen/model/factory.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t batch = args.integer("batch", 1);
  const int64_t reps = args.integer("steps", batch == 1 ? 300 : 5);
  const int64_t warmup = args.integer("warmup", batch == 1 ? 30 : 1);

  const nlohmann::json net = {{"activation", "silu"}, {"width", 128}, {"depth", 3}, {"time_embedding", "raw"}};
  const sdegen::ModelPtr model = sdegen::make_model(sdegen::model_config("flow", 2, {{"net", net}}));
  bench::deterministic_init(*model, "net.");
  sdegen::SamplerOptions options;
  options.solver = "heun";
  options.steps = 20;

  // Fixed prior draws, identical in the reference: x0[i, j] = 1.5 sin(1.7 i + 0.3 j + 0.5).
  const torch::Tensor i = torch::arange(batch, torch::kDouble).unsqueeze(1);
  const torch::Tensor x0 = 1.5 * torch::sin(1.7 * i + 0.3 * torch::arange(2, torch::kDouble) + 0.5);
  sdegen::Solution sol;
  const std::vector<double> times = bench::timed_steps([&] {
    torch::NoGradGuard no_grad;  // as the reference samples under torch.no_grad()
    sol = sdegen::generate(*model, x0, options);
  }, warmup, reps);
  bench::report("3-sample", "heun20-b" + std::to_string(batch), times,
                {{"metric", sol.x.select(1, 0).mean().item<double>()}, {"nfe", sol.nfe}});
}
