// Workload 6: the GEMM throughput of this machine's BLAS (through torch::mm, float64) at the
// matrix sizes of workload 2's training steps, and the ceiling it puts on a step: the step's
// GEMM flops divided by that throughput.
//   bench_gemm --width 256 --batch 512 [--depth 3] [--steps N] [--threads T]
// Reports the median time of one [batch, width] x [width, width] product and, in `gflops`,
// its rate; `ceiling_ms` is the GEMM-bound time of one training step (forward + backward).
#include "common.h"

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t width = args.integer("width", 256), batch = args.integer("batch", 512);
  const int64_t depth = args.integer("depth", 3), dim = 2;
  const int64_t reps = args.integer("steps", 2000);
  const auto opts = torch::TensorOptions(torch::kDouble);
  const torch::Tensor a = torch::randn({batch, width}, opts), b = torch::randn({width, width}, opts);
  torch::Tensor c = torch::empty({batch, width}, opts);
  const std::vector<double> times = bench::timed_steps([&] { torch::mm_out(c, a, b); }, 20, reps);
  const double ms = bench::median(times);
  const double gflops = 2.0 * batch * width * width / (ms * 1e6);
  // A training step: forward 2 B in out per layer; backward the same twice (input and weight
  // gradients), except the first layer's input gradient.
  const double in = static_cast<double>(dim + 1), w = static_cast<double>(width), B = static_cast<double>(batch);
  const double forward = 2 * B * (in * w + (depth - 1) * w * w + w * dim);
  const double step_flops = 3 * forward - 2 * B * in * w;
  bench::report("6-gemm", std::to_string(batch) + "x" + std::to_string(width) + "x" + std::to_string(width), times,
                {{"gflops", gflops}, {"ceiling_ms", step_flops / (gflops * 1e6)}});
}
