// The image metrics: the Frechet distance against closed forms (uncorrelated columns built from a
// Hadamard matrix, whose sample covariance is exactly diagonal; 2-D features through the 2x2
// identity tr sqrt(M) = sqrt(tr M + 2 sqrt(det M))), its symmetry and mean shifts, and its
// refusals; class accuracy, the predicted-class histogram and the floor on cases with a known
// answer; where the cached Fashion-MNIST classifier lives, and that a foreign one is refused.
// Untrained tiny classifiers keep the file well under a second.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "sdegen/core/error.h"
#include "sdegen/eval/classifier_cache.h"
#include "sdegen/eval/image_metrics.h"
#include "sdegen/train/classifier_store.h"
#include "support/support.h"

namespace sdegen {
namespace {

// An 8x8 Sylvester-Hadamard matrix: columns 1..7 are +-1, centred and mutually orthogonal.
torch::Tensor hadamard8() {
  torch::Tensor h = torch::ones({1, 1}, torch::kFloat64);
  for (int k = 0; k < 3; ++k) h = torch::cat({torch::cat({h, h}, 1), torch::cat({h, -h}, 1)}, 0);
  return h;
}

TEST(FrechetDistance, IsZeroForIdenticalSets) {
  const torch::Tensor a = torch::randn({300, 12}, torch::kFloat64) * 3 + 1;
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-9);
  EXPECT_NEAR(frechet_distance(a.to(torch::kFloat32), a.to(torch::kFloat32)), 0.0, 1e-9);
}

TEST(FrechetDistance, MatchesTheClosedFormForUncorrelatedColumns) {
  const torch::Tensor h = hadamard8();
  const std::vector<double> s = {0.5, 2.0, 1.5}, t = {1.0, 0.25, 1.5}, mu = {1, -2, 0.5}, nu = {0, 1, 3};
  torch::Tensor a = torch::empty({8, 3}, torch::kFloat64), b = torch::empty({8, 3}, torch::kFloat64);
  for (int i = 0; i < 3; ++i) {
    a.select(1, i).copy_(mu[i] + s[i] * h.select(1, 1 + i));
    b.select(1, i).copy_(nu[i] + t[i] * h.select(1, 4 + i));
  }
  // Each column has sample variance scale^2 * 8 / 7 (n - 1 normalisation); covariances are 0.
  double expected = 0;
  for (int i = 0; i < 3; ++i) {
    const double va = s[i] * s[i] * 8 / 7, vb = t[i] * t[i] * 8 / 7;
    expected += (mu[i] - nu[i]) * (mu[i] - nu[i]) + va + vb - 2 * std::sqrt(va * vb);
  }
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-10 * expected);
}

TEST(FrechetDistance, MatchesTheTwoByTwoClosedFormForCorrelatedFeatures) {
  const torch::Tensor a = torch::randn({60, 2}, torch::kFloat64).mm(torch::tensor({{1.0, 0.8}, {0.0, 0.6}}));
  const torch::Tensor b = torch::randn({40, 2}, torch::kFloat64).mm(torch::tensor({{2.0, -0.5}, {0.3, 1.0}})) + 0.7;
  // Means and covariances by explicit sums, then tr sqrt(S_a^{1/2} S_b S_a^{1/2}) from
  // tr = tr(S_a S_b) and det = det S_a det S_b of that 2x2 product.
  auto stats = [](const torch::Tensor& x, double m[2], double c[2][2]) {
    const int64_t n = x.size(0);
    for (int i = 0; i < 2; ++i) {
      m[i] = 0;
      for (int64_t r = 0; r < n; ++r) m[i] += x[r][i].item<double>() / n;
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        c[i][j] = 0;
        for (int64_t r = 0; r < n; ++r) c[i][j] += (x[r][i].item<double>() - m[i]) * (x[r][j].item<double>() - m[j]);
        c[i][j] /= n - 1;
      }
  };
  double ma[2], mb[2], ca[2][2], cb[2][2];
  stats(a, ma, ca);
  stats(b, mb, cb);
  const double tr_ab = ca[0][0] * cb[0][0] + ca[0][1] * cb[1][0] + ca[1][0] * cb[0][1] + ca[1][1] * cb[1][1];
  const double det = (ca[0][0] * ca[1][1] - ca[0][1] * ca[1][0]) * (cb[0][0] * cb[1][1] - cb[0][1] * cb[1][0]);
  const double tr_sqrt = std::sqrt(tr_ab + 2 * std::sqrt(det));
  const double expected = (ma[0] - mb[0]) * (ma[0] - mb[0]) + (ma[1] - mb[1]) * (ma[1] - mb[1]) + ca[0][0] + ca[1][1] +
                          cb[0][0] + cb[1][1] - 2 * tr_sqrt;
  EXPECT_GT(expected, 0.5);
  EXPECT_NEAR(frechet_distance(a, b), expected, 1e-10 * expected);
}

