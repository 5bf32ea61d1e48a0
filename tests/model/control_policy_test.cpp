// The control example's claim, at test size: on the obstacle task with every demonstration from
// the same start, a conditional flow sampled by the fast sampler goes round on both sides without
// collision, and the MSE regressor on the same data and network averages the two ways into the
// obstacle.
#include <random>

#include "sdegen/core/error.h"
#include "sdegen/data/control_toy.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/eval/regressor.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/fast_sampler.h"
#include "sdegen/train/trainer.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(ControlPolicy, TheFlowGoesRoundBothWaysAndTheRegressorCollides) {
  ObstacleTask task;
  task.start_spread = 0.0;
  const Demonstrations demos = obstacle_demonstrations(task, 100, 1);
  const Standardizer obs_st = fit_standardizer(demos.observations), act_st = fit_standardizer(demos.actions);
  const torch::Tensor obs = obs_st.transform(demos.observations), act = act_st.transform(demos.actions);

  torch::manual_seed(0);
  AffineModelOptions o = affine_model_defaults("flow", act.size(1));
  o.net = to_json(MlpOptions(act.size(1)).width(128).depth(3).condition_dim(2));
  auto flow = std::make_shared<AffineModel>(o);
  TrainSetup setup;
  setup.conditions = obs;
  setup.validator = {};
  setup.progress = nullptr;
  const std::string out = test::temp_path("control_policy");
  std::filesystem::remove_all(out);
  train(flow, act, TrainOptions().steps(3000).batch(256).lr(2e-3).decay("cosine").threads(1), out, setup);
  flow->eval();
  RegressorOptions ro;
  ro.steps = 3000;  // the flow's network, steps and batch
  Mlp regressor = fit_mse_regressor(obs, act, ro);

  FastSampler sampler(*flow, FastSamplerOptions{});  // euler, 10 steps
  const int64_t d = act.size(1);
  auto units = [](const torch::Tensor& v) { return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel()); };
  const std::vector<double> om = units(obs_st.mean), os = units(obs_st.std), am = units(act_st.mean), as = units(act_st.std);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  std::vector<double> z(2), x(static_cast<size_t>(d));
  const ChunkPolicy flow_policy = [&](const double* observation, double* chunk) {
    for (int j = 0; j < 2; ++j) z[j] = (observation[j] - om[j]) / os[j];
    for (auto& v : x) v = normal(rng);
    sampler.sample(x.data(), z.data(), 1, x.data());
    for (int64_t j = 0; j < d; ++j) chunk[j] = am[j] + as[j] * x[j];
  };
  int safe = 0, above = 0, below = 0;
  for (int i = 0; i < 20; ++i) {
    const Rollout r = rollout(task, flow_policy, 0.0);
    safe += r.reached && !r.collided;
    above += !r.collided && r.side > 0;
    below += !r.collided && r.side < 0;
  }
  EXPECT_GE(safe, 19) << above << " round above, " << below << " below";
  EXPECT_GE(above, 4);
  EXPECT_GE(below, 4);

  torch::NoGradGuard no_grad;
  const ChunkPolicy regressor_policy = [&](const double* observation, double* chunk) {
    const torch::Tensor in = obs_st.transform(torch::tensor({observation[0], observation[1]}, torch::kDouble).view({1, 2}));
    const torch::Tensor a = act_st.inverse(regressor->forward(in, torch::zeros({1}, torch::kDouble))).contiguous();
    std::copy(a.data_ptr<double>(), a.data_ptr<double>() + d, chunk);
  };
  EXPECT_TRUE(rollout(task, regressor_policy, 0.0).collided);
}

TEST(ControlPolicy, TheRegressorRefusesBadRows) {
  EXPECT_THROW_WITH(fit_mse_regressor(torch::zeros({3, 2}, torch::kDouble), torch::zeros({4, 1}, torch::kDouble)),
                    InvalidArgument, "need the same n >= 1 rows");
  EXPECT_THROW_WITH(fit_mse_regressor(torch::full({3, 2}, std::nan(""), torch::kDouble), torch::zeros({3, 1}, torch::kDouble)),
                    InvalidArgument, "NaN or infinite");
}

}  // namespace
}  // namespace sdegen
