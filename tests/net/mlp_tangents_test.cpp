// The MLP's closed-form time derivative and Jacobian against autograd, for every activation
// and time embedding, and the gradient of a loss built on them.
#include <gtest/gtest.h>

#include "sdegen/core/error.h"
#include "sdegen/net/mlp.h"
#include "support/support.h"

namespace sdegen {
namespace {
using test::max_abs_diff;

struct Case {
  std::string activation, embedding;
  int64_t depth;
};

class MlpTangents : public ::testing::TestWithParam<Case> {};

TEST_P(MlpTangents, MatchAutograd) {
  const Case c = GetParam();
  const int64_t d = 3, batch = 5;
  Mlp net(MlpOptions(d).out_dim(2).width(8).depth(c.depth).activation(c.activation).time_embedding(
      c.embedding).fourier_scale(2.0).embedding_dim(4));
  net->to(torch::kDouble);
  const torch::Tensor x = torch::randn({batch, d}, torch::kDouble).requires_grad_(true);
  const torch::Tensor t = torch::rand({batch}, torch::kDouble).requires_grad_(true);
  const auto tan = net->forward_with_tangents(x, t, true, true);
  const torch::Tensor out = net->forward(x, t);
  EXPECT_LT(max_abs_diff(tan.out, out), 1e-12);
  ASSERT_EQ(tan.jacobian.sizes(), (torch::IntArrayRef{batch, 2, d}));
  for (int64_t o = 0; o < 2; ++o) {
    // Rows are independent, so the gradient of a column sum is each row's derivative.
    const auto g = torch::autograd::grad({out.select(1, o).sum()}, {x, t}, {}, /*retain_graph=*/true);
    EXPECT_LT(max_abs_diff(tan.jacobian.select(1, o), g[0]), 1e-10) << "d out_" << o << "/dx";
    EXPECT_LT(max_abs_diff(tan.d_dt.select(1, o), g[1]), 1e-10) << "d out_" << o << "/dt";
  }
}

INSTANTIATE_TEST_SUITE_P(ActivationsAndEmbeddings, MlpTangents,
                         ::testing::Values(Case{"tanh", "raw", 2}, Case{"relu", "fourier", 2},
                                           Case{"gelu", "sinusoidal", 1}, Case{"silu", "fourier", 3},
                                           Case{"softplus", "raw", 2}, Case{"tanh", "fourier", 0}),
                         [](const auto& info) {
                           return info.param.activation + "_" + info.param.embedding + "_depth" +
                                  std::to_string(info.param.depth);
                         });

TEST(MlpTangentsTraining, GradientOfALossOnTheJacobianMatchesDoubleBackward) {
  Mlp net(MlpOptions(2).width(6).depth(2).activation("tanh"));
  net->to(torch::kDouble);
  const torch::Tensor x = torch::randn({4, 2}, torch::kDouble).requires_grad_(true);
  const torch::Tensor t = torch::rand({4}, torch::kDouble);
  const auto tan = net->forward_with_tangents(x, t, false, true);
  const torch::Tensor trace = tan.jacobian.diagonal(0, 1, 2).sum();
  const auto closed = torch::autograd::grad({trace}, net->parameters(), {}, false, false, /*allow_unused=*/true);
  // The same divergence by autograd, differentiated again.
  const torch::Tensor out = net->forward(x, t);
  torch::Tensor div = torch::zeros({}, torch::kDouble);
  for (int64_t j = 0; j < 2; ++j)
    div = div + torch::autograd::grad({out.select(1, j).sum()}, {x}, {}, true, true)[0].select(1, j).sum();
  const auto twice = torch::autograd::grad({div}, net->parameters(), {}, /*retain_graph=*/false, false,
                                           /*allow_unused=*/true);
  for (size_t i = 0; i < closed.size(); ++i) {
    // The output bias does not enter the Jacobian: neither path may use it.
    ASSERT_EQ(closed[i].defined(), twice[i].defined()) << "parameter " << i;
    if (!twice[i].defined()) continue;
    EXPECT_LT(max_abs_diff(closed[i], twice[i]), 1e-10) << "parameter " << i;
  }
}

TEST(MlpTangentsTraining, RefusesClassConditionalNets) {
  Mlp net(MlpOptions(1).num_classes(3));
  EXPECT_THROW_WITH(net->forward_with_tangents(torch::zeros({2, 1}), torch::zeros({2}), true, false),
                    InvalidArgument, "unconditional");
}

}  // namespace
}  // namespace sdegen
