// Workload 1: one training step of each 1-D model at the reference settings.
// MLP [x, t] -> 64 -> tanh -> 64 -> tanh -> d (raw time), batch 125, Adam lr 1e-3, laplace5
// data, float64. The step is the library's own, as train() runs it: model->loss_and_gradient(y)
// (the model's fused kernel where it has one) and optimizer_step (one-pass Adam); --fused 0
// runs loss(y), backward() and torch::optim's step instead.
//   bench_train_step --model flow|vdm|diffusion|sde|ode [--steps N] [--warmup W] [--threads T] [--fused 0|1]
//   workload 2 (flow matching on moons): --data moons --width 256 --depth 3 --batch 512
//   --activation silu --workload 2-flow-2d --case 3x256-b512
// `metric` is the mean training loss over the last 20% of steps (bench/python/train_step.py
// reports the same).
#include <map>

#include "common.h"
#include "sdegen/data/density.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const std::string kind = args.str("model", "flow");
  const std::map<std::string, int64_t> defaults = {
      {"flow", 2000}, {"diffusion", 1000}, {"vdm", 1000}, {"sde", 500}, {"ode", 20}};
  const int64_t steps = args.integer("steps", defaults.at(kind));
  const int64_t warmup = args.integer("warmup", std::max<int64_t>(2, steps / 10));
  const int64_t batch = args.integer("batch", 125);
  const std::string data_name = args.str("data", "laplace5");
  const sdegen::DensityPtr density = sdegen::make_density(data_name);

  const nlohmann::json net = {{"activation", args.str("activation", "tanh")},
                              {"width", args.integer("width", 64)},
                              {"depth", args.integer("depth", 2)},
                              {"time_embedding", "raw"},
                              // The reference's initialisation (PyTorch's default), not the
                              // models' recommended x_init_scale: the same net at equal steps.
                              {"x_init_scale", 1.0}};
  const nlohmann::json config = sdegen::model_config(kind, density->dim(), {{"net", net}});
  if (args.integer("verbose", 0)) std::cerr << config.dump() << "\n";
  const sdegen::ModelPtr model = sdegen::make_model(config);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  const bool fused = args.integer("fused", 1) != 0;

  const torch::Tensor data = density->sample(batch * (steps + warmup));
  int64_t next = 0;
  std::vector<double> losses;
  auto step = [&] {
    const torch::Tensor y = data.narrow(0, batch * next++, batch);
    if (fused) {
      losses.push_back(model->loss_and_gradient(y));
      sdegen::optimizer_step(opt);
    } else {
      losses.push_back(sdegen::autograd_loss_and_gradient(*model, y));
      opt.step();
    }
  };
  const std::vector<double> times = bench::timed_steps(step, warmup, steps);
  const size_t tail = std::max<size_t>(1, static_cast<size_t>(steps / 5));
  double sum = 0;
  for (size_t i = losses.size() - tail; i < losses.size(); ++i) sum += losses[i];
  std::string name = args.str("case", kind);
  if (!fused) name += " (autograd)";
  bench::report(args.str("workload", "1-train-step"), name, times,
                {{"metric", sum / static_cast<double>(tail)}, {"fused_kernel", model->has_fused_step(data.narrow(0, 0, batch))}});
}
