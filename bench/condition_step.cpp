// A conditional flow's training step, fused against autograd, side by side in one run: the
// control toy's demonstrations (16-D action chunks given the 2-D observation, as
// example_control_loop trains them), condition dropout 0.1, float64 on the CPU. Both sides start
// from the same weights, take the same batches and draws (torch's generator is reseeded before
// each step) and the same one-pass Adam, so they differ only in how the loss and its gradient are
// computed: the MLP kernel with the condition's features as inputs, or loss() and backward().
// Rounds alternate which side runs first.
//   bench_condition_step [--width 128] [--depth 3] [--batch 256] [--steps 300] [--rounds 4] [--threads 1]
#include <cmath>
#include <cstdio>

#include "common.h"
#include "sdegen/data/control_toy.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  const int64_t threads = args.integer("threads", 1);
  torch::set_num_threads(static_cast<int>(threads));
  sdegen::vmath::set_blas_threads(static_cast<int>(threads));
  const int64_t width = args.integer("width", 128), depth = args.integer("depth", 3);
  const int64_t batch = args.integer("batch", 256), steps = args.integer("steps", 300);
  const int64_t rounds = args.integer("rounds", 4);
  if (width < 1 || depth < 1 || batch < 1 || steps < 1 || rounds < 1) {
    std::cerr << "bench_condition_step: --width, --depth, --batch, --steps and --rounds must be positive\n";
    return 2;
  }

  const sdegen::Demonstrations demos = sdegen::obstacle_demonstrations(sdegen::ObstacleTask{}, 200, 0);
  const torch::Tensor y = sdegen::fit_standardizer(demos.actions).transform(demos.actions);
  const torch::Tensor c = sdegen::fit_standardizer(demos.observations).transform(demos.observations);
  const nlohmann::json config = sdegen::model_config(
      "flow", y.size(1), {{"p_uncond", 0.1}, {"net", {{"width", width}, {"depth", depth}, {"condition_dim", c.size(1)}}}});
  struct Side {
    std::string name;
    bool fused;
    sdegen::ModelPtr model;
    std::unique_ptr<torch::optim::Adam> opt;
    std::vector<double> times, losses;
  };
  std::vector<Side> sides;
  for (const bool fused : {true, false}) {
    torch::manual_seed(7);  // the same initial weights on both sides
    Side s{fused ? "fused" : "autograd", fused, sdegen::make_model(config), nullptr, {}, {}};
    s.opt = std::make_unique<torch::optim::Adam>(s.model->parameters(), torch::optim::AdamOptions(1e-3));
    sides.push_back(std::move(s));
  }
  if (!sides[0].model->has_fused_step(y.narrow(0, 0, batch))) {
    std::cerr << "bench_condition_step: the conditional flow has no fused step here\n";
    return 1;
  }

  int64_t step = 0;  // the global step: both sides take step k with the same batch and draws
  auto run = [&](Side& s, int64_t first) {
    for (int64_t k = first; k < first + steps; ++k) {
      torch::manual_seed(1000 + static_cast<uint64_t>(k));
      const torch::Tensor rows = torch::randint(y.size(0), {batch}, torch::TensorOptions(torch::kLong));
      sdegen::Condition condition;
      condition.vector = c.index_select(0, rows);
      condition.vector_finite = true;  // checked once, as the trainer does
      const torch::Tensor yb = y.index_select(0, rows);
      const auto start = bench::Clock::now();
      const double loss = s.fused ? s.model->loss_and_gradient(yb, condition)
                                  : sdegen::autograd_loss_and_gradient(*s.model, yb, condition);
      sdegen::optimizer_step(*s.opt);
      s.times.push_back(bench::ms_since(start));
      s.losses.push_back(loss);
    }
  };
  for (int64_t r = 0; r < rounds; ++r) {
    Side& a = sides[static_cast<size_t>(r % 2)];
    Side& b = sides[static_cast<size_t>(1 - r % 2)];
    run(a, step);
    run(b, step);
    step += steps;
  }
  double worst = 0.0;
  for (size_t k = 0; k < sides[0].losses.size(); ++k)
    worst = std::max(worst, std::fabs(sides[0].losses[k] - sides[1].losses[k]) / (1.0 + std::fabs(sides[1].losses[k])));
  const std::string shape = std::to_string(depth) + "x" + std::to_string(width) + "-b" + std::to_string(batch);
  for (const Side& s : sides)
    bench::report("condition-step", shape + (s.fused ? "" : " (autograd)"), s.times,
                  {{"metric", s.losses.back()}, {"fused_kernel", s.fused}});
  const double fused_ms = bench::median(sides[0].times), autograd_ms = bench::median(sides[1].times);
  std::printf("conditional flow, %s, %lld thread(s), %lld steps x %lld rounds per side:\n", shape.c_str(),
              static_cast<long long>(threads), static_cast<long long>(steps), static_cast<long long>(rounds));
  std::printf("  fused %.3f ms/step, autograd %.3f ms/step: %.2fx; the two sides' losses agree to %.1e (relative)\n",
              fused_ms, autograd_ms, autograd_ms / fused_ms, worst);
  std::printf("  reproduce: build/bench_condition_step --width %lld --depth %lld --batch %lld --steps %lld --rounds %lld "
              "--threads %lld\n",
              static_cast<long long>(width), static_cast<long long>(depth), static_cast<long long>(batch),
              static_cast<long long>(steps), static_cast<long long>(rounds), static_cast<long long>(threads));
  return worst < 1e-6 ? 0 : 1;
}
