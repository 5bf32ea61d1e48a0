// Workload 9: the image recipe's KL autoencoder (Fashion-MNIST: 1x28x28 to 4x7x7 latents), built
// as `sdegen train --data fashion-mnist --model autoencoder` builds it (apps/image_train.cpp,
// recipe_autoencoder): AutoencoderOptions(1, 28, 28), channels {16, 32, 64}, 4 latent channels,
// GroupNorm of 8 groups, kl_weight 1e-4, float32.
//   encode: the posterior (mean and log-variance) of --batch (256) images, eval mode, no gradient:
//     what latent training does to every image once and evaluation to the test images;
//   decode: --batch latents to images, the same way: what every latent sample costs at the end;
//   train: one step, model->loss_and_gradient(y) then Adam (lr 5e-4), batch --batch (64).
// Images are random pixels on the 8-bit grid (the cost does not depend on them). `metric`: the
// mean of the output (encode, decode) or of the loss over the last 20% of steps (train); the
// weights are the same on both sides from the same seed, so the metrics agree to float rounding.
//   bench_autoencoder --phase encode|decode|train [--batch B] [--steps N] [--warmup W] [--threads T]
#include <iostream>

#include "common.h"
#include "sdegen/model/autoencoder.h"
#include "sdegen/model/factory.h"
#include "sdegen/train/optim.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const std::string phase = args.str("phase", "encode");
  const nlohmann::json net = sdegen::to_json(sdegen::AutoencoderOptions(1, 28, 28));
  auto model = std::dynamic_pointer_cast<sdegen::AutoencoderModel>(
      sdegen::make_model(sdegen::model_config("autoencoder", 1, {{"net", net}})));
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  std::cerr << "bench 9-autoencoder: " << params << " parameters\n";
  const int64_t batch = args.integer("batch", phase == "train" ? 64 : 256);
  const int64_t steps = args.integer("steps", phase == "train" ? 20 : 10), warmup = args.integer("warmup", 2);
  std::vector<double> times;
  nlohmann::json extra = {{"params", params}};
  if (phase == "train") {
    const int64_t n = batch * (steps + warmup);
    const torch::Tensor data = torch::randint(0, 256, {n, 1, 28, 28}, torch::kFloat).div_(127.5).sub_(1.0);
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(5e-4));
    int64_t next = 0;
    std::vector<double> losses;
    times = bench::timed_steps(
        [&] {
          losses.push_back(model->loss_and_gradient(data.narrow(0, batch * next++, batch)));
          sdegen::optimizer_step(opt);
        },
        warmup, steps);
    const size_t tail = std::max<size_t>(1, static_cast<size_t>(steps / 5));
    double sum = 0;
    for (size_t i = losses.size() - tail; i < losses.size(); ++i) sum += losses[i];
    extra["metric"] = sum / static_cast<double>(tail);
  } else if (phase == "encode" || phase == "decode") {
    model->eval();
    torch::NoGradGuard no_grad;
    const bool encode = phase == "encode";
    const torch::Tensor x = encode ? torch::randint(0, 256, {batch, 1, 28, 28}, torch::kFloat).div_(127.5).sub_(1.0)
                                   : torch::randn({batch, 4, 7, 7});
    torch::Tensor out;
    times = bench::timed_steps([&] { out = encode ? model->encode(x).mean : model->decode(x); }, warmup, steps);
    extra["metric"] = out.mean().item<double>();
  } else {
    std::cerr << "bench 9-autoencoder: --phase must be encode, decode or train, got '" << phase << "'\n";
    return 2;
  }
  bench::report("9-autoencoder", args.str("case", phase + "-b" + std::to_string(batch)), times, extra);
  return 0;
}
