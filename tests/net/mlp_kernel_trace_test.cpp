// MlpKernel::forward_trace, the divergence of a net from R^d to R^d by its Jacobian tangents:
// autograd's trace for every activation and time embedding, over several chunks of rows (one of
// them partial), and the same numbers on one thread or two (tests otherwise run on one).
#include <ATen/Parallel.h>

#include "sdegen/core/error.h"
#include "sdegen/core/vmath.h"
#include "sdegen/net/mlp_kernel.h"
#include "support/support.h"

namespace sdegen {
namespace {

Mlp make_net(int64_t d, int64_t out, const std::string& activation, const std::string& embedding) {
  torch::manual_seed(21);
  Mlp net(MlpOptions(d).out_dim(out).width(9).depth(2).activation(activation).time_embedding(embedding).embedding_dim(4));
  net->to(torch::kDouble);
  return net;
}

// The output and tr(dF/dx) per row by autograd, one backward pass per dimension.
std::pair<torch::Tensor, torch::Tensor> autograd_trace(Mlp& net, const torch::Tensor& x, const torch::Tensor& t) {
  const torch::Tensor xi = x.detach().requires_grad_(true);
  const torch::Tensor out = net->forward(xi, t);
  torch::Tensor trace = torch::zeros({x.size(0)}, x.options());
  for (int64_t j = 0; j < x.size(1); ++j)
    trace = trace + torch::autograd::grad({out.select(1, j).sum()}, {xi}, {}, true)[0].select(1, j);
  return {out.detach(), trace.detach()};
}

struct Traced {
  torch::Tensor out, trace;
};
Traced kernel_trace(Mlp& net, const torch::Tensor& x, const torch::Tensor& t, Workspace& workspace) {
  const int64_t n = x.size(0);
  Traced r{torch::empty_like(x), torch::empty({n}, torch::kDouble)};
  MlpKernel(*net).forward_trace(x.data_ptr<double>(), t.data_ptr<double>(), n, r.out.data_ptr<double>(),
                                r.trace.data_ptr<double>(), workspace);
  return r;
}

TEST(MlpKernelTrace, IsAutogradsTraceOnOneThreadOrTwo) {
  const int64_t d = 3, n = 300;  // three chunks of rows, the last one partial
  for (const std::string activation : {"tanh", "silu", "gelu", "softplus", "relu"}) {
    for (const std::string embedding : {"raw", "sinusoidal", "fourier"}) {
      Mlp net = make_net(d, d, activation, embedding);
      torch::manual_seed(22);
      const torch::Tensor x = torch::randn({n, d}, torch::kDouble), t = torch::rand({n}, torch::kDouble);
      const auto [out_ref, trace_ref] = autograd_trace(net, x, t);
      Workspace workspace;
      const Traced one = kernel_trace(net, x, t, workspace);
      EXPECT_LT(test::max_abs_diff(one.out, out_ref), 1e-12) << activation << " " << embedding;
      EXPECT_LT(test::max_abs_diff(one.trace, trace_ref), 1e-12) << activation << " " << embedding;
      const int threads = at::get_num_threads(), blas = vmath::blas_threads();
      at::set_num_threads(2);
      const Traced two = kernel_trace(net, x, t, workspace);
      at::set_num_threads(threads);
      EXPECT_EQ(vmath::blas_threads(), blas);  // restored after the threaded chunks
      // The chunks are the same whichever thread runs them (only the BLAS's own threading may
      // reorder a sum).
      EXPECT_LT(test::max_abs_diff(two.out, one.out), 1e-14) << activation << " " << embedding;
      EXPECT_LT(test::max_abs_diff(two.trace, one.trace), 1e-14) << activation << " " << embedding;
    }
  }
}

TEST(MlpKernelTrace, NeedsAFieldFromRdToRd) {
  Mlp net = make_net(3, 2, "tanh", "raw");
  const torch::Tensor x = torch::randn({4, 3}, torch::kDouble), t = torch::rand({4}, torch::kDouble);
  Workspace workspace;
  EXPECT_THROW_WITH(kernel_trace(net, x, t, workspace), InvalidArgument, "needs a net from R^d to R^d, got 3 -> 2");
}

}  // namespace
}  // namespace sdegen
