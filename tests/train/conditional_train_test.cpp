// Training with class labels: the trainer draws each row's label with it, the model learns one
// density per class and the unconditional mixture in the same weights, and a checkpoint brings
// the conditional model back.
#include "sdegen/model/factory.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/trainer.h"
#include "sdegen/core/error.h"
#include "support/support.h"
#include "train/tiny_model.h"

namespace sdegen {
namespace {

using test::TempDir;

// Class 0 around -1.5, class 1 around +1.5 (1-D, std 0.3), half each.
struct TwoClasses {
  torch::Tensor x, labels;
};
TwoClasses two_classes(int64_t n) {
  const torch::Tensor labels = torch::arange(n, torch::kLong) % 2;
  const torch::Tensor x = (3.0 * labels.to(torch::kDouble) - 1.5 + 0.3 * torch::randn({n}, torch::kDouble)).unsqueeze(1);
  return {x, labels};
}

ModelPtr conditional_flow() {
  return make_model(model_config("flow", 1, {{"net", {{"num_classes", 2}, {"width", 32}, {"x_init_scale", 1.0}}}}));
}

TEST(ConditionalTraining, LearnsEachClassAndTheMixtureInOneNetwork) {
  torch::manual_seed(11);
  const TwoClasses data = two_classes(512), val = two_classes(128);
  TempDir dir("conditional");
  TrainSetup setup;
  setup.progress = nullptr;
  setup.labels = data.labels;
  setup.val = val.x;
  setup.val_labels = val.labels;
  const ModelPtr model = conditional_flow();
  const TrainResult r =
      train(model, data.x, TrainOptions().steps(1500).batch(128).lr(5e-3).val_every(500).seed(3), dir.str(), setup);
  ASSERT_EQ(r.steps, 1500);
  ASSERT_FALSE(r.validation.empty());
  EXPECT_TRUE(std::isfinite(r.validation[0].value));

  // The checkpoint rebuilds the conditional model.
  const ModelPtr loaded = make_model(load_checkpoint_config(dir.str()).at("model"));
  load_weights(dir.str(), *loaded);
  ASSERT_EQ(loaded->num_classes(), 2);
  const torch::Tensor x0 = sample_model_prior(*loaded, 2000);
  SamplerOptions s;
  s.solver = "rk4";
  s.steps = 20;
  auto mean_of = [&](const Guidance& g) {
    const Solution sol = generate(*loaded, x0, s, g);
    EXPECT_TRUE(sol.ok()) << sol.message;
    return sol.x.mean().item<double>();
  };
  const torch::Tensor zeros = torch::zeros({2000}, torch::kLong), ones = torch::ones({2000}, torch::kLong);
  // Each class at w = 1 is its own mode; the unconditional model (w = 0) is the even mixture.
  EXPECT_NEAR(mean_of({zeros, 1.0}), -1.5, 0.25);
  EXPECT_NEAR(mean_of({ones, 1.0}), 1.5, 0.25);
  EXPECT_NEAR(mean_of({zeros, 0.0}), 0.0, 0.3);
  // Guidance beyond 1 pushes a class further from the other one.
  EXPECT_LT(mean_of({zeros, 3.0}), mean_of({zeros, 1.0}));
}

TEST(ConditionalTraining, RefusesMissingOrWrongLabels) {
  const TwoClasses data = two_classes(16);
  TempDir dir("conditional_refused");
  TrainSetup setup;
  setup.progress = nullptr;
  const TrainOptions o = TrainOptions().steps(2).batch(8);
  EXPECT_THROW_WITH(train(conditional_flow(), data.x, o, dir.str(), setup), InvalidArgument,
                    "conditioned on 2 classes and needs training labels");
  setup.labels = data.labels + 1;
  EXPECT_THROW_WITH(train(conditional_flow(), data.x, o, dir.str(), setup), InvalidArgument,
                    "training labels must lie in [0, 2), got values in [1, 2]");
  setup.labels = data.labels.narrow(0, 0, 8);
  EXPECT_THROW_WITH(train(conditional_flow(), data.x, o, dir.str(), setup), InvalidArgument,
                    "training labels must be integers of shape [16]");
  setup.labels = data.labels;
  EXPECT_THROW_WITH(train(make_model(model_config("flow", 1)), data.x, o, dir.str(), setup), InvalidArgument,
                    "the model is unconditional but training labels were given");
}

}  // namespace
}  // namespace sdegen