TEST(FrechetDistance, IsSymmetricAndAShiftedMeanAddsItsSquaredLength) {
  const torch::Tensor a = torch::randn({200, 10}, torch::kFloat64);
  const torch::Tensor b = torch::randn({150, 10}, torch::kFloat64).mm(torch::randn({10, 10}, torch::kFloat64) * 0.5);
  const double ab = frechet_distance(a, b);
  EXPECT_GT(ab, 1.0);
  EXPECT_NEAR(frechet_distance(b, a), ab, 1e-9 * ab);
  const torch::Tensor shift = torch::linspace(-1, 2, 10, torch::kFloat64);
  EXPECT_NEAR(frechet_distance(a, a + shift), shift.square().sum().item<double>(), 1e-9);
  // The statistics form gives the same number as the feature form.
  EXPECT_NEAR(frechet_distance(feature_stats(a), feature_stats(b)), ab, 1e-12 * ab);
}

TEST(FrechetDistance, RefusesWhatItCannotMeasure) {
  const torch::Tensor a = torch::randn({10, 3}, torch::kFloat64);
  EXPECT_THROW_WITH(frechet_distance(a.narrow(0, 0, 1), a), InvalidArgument,
                    "the first feature set has 1 row(s); a covariance needs at least 2");
  EXPECT_THROW_WITH(frechet_distance(a, torch::randn({10, 4}, torch::kFloat64)), InvalidArgument,
                    "the feature sets are [10, 3] and [10, 4]");
  torch::Tensor bad = a.clone();
  bad[4][1] = NAN;
  EXPECT_THROW_WITH(frechet_distance(a, bad), InvalidArgument, "the second feature set holds NaN or infinite values");
  EXPECT_THROW_WITH(frechet_distance(torch::randn({10}), a), InvalidArgument,
                    "the first feature set must be a matrix [N, F], got [10]");
}

// n 8x8 images, each a flat grey level from [lo, hi] plus a little noise: images that differ as
// wholes, which an untrained net's pooled features can tell apart (i.i.d. noise images all pool
// to about the same features).
torch::Tensor levels(int64_t n, double lo, double hi) {
  const torch::Tensor level = lo + (hi - lo) * torch::rand({n, 1, 1, 1}, torch::kFloat32);
  return (level + 0.1 * torch::randn({n, 1, 8, 8}, torch::kFloat32)).clamp(-1, 1);
}

// An untrained classifier whose BatchNorm statistics have been fitted to such images.
Classifier tiny_classifier(int64_t classes = 3) {
  Classifier net(ClassifierOptions(1, 8, 8, classes).channels({4, 8}).convs_per_level(1).feature_dim(6));
  torch::NoGradGuard no_grad;
  for (int k = 0; k < 30; ++k) net->forward(levels(32, -1, 1));
  net->eval();
  return net;
}

