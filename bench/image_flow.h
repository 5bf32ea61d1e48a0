#pragma once
// What workloads 7 (the U-Net) and 8 (the DiT) share: the image recipe's flow model on 1x28x28
// images with 10 classes (p_uncond 0.1, float32) around a given network, and its two phases.
//   train: one training step, model->loss_and_gradient(y, labels) then Adam (lr 5e-4), on
//     batches of --batch (64) random pixels on the 8-bit grid (v / 127.5 - 1) with labels in
//     [0, 10): the cost does not depend on the pixels, so no dataset is needed. `metric`: the
//     mean loss over the last 20% of steps (the PyTorch references report the same); with
//     --losses 1 also every loss, warm-up included.
//   sample: one guided velocity evaluation at guidance 2, the sampler's unit of work: one batched
//     network call on 2 x --batch (250) images, in eval mode without gradients.
//   --device cpu|cuda[:N] (default cpu): where the model runs; each batch is moved there inside the
//     timed step, and a GPU is synchronised before a step's clock stops.
#include <iostream>
#include <string>
#include <vector>

#include "common.h"
#include "sdegen/core/device.h"
#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"

namespace bench {

// Runs --phase (train or sample) and reports it under `workload` as `<phase><suffix>`; returns
// the exit code (2 for an unknown phase).
inline int run_image_flow(const Args& args, const nlohmann::json& net, const std::string& workload,
                          const std::string& suffix) {
  const std::string phase = args.str("phase", "train");
  const nlohmann::json overrides = {{"net", net}, {"p_uncond", 0.1}};
  const sdegen::ModelPtr model = sdegen::make_model(sdegen::model_config("flow", 1, overrides));
  torch::Device device(torch::kCPU);
  try {
    device = sdegen::parse_device(args.str("device", "cpu"));
  } catch (const sdegen::InvalidArgument& e) {
    std::cerr << "bench " << workload << ": " << e.what() << "\n";
    return 2;
  }
  model->to(device);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  auto& flow = dynamic_cast<sdegen::AffineModel&>(*model);
  int64_t params = 0;
  for (const auto& p : flow.net().parameters()) params += p.numel();
  std::cerr << "bench " << workload << ": " << params << " parameters (" << net.dump() << ")\n";

  std::vector<double> times;
  nlohmann::json extra = {{"params", params}, {"device", device.str()}};
  if (phase == "train") {
    const int64_t steps = args.integer("steps", 20), warmup = args.integer("warmup", 2);
    const int64_t batch = args.integer("batch", 64), n = batch * (steps + warmup);
    const torch::Tensor data = torch::randint(0, 256, {n, 1, 28, 28}, torch::kFloat).div_(127.5).sub_(1.0);
    const torch::Tensor labels = torch::randint(0, 10, {n}, torch::kLong);
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(5e-4));
    int64_t next = 0;
    std::vector<double> losses;
    auto step = [&] {
      const torch::Tensor y = data.narrow(0, batch * next, batch).to(device);
      const sdegen::Condition condition(labels.narrow(0, batch * next++, batch).to(device));
      losses.push_back(model->loss_and_gradient(y, condition));
      sdegen::optimizer_step(opt);  // float32 parameters: torch's own Adam step
      sync();
    };
    times = timed_steps(step, warmup, steps);
    const size_t tail = std::max<size_t>(1, static_cast<size_t>(steps / 5));
    double sum = 0;
    for (size_t i = losses.size() - tail; i < losses.size(); ++i) sum += losses[i];
    extra["metric"] = sum / static_cast<double>(tail);
    // The first loss is the same function of the data and time draws on both sides (the net
    // starts at zero); the rest follow the weights.
    if (args.integer("losses", 0) != 0) extra["losses"] = losses;
  } else if (phase == "sample") {
    const int64_t steps = args.integer("steps", 10), warmup = args.integer("warmup", 1);
    const int64_t batch = args.integer("batch", 250);
    model->eval();
    const auto field =
        flow.guided_field(sdegen::Condition(torch::randint(0, 10, {batch}, torch::kLong).to(device)), 2.0);
    const torch::Tensor x = torch::randn({batch, 1, 28, 28}).to(device);
    torch::NoGradGuard no_grad;
    times = timed_steps(
        [&] {
          field->predict(x, 0.5, sdegen::Prediction::Velocity);
          sync();
        },
        warmup, steps);
  } else {
    std::cerr << "bench " << workload << ": --phase must be train or sample, got '" << phase << "'\n";
    return 2;
  }
  report(workload, args.str("case", phase + suffix), times, extra);
  return 0;
}

}  // namespace bench
