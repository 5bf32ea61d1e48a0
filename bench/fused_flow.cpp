// A prototype, not the library: the flow-matching training step of workload 1 written the way
// the issue proposes for tiny networks, to measure what that design buys before it goes into
// the library. One flat parameter buffer (views for each layer), a closed-form backward pass
// through the MLP (the loss's gradient with respect to the network output is 2 (v - target) / n,
// tanh' = 1 - h^2), preallocated work buffers with out= kernels and no autograd graph, and one
// fused Adam update over the flat buffer. Same computation as AffineModel's flow loss()
// (uniform t in [eps, 1 - eps], velocity target y - eps, plain squared error, the learned
// log_delta reconstruction term; the prior KL has no parameters and is ~1e-6 here, so it is
// left out of the reported loss), same settings as bench_train_step --model flow.
//   bench_fused_flow [--steps N] [--warmup W] [--threads T]
#include <cmath>

#include "common.h"
#include "sdegen/data/density.h"

namespace {

struct Layer {
  torch::Tensor weight, bias, grad_weight, grad_bias;  // views into the flat buffers
};

}  // namespace

int main(int argc, char** argv) {
  const bench::Args args(argc, argv);
  bench::setup(args);
  const int64_t steps = args.integer("steps", 2000);
  const int64_t warmup = args.integer("warmup", std::max<int64_t>(2, steps / 10));
  const int64_t n = 125, d = 1, width = 64;
  const double t_eps = 1e-3, lo = t_eps, hi = 1.0 - t_eps, lr = 1e-3;
  const auto opts = torch::TensorOptions(torch::kDouble);

  // Flat buffers: parameters, gradients, Adam moments. Layer shapes as torch::nn::Linear.
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{width, d + 1}, {width, width}, {d, width}};
  int64_t size = 1;  // log_delta last
  for (const auto& [out, in] : shapes) size += out * in + out;
  torch::Tensor params = torch::empty({size}, opts), grads = torch::zeros({size}, opts);
  torch::Tensor m = torch::zeros({size}, opts), v = torch::zeros({size}, opts);
  std::vector<Layer> layers;
  int64_t offset = 0;
  for (const auto& [out, in] : shapes) {
    Layer l;
    l.weight = params.narrow(0, offset, out * in).view({out, in});
    l.grad_weight = grads.narrow(0, offset, out * in).view({out, in});
    offset += out * in;
    l.bias = params.narrow(0, offset, out);
    l.grad_bias = grads.narrow(0, offset, out);
    offset += out;
    // torch::nn::Linear's default initialisation: U(-1/sqrt(in), 1/sqrt(in)) for both.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    l.weight.uniform_(-bound, bound);
    l.bias.uniform_(-bound, bound);
    layers.push_back(l);
  }
  torch::Tensor log_delta = params.narrow(0, offset, 1), grad_log_delta = grads.narrow(0, offset, 1);
  log_delta.fill_(std::log(0.01));

  // Work buffers.
  torch::Tensor t = torch::empty({n}, opts), eps = torch::empty({n, d}, opts);
  torch::Tensor input = torch::empty({n, d + 1}, opts);
  torch::Tensor x = input.narrow(1, 0, d), t_col = input.narrow(1, d, 1);
  torch::Tensor h1 = torch::empty({n, width}, opts), h2 = torch::empty({n, width}, opts);
  torch::Tensor out = torch::empty({n, d}, opts), r = torch::empty({n, d}, opts);
  torch::Tensor dh = torch::empty({n, width}, opts), dz = torch::empty({n, width}, opts);
  torch::Tensor denom = torch::empty({size}, opts);
  // The reconstruction term's constant: beta / alpha at hi for the linear schedule.
  const double c = (1.0 - hi) / hi, dd = static_cast<double>(d);

  const torch::Tensor data = sdegen::make_density("laplace5")->sample(n * (steps + warmup));
  int64_t next = 0, adam_step = 0;
  std::vector<double> losses;
  auto step = [&] {
    const torch::Tensor y = data.narrow(0, n * next++, n);
    // Noised input [x, t]: x = t y + (1 - t) eps.
    t.uniform_(lo, hi);
    eps.normal_();
    t_col.copy_(t.unsqueeze(1));
    torch::mul_out(x, y - eps, t_col).add_(eps);
    // Forward.
    torch::addmm_out(h1, layers[0].bias, input, layers[0].weight.t()).tanh_();
    torch::addmm_out(h2, layers[1].bias, h1, layers[1].weight.t()).tanh_();
    torch::addmm_out(out, layers[2].bias, h2, layers[2].weight.t());
    // r = v - (y - eps); loss = mean |r|^2 - reconstruction (+ a prior KL with no parameters).
    torch::sub_out(r, out, y).add_(eps);
    const double ld = log_delta.item<double>();
    const double drift = r.square().sum().item<double>() / static_cast<double>(n);
    losses.push_back(drift + 0.5 * dd * std::log(2 * M_PI) + dd * ld + dd * c * c / (2 * std::exp(2 * ld)));
    // Backward, in closed form. dL/dv = 2 r / n.
    r.mul_(2.0 / static_cast<double>(n));
    torch::mm_out(layers[2].grad_weight, r.t(), h2);
    torch::sum_out(layers[2].grad_bias, r, 0);
    torch::mm_out(dh, r, layers[2].weight);
    torch::mul_out(dz, dh, 1.0 - h2.square());
    torch::mm_out(layers[1].grad_weight, dz.t(), h1);
    torch::sum_out(layers[1].grad_bias, dz, 0);
    torch::mm_out(dh, dz, layers[1].weight);
    torch::mul_out(dz, dh, 1.0 - h1.square());
    torch::mm_out(layers[0].grad_weight, dz.t(), input);
    torch::sum_out(layers[0].grad_bias, dz, 0);
    grad_log_delta.fill_(dd - dd * c * c * std::exp(-2 * ld));
    // One fused Adam update (torch::optim::Adam's defaults: betas 0.9, 0.999, eps 1e-8).
    ++adam_step;
    const double bc1 = 1.0 - std::pow(0.9, adam_step), bc2 = 1.0 - std::pow(0.999, adam_step);
    m.mul_(0.9).add_(grads, 0.1);
    v.mul_(0.999).addcmul_(grads, grads, 0.001);
    torch::sqrt_out(denom, v).div_(std::sqrt(bc2)).add_(1e-8);
    params.addcdiv_(m, denom, -lr / bc1);
  };
  const std::vector<double> times = bench::timed_steps(step, warmup, steps);
  const size_t tail = std::max<size_t>(1, static_cast<size_t>(steps / 5));
  double sum = 0;
  for (size_t i = losses.size() - tail; i < losses.size(); ++i) sum += losses[i];
  bench::report("1-train-step", "flow (fused prototype)", times, {{"metric", sum / static_cast<double>(tail)}});
}