TEST(ImageMetrics, AConstantClassifierGivesTheKnownAccuracyAndHistogram) {
  torch::manual_seed(3);
  Classifier net = tiny_classifier(3);
  {
    // Logits = bias only: every image is predicted as class 1.
    torch::NoGradGuard no_grad;
    net->logit_layer->weight.zero_();
    net->logit_layer->bias.copy_(torch::tensor({0.0, 2.0, -1.0}));
  }
  const torch::Tensor images = torch::rand({5, 1, 8, 8}, torch::kFloat32) * 2 - 1;
  EXPECT_TRUE(predicted_classes(net, images).eq(1).all().item<bool>());
  EXPECT_EQ(predicted_class_histogram(net, images), (std::vector<int64_t>{0, 5, 0}));
  EXPECT_DOUBLE_EQ(class_accuracy(net, images, torch::tensor({1, 0, 1, 2, 1}, torch::kLong)), 0.6);
  EXPECT_THROW_WITH(class_accuracy(net, images, torch::tensor({1, 0, 3, 2, 1}, torch::kLong)), InvalidArgument,
                    "labels must lie in [0, 3), got [0, 3]");
  EXPECT_THROW_WITH(class_accuracy(net, images, torch::tensor({1, 0}, torch::kLong)), InvalidArgument,
                    "expected one label per image (5)");
}

TEST(ImageMetrics, FeaturesHaveTheStatedShapeAndTheFloorOfASetAgainstItselfIsZero) {
  torch::manual_seed(4);
  Classifier net = tiny_classifier();
  const torch::Tensor images = levels(40, -1, 1);
  const torch::Tensor f = image_features(net, images);
  EXPECT_EQ(f.sizes(), torch::IntArrayRef({40, 6}));
  EXPECT_EQ(f.scalar_type(), torch::kFloat32);
  EXPECT_GT(f.std(0).max().item<double>(), 0.0) << "the features vary over the images";
  // All n images of the same set on both sides: only the order differs.
  EXPECT_NEAR(fd_floor(net, images, images, 40), 0.0, 1e-9);
  // Darker images are a positive distance away, reproducibly by seed.
  const torch::Tensor other = levels(40, -1, 0);
  const double floor = fd_floor(net, images, other, 20, 7);
  EXPECT_GT(floor, 0.0);
  EXPECT_DOUBLE_EQ(fd_floor(net, images, other, 20, 7), floor);
  EXPECT_THROW_WITH(fd_floor(net, images, other.narrow(0, 0, 10), 20), InvalidArgument,
                    "n = 20 images, but there are 40 training and 10 test images");
  EXPECT_THROW_WITH(image_features(net, torch::zeros({2, 3, 8, 8}, torch::kFloat32)), InvalidArgument,
                    "the classifier takes images [N, 1, 8, 8], got [2, 3, 8, 8]");
}

// Sets (or, with nullopt, unsets) an environment variable for the scope of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value->c_str(), 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(ClassifierCache, FolderFollowsTheEnvironment) {
  ScopedEnv cache("SDEGEN_CACHE", "/c"), xdg("XDG_CACHE_HOME", "/x"), home("HOME", "/h");
  EXPECT_EQ(cache_root(), "/c");
  {
    ScopedEnv unset("SDEGEN_CACHE", "");
    EXPECT_EQ(cache_root(), "/x/sdegen");
    ScopedEnv unset_xdg("XDG_CACHE_HOME", std::nullopt);
    EXPECT_EQ(cache_root(), "/h/.cache/sdegen");
  }
}

TEST(ClassifierCache, AForeignCachedClassifierIsRefusedNotReplaced) {
  const std::string root = test::temp_path("classifier_cache"), dir = root + "/classifier-fashion-mnist";
  std::filesystem::remove_all(root);
  TrainedClassifier other;
  other.net = tiny_classifier(3);
  other.class_names = {"a", "b", "c"};
  save_classifier(dir, other);
  EXPECT_THROW_WITH(fashion_mnist_classifier(root), InvalidArgument,
                    "the cached classifier '" + dir + "' is not a Fashion-MNIST classifier (1x8x8 images, classes a, "
                    "b, c); delete it to train a new one");
  EXPECT_EQ(load_classifier(dir).class_names, other.class_names);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace sdegen
