// The trainer's two step paths and its resume, on the real models with fused kernels (flow, vdm,
// sde, ode; tiny nets, a dozen steps): the fused path (hand-derived gradients, one-pass Adam) and
// the reference path (--fused false: loss(), autograd, torch::optim) give the same losses; a run
// resumed from a checkpoint gives the next losses bit for bit; and the checkpointed weight
// average is the exact average of the iterates the run went through.
#include <nlohmann/json.hpp>

#include <cmath>

#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

using test::TempDir;

struct Interrupted {};

ModelPtr tiny_model(const std::string& kind, uint64_t init_seed = 11) {
  nlohmann::json overrides = {{"net", {{"width", 8}, {"depth", 1}}}};
  if (kind == "ode") overrides["steps"] = 2;
  torch::manual_seed(init_seed);
  return make_model(model_config(kind, 1, overrides));
}

// 160 rows of a two-mode 1-D density, standardised scale; the same every call.
torch::Tensor data() {
  torch::manual_seed(17);
  const torch::Tensor modes = torch::randint(0, 2, {160, 1}, torch::kDouble) * 2.0 - 1.0;
  return modes + 0.4 * torch::randn({160, 1}, torch::kDouble);
}

TrainOptions options(int64_t steps) {
  return TrainOptions().steps(steps).batch(32).lr(1e-2).warmup_steps(2).decay("cosine").grad_clip(5.0).ema_decay(
      0.9).seed(3).log_every(1);
}

TrainSetup quiet() {
  TrainSetup setup;
  setup.progress = nullptr;
  return setup;
}

class EveryFusedModel : public ::testing::TestWithParam<std::string> {};

// --fused false runs loss() and autograd and torch::optim's Adam; the default runs the model's
// fused kernel and the one-pass Adam. They agree to rounding at every step.
TEST_P(EveryFusedModel, FusedAndReferencePathsGiveTheSameLosses) {
  const torch::Tensor y = data();
  ASSERT_TRUE(tiny_model(GetParam())->has_fused_step(y)) << GetParam() << " runs no fused kernel";
  TempDir fused_dir("paths_fused_" + GetParam()), reference_dir("paths_reference_" + GetParam());
  const ModelPtr fused_model = tiny_model(GetParam()), reference_model = tiny_model(GetParam());
  const TrainResult fused = train(fused_model, y, options(10), fused_dir.str(), quiet());
  const TrainResult reference = train(reference_model, y, options(10).fused(false), reference_dir.str(), quiet());
  ASSERT_EQ(fused.losses.size(), 10u);
  ASSERT_EQ(reference.losses.size(), 10u);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_NEAR(fused.losses[i], reference.losses[i], 1e-8 * (1.0 + std::abs(reference.losses[i])))
        << GetParam() << " step " << i + 1;
  // Two code paths, not one run twice: they agree to rounding, not bit for bit.
  EXPECT_NE(fused.losses, reference.losses) << GetParam() << ": did --fused false run the reference path?";
  // They moved the weights, and moved them alike.
  const auto fp = fused_model->named_parameters(), rp = reference_model->named_parameters();
  const auto initial = tiny_model(GetParam())->named_parameters();
  double moved = 0.0;
  for (size_t i = 0; i < fp.size(); ++i) {
    EXPECT_LT(test::max_abs_diff(fp[i].value(), rp[i].value()), 1e-8) << fp[i].key();
    moved = std::max(moved, test::max_abs_diff(fp[i].value(), initial[i].value()));
  }
  EXPECT_GT(moved, 1e-3);
}

// Interrupted after step 7 with checkpoints every 4 steps, then resumed into a model built with
// other weights: steps 9 to 12 repeat the uninterrupted run's losses exactly.
TEST_P(EveryFusedModel, ResumeRepeatsTheUninterruptedLossesBitForBit) {
  const torch::Tensor y = data();
  TempDir straight("resume_straight_" + GetParam()), broken("resume_broken_" + GetParam());
  const TrainResult reference = train(tiny_model(GetParam()), y, options(12).checkpoint_every(4), straight.str(), quiet());
  TrainSetup interrupt = quiet();
  interrupt.progress = [](const StepReport& r) {
    if (r.step == 7) throw Interrupted{};
  };
  EXPECT_THROW(train(tiny_model(GetParam()), y, options(12).checkpoint_every(4), broken.str(), interrupt), Interrupted);
  ASSERT_EQ(load_checkpoint_config(broken.str()).at("step"), 4);
  TrainSetup resume = quiet();
  resume.resume = true;
  const TrainResult resumed =
      train(tiny_model(GetParam(), /*init_seed=*/99), y, options(12).checkpoint_every(4), broken.str(), resume);
  ASSERT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.losses, std::vector<double>(reference.losses.begin() + 4, reference.losses.end())) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Models, EveryFusedModel, ::testing::Values("flow", "vdm", "sde", "ode"),
                         [](const auto& info) { return info.param; });

// The checkpoint's averaged weights are the average of the iterates: starting from the initial
// weights, avg <- d avg + (1 - d) w_n after step n with d = min(decay, (1 + n) / (10 + n)).
TEST(TrainerEma, CheckpointHoldsTheExactAverageOfTheIterates) {
  TempDir dir("ema_exact");
  const ModelPtr model = tiny_model("flow");
  std::vector<torch::Tensor> average;
  for (const auto& p : model->parameters()) average.push_back(p.detach().clone());
  int64_t n = 0;
  TrainSetup setup = quiet();
  setup.progress = [&](const StepReport&) {  // after each step's update of the average
    const double d = std::min(0.9, (1.0 + n) / (10.0 + n));
    const auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) average[i] = average[i] * d + (1.0 - d) * params[i].detach();
    ++n;
  };
  train(model, data(), options(9), dir.str(), setup);
  ASSERT_EQ(n, 9);
  const ModelPtr averaged = tiny_model("flow", 5), last = tiny_model("flow", 5);
  load_weights(dir.str(), *averaged, Weights::kAverage);
  load_weights(dir.str(), *last, Weights::kLast);
  const auto got = averaged->named_parameters(), iterate = last->named_parameters(), live = model->named_parameters();
  for (size_t i = 0; i < got.size(); ++i) {
    const double scale = average[i].abs().max().item<double>();
    EXPECT_LE(test::max_abs_diff(got[i].value(), average[i]), 4e-16 * scale) << got[i].key();
    EXPECT_EQ(test::max_abs_diff(iterate[i].value(), live[i].value()), 0.0) << iterate[i].key();
  }
}

}  // namespace
}  // namespace sdegen
