// Workload 7: the image recipe's U-Net (Fashion-MNIST: 1x28x28, 10 classes) in the flow model,
// built as `sdegen train --data fashion-mnist` builds it (apps/image_train.cpp): UNetOptions(1, 28,
// 28), channel_mult {1, 2, 2}, attention at 7x7, base channels --base (32), p_uncond 0.1, float32.
//   --phase train|sample: bench/image_flow.h.
//   bench_unet --phase train|sample [--base 32] [--steps N] [--warmup W] [--batch B] [--threads T]
#include "image_flow.h"
#include "sdegen/net/unet.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t base = args.integer("base", 32);
  const sdegen::UNetOptions unet = sdegen::UNetOptions(1, 28, 28)
                                       .channel_mult({1, 2, 2})
                                       .attention_resolutions({7})
                                       .num_classes(10)
                                       .base_channels(base);
  return bench::run_image_flow(args, sdegen::to_json(unet), "7-unet", "-b" + std::to_string(base));
}
