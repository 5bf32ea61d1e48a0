// The one-pass optimiser step against torch::optim's own, and gradient clipping against
// torch::nn::utils::clip_grad_norm_.
#include "sdegen/train/optim.h"
#include "support/support.h"

namespace sdegen {
namespace {

std::vector<torch::Tensor> make_params(uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({4, 3}, torch::kDouble).requires_grad_(true), torch::randn({3}, torch::kDouble).requires_grad_(true),
          torch::randn({}, torch::kDouble).requires_grad_(true)};
}

void set_gradients(const std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(1000 + step);
  for (const auto& p : params) p.mutable_grad() = torch::randn_like(p);
}

template <class Optimizer, class Options>
void expect_same_as_torch(const Options& options) {
  auto mine = make_params(3), theirs = make_params(3);
  Optimizer a(mine, options), b(theirs, options);
  for (int step = 0; step < 5; ++step) {
    set_gradients(mine, step);
    set_gradients(theirs, step);
    optimizer_step(a);
    b.step();
    for (size_t i = 0; i < mine.size(); ++i)
      EXPECT_LT(test::max_abs_diff(mine[i], theirs[i]), 1e-14) << "parameter " << i << " after step " << step;
  }
  // The state is torch's own: one entry per parameter, and torch's step continues from it.
  EXPECT_EQ(a.state().size(), mine.size());
  set_gradients(mine, 9);
  set_gradients(theirs, 9);
  a.step();
  b.step();
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_LT(test::max_abs_diff(mine[i], theirs[i]), 1e-14);
}

TEST(OptimizerStep, AdamMatchesTorch) {
  expect_same_as_torch<torch::optim::Adam>(torch::optim::AdamOptions(3e-2).betas({0.8, 0.95}).eps(1e-6));
}

TEST(OptimizerStep, AdamWithL2DecayMatchesTorch) {
  expect_same_as_torch<torch::optim::Adam>(torch::optim::AdamOptions(1e-2).weight_decay(0.1));
}

TEST(OptimizerStep, AdamWMatchesTorch) {
  expect_same_as_torch<torch::optim::AdamW>(torch::optim::AdamWOptions(1e-2).weight_decay(0.3));
}

TEST(OptimizerStep, AmsgradAndOtherOptimizersGoThroughTorch) {
  expect_same_as_torch<torch::optim::Adam>(torch::optim::AdamOptions(1e-2).amsgrad(true));
  expect_same_as_torch<torch::optim::SGD>(torch::optim::SGDOptions(1e-2).momentum(0.9));
}

TEST(OptimizerStep, ParametersWithoutGradientsAreLeftAlone) {
  auto params = make_params(5);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-1));
  const torch::Tensor before = params[1].detach().clone();
  params[0].mutable_grad() = torch::ones_like(params[0]);
  params[2].mutable_grad() = torch::ones_like(params[2]);
  optimizer_step(opt);
  EXPECT_TRUE(torch::equal(params[1].detach(), before));
  EXPECT_EQ(opt.state().size(), 2u);
}

TEST(ClipGradients, MatchesTorchAndReportsTheNormBeforeClipping) {
  auto mine = make_params(7), theirs = make_params(7);
  set_gradients(mine, 0);
  set_gradients(theirs, 0);
  const double want = torch::nn::utils::clip_grad_norm_(theirs, 0.5);
  const double got = clip_gradients(mine, 0.5);
  EXPECT_NEAR(got, want, 1e-12);
  EXPECT_GT(got, 0.5);
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_LT(test::max_abs_diff(mine[i].grad(), theirs[i].grad()), 1e-14);
  // Without a limit the gradients stay as they were.
  const torch::Tensor g = mine[0].grad().clone();
  EXPECT_NEAR(clip_gradients(mine, 0.0), 0.5, 1e-6);
  EXPECT_TRUE(torch::equal(mine[0].grad(), g));
}

TEST(ClipGradients, NoGradientsIsZero) {
  auto params = make_params(8);
  EXPECT_EQ(clip_gradients(params, 1.0), 0.0);
}

}  // namespace
}  // namespace sdegen
