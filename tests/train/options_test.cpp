// Training options: defaults, validation messages, JSON round trip, learning-rate schedules.
#include <nlohmann/json.hpp>

#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/train/options.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(TrainOptions, DefaultsAreTheDocumentedOnes) {
  const TrainOptions o;
  EXPECT_EQ(o.steps(), 2000);
  EXPECT_EQ(o.batch(), 125);
  EXPECT_DOUBLE_EQ(o.lr(), 1e-3);
  EXPECT_EQ(o.optimizer(), "adam");
  EXPECT_EQ(o.weight_decay(), 0.0);
  EXPECT_EQ(o.warmup_steps(), 0);
  EXPECT_EQ(o.decay(), "none");
  EXPECT_EQ(o.grad_clip(), 0.0);
  EXPECT_DOUBLE_EQ(o.ema_decay(), 0.999);
  EXPECT_EQ(o.log_every(), 50);
  EXPECT_EQ(o.checkpoint_every(), 0);
  EXPECT_EQ(o.threads(), 1);
  EXPECT_NO_THROW(check_train_options(o));
}

TEST(TrainOptions, OutOfRangeValuesAreRefusedByName) {
  EXPECT_THROW_WITH(check_train_options(TrainOptions().steps(0)), InvalidArgument, "'steps'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().batch(0)), InvalidArgument, "'batch'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().lr(-1)), InvalidArgument, "'lr'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().lr(NAN)), InvalidArgument, "'lr'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().optimizer("sgd")), InvalidArgument,
                    "unknown optimizer 'sgd'; valid: adam, adamw");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().decay("step")), InvalidArgument,
                    "valid: none, cosine, linear");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().beta2(1.0)), InvalidArgument, "'beta2'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().steps(10).warmup_steps(11)), InvalidArgument,
                    "'warmup_steps'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().lr_min(1.0)), InvalidArgument, "'lr_min'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().grad_clip(-1)), InvalidArgument, "'grad_clip'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().ema_decay(1.0)), InvalidArgument, "'ema_decay'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().log_every(0)), InvalidArgument, "'log_every'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().checkpoint_every(-1)), InvalidArgument,
                    "'checkpoint_every'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().val_every(-1)), InvalidArgument, "'val_every'");
  EXPECT_THROW_WITH(check_train_options(TrainOptions().threads(0)), InvalidArgument, "'threads'");
}

TEST(TrainOptions, JsonRoundTrip) {
  const TrainOptions o = TrainOptions()
                             .steps(77)
                             .batch(9)
                             .lr(3e-4)
                             .optimizer("adamw")
                             .weight_decay(1e-4)
                             .beta1(0.8)
                             .beta2(0.99)
                             .warmup_steps(7)
                             .decay("cosine")
                             .lr_min(1e-5)
                             .grad_clip(2.5)
                             .ema_decay(0.99)
                             .seed(18446744073709551615ULL)
                             .log_every(3)
                             .checkpoint_every(11)
                             .val_every(5)
                             .threads(2);
  const nlohmann::json j = to_json(o);
  EXPECT_EQ(j.at("betas"), nlohmann::json({0.8, 0.99}));
  const TrainOptions back = train_options_from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.seed(), o.seed());
}

TEST(TrainOptions, JsonRefusesUnknownMissingAndIllTypedKeys) {
  nlohmann::json j = to_json(TrainOptions());
  j["momentum"] = 0.9;
  EXPECT_THROW_WITH(train_options_from_json(j), InvalidArgument, "unknown train option 'momentum'");
  j = to_json(TrainOptions());
  j.erase("lr");
  EXPECT_THROW_WITH(train_options_from_json(j), InvalidArgument, "missing key 'lr'");
  j = to_json(TrainOptions());
  j["steps"] = "many";
  EXPECT_THROW_WITH(train_options_from_json(j), InvalidArgument, "'steps' must be an integer");
  j = to_json(TrainOptions());
  j["betas"] = {0.9};
  EXPECT_THROW_WITH(train_options_from_json(j), InvalidArgument, "'betas'");
  j = to_json(TrainOptions());
  j["seed"] = -3;
  EXPECT_THROW_WITH(train_options_from_json(j), InvalidArgument, "'seed'");
}

TEST(LearningRate, LinearWarmupThenCosineToLrMin) {
  const TrainOptions o = TrainOptions().lr(1e-3).lr_min(1e-4).steps(110).warmup_steps(10).decay("cosine");
  EXPECT_DOUBLE_EQ(learning_rate(o, 1), 1e-4);
  EXPECT_DOUBLE_EQ(learning_rate(o, 5), 5e-4);
  EXPECT_DOUBLE_EQ(learning_rate(o, 10), 1e-3);
  // p = (60 - 10) / 100 = 1/2: half way between lr and lr_min.
  EXPECT_NEAR(learning_rate(o, 60), 5.5e-4, 1e-15);
  // p = 1/4: lr_min + span (1 + cos(pi / 4)) / 2.
  EXPECT_NEAR(learning_rate(o, 35), 1e-4 + 9e-4 * 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_NEAR(learning_rate(o, 110), 1e-4, 1e-15);
  EXPECT_THROW_WITH(learning_rate(o, 0), InvalidArgument, "step must be in [1, 110]");
  EXPECT_THROW_WITH(learning_rate(o, 111), InvalidArgument, "step must be in [1, 110]");
}

TEST(LearningRate, LinearDecayAndConstant) {
  TrainOptions o = TrainOptions().lr(2e-3).steps(100).decay("linear");
  EXPECT_NEAR(learning_rate(o, 25), 1.5e-3, 1e-15);
  EXPECT_NEAR(learning_rate(o, 100), 0.0, 1e-15);
  o.decay("none");
  EXPECT_EQ(learning_rate(o, 1), 2e-3);
  EXPECT_EQ(learning_rate(o, 100), 2e-3);
  // Warm-up over every step: the last step reaches the peak.
  o.warmup_steps(100);
  EXPECT_DOUBLE_EQ(learning_rate(o, 100), 2e-3);
  EXPECT_DOUBLE_EQ(learning_rate(o, 50), 1e-3);
}

}  // namespace
}  // namespace sdegen
