// The metrics' classifier network: shapes for grey and RGB images of several sizes, float32
// whatever torch's default, features that do not depend on the rest of the batch in eval mode,
// batched classification, its configuration as JSON, and its refusals.
#include <nlohmann/json.hpp>

#include "sdegen/core/error.h"
#include "sdegen/net/classifier.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

ClassifierOptions small(int64_t channels, int64_t size, int64_t classes = 4) {
  return ClassifierOptions(channels, size, size, classes).channels({4, 8, 8}).convs_per_level(1).feature_dim(5);
}

TEST(Classifier, GivesFeaturesAndLogitsOfTheStatedShapes) {
  for (const auto& [c, size] : std::vector<std::pair<int64_t, int64_t>>{{1, 8}, {1, 28}, {3, 28}, {3, 7}, {1, 1}}) {
    Classifier net(small(c, size));
    const torch::Tensor x = torch::rand({3, c, size, size}) * 2 - 1;  // float64: the default here
    const torch::Tensor f = net->features(x), logits = net->forward(x);
    EXPECT_EQ(f.sizes(), torch::IntArrayRef({3, 5})) << c << "x" << size;
    EXPECT_EQ(logits.sizes(), torch::IntArrayRef({3, 4})) << c << "x" << size;
    EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
    EXPECT_TRUE((f >= 0).all().item<bool>()) << "features are taken after the ReLU";
  }
  // The default architecture on Fashion-MNIST's shape.
  Classifier net(ClassifierOptions(1, 28, 28, 10));
  EXPECT_EQ(net->features(torch::zeros({2, 1, 28, 28})).sizes(), torch::IntArrayRef({2, 128}));
  for (const auto& p : net->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

TEST(Classifier, FeaturesOfAnImageDoNotDependOnTheRestOfTheBatch) {
  Classifier net(small(1, 8));
  net->eval();
  const torch::Tensor x = torch::rand({6, 1, 8, 8}, torch::kFloat32) * 2 - 1;
  EXPECT_LT(max_abs_diff(net->features(x).narrow(0, 2, 1), net->features(x.narrow(0, 2, 1))), 1e-6);
}

TEST(Classifier, ClassifyBatchesInEvalModeAndRestoresTheMode) {
  Classifier net(ClassifierOptions(1, 8, 8, 3).channels({4}).convs_per_level(1).feature_dim(5).dropout(0.5));
  net->train();
  const torch::Tensor x = torch::rand({7, 1, 8, 8}, torch::kFloat32) * 2 - 1;
  const ClassifierOutput all = classify(net, x, 7), batched = classify(net, x, 3);
  EXPECT_TRUE(net->is_training());
  EXPECT_LT(max_abs_diff(all.logits, batched.logits), 1e-6);
  EXPECT_FALSE(all.logits.requires_grad());
  // Dropout is off: the same as an eval-mode forward.
  net->eval();
  EXPECT_LT(max_abs_diff(all.features, net->features(x)), 1e-6);
  EXPECT_LT(max_abs_diff(all.logits, net->logits_from_features(all.features)), 1e-6);
}

TEST(Classifier, ConfigRoundTripsThroughJson) {
  const ClassifierOptions o = small(3, 28).dropout(0.3);
  const nlohmann::json j = to_json(o);
  EXPECT_EQ(j.at("type"), "classifier");
  EXPECT_EQ(to_json(classifier_options_from_json(j)), j);
  nlohmann::json extra = j;
  extra["width_mult"] = 2;
  EXPECT_THROW_WITH(classifier_options_from_json(extra), InvalidArgument, "unknown Classifier option 'width_mult'");
  nlohmann::json missing = j;
  missing.erase("feature_dim");
  EXPECT_THROW_WITH(classifier_options_from_json(missing), InvalidArgument, "missing key 'feature_dim'");
  nlohmann::json typed = j;
  typed["channels"] = "32,64";
  EXPECT_THROW_WITH(classifier_options_from_json(typed), InvalidArgument, "'channels' must be an array of integers");
}

TEST(Classifier, RefusesBadOptionsAndInputs) {
  EXPECT_THROW_WITH(Classifier(small(1, 8).channels({4, 0, 8})), InvalidArgument,
                    "every entry of channels must be >= 1, got [4, 0, 8]");
  EXPECT_THROW_WITH(Classifier(small(1, 8, 1)), InvalidArgument, "num_classes must be >= 2, got 1");
  EXPECT_THROW_WITH(Classifier(small(1, 8).dropout(1.0)), InvalidArgument, "dropout must be in [0, 1), got 1");
  EXPECT_THROW_WITH(Classifier(small(1, 8).channels({})), InvalidArgument, "channels needs one entry per level");
  Classifier net(small(1, 8));
  EXPECT_THROW_WITH(net->forward(torch::zeros({2, 1, 7, 8})), InvalidArgument,
                    "expected images [B, 1, 8, 8], got [2, 1, 7, 8]");
  EXPECT_THROW_WITH(net->forward(torch::zeros({2, 1, 8, 8}, torch::kLong)), InvalidArgument,
                    "expected floating-point images, got Long");
}

}  // namespace
}  // namespace sdegen
