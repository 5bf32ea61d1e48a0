// Workload 8: the image recipe's diffusion transformer (Fashion-MNIST: 1x28x28, 10 classes) in
// the flow model, built as `sdegen train --data fashion-mnist --net dit` builds it
// (apps/image_train.cpp, recipe_dit): DiTOptions(1, 28, 28) with --patch (2), --hidden (128),
// --depth (4), --heads (4), mlp_ratio 4, p_uncond 0.1, float32.
//   --phase train|sample: bench/image_flow.h.
//   bench_dit --phase train|sample [--patch 2] [--hidden 128] [--depth 4] [--heads 4] [--steps N]
//             [--warmup W] [--batch B] [--threads T]
#include "image_flow.h"
#include "sdegen/net/dit.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t patch = args.integer("patch", 2);
  const sdegen::DiTOptions dit = sdegen::DiTOptions(1, 28, 28)
                                     .num_classes(10)
                                     .patch(patch)
                                     .hidden(args.integer("hidden", 128))
                                     .depth(args.integer("depth", 4))
                                     .heads(args.integer("heads", 4));
  sdegen::check_dit_options(dit);
  return bench::run_image_flow(args, sdegen::to_json(dit), "8-dit", "-p" + std::to_string(patch));
}
