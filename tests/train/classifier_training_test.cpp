// The metrics' classifier trained and stored: it learns which quadrant of a noisy 8x8 image is
// bright, its random shifts move whole images, and a classifier directory round-trips and refuses
// damage by name. One training run of about a second is shared by the storage tests.
#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "sdegen/core/error.h"
#include "sdegen/train/classifier_store.h"
#include "sdegen/train/classifier_training.h"
#include "support/support.h"

namespace sdegen {
namespace {

namespace fs = std::filesystem;
using test::max_abs_diff;
using test::temp_path;

// n images per class of 8x8 grey noise in which the class's quadrant (0: top left, 1: top right,
// 2: bottom left, 3: bottom right) is bright.
ImageData quadrants(int64_t per_class, uint64_t seed, const std::string& source) {
  torch::manual_seed(seed);
  ImageData d;
  d.x = torch::full({4 * per_class, 1, 8, 8}, -0.6, torch::kFloat32) +
        0.25 * torch::randn({4 * per_class, 1, 8, 8}, torch::kFloat32);
  d.labels = torch::arange(4, torch::kLong).repeat_interleave(per_class);
  for (int64_t i = 0; i < 4 * per_class; ++i) {
    const int64_t k = d.labels[i].item<int64_t>();
    d.x[i].narrow(1, 4 * (k / 2), 4).narrow(2, 4 * (k % 2), 4).add_(1.1);
  }
  d.x.clamp_(-1, 1);
  d.class_names = {"top-left", "top-right", "bottom-left", "bottom-right"};
  d.source = source;
  return d;
}

ClassifierOptions tiny() {
  return ClassifierOptions(1, 8, 8, 4).channels({8, 16}).convs_per_level(1).feature_dim(16);
}

ClassifierTrainOptions quick() { return ClassifierTrainOptions().epochs(4).batch(32).lr(5e-3).max_shift(1).seed(5); }

// Trained once for the storage tests.
const TrainedClassifier& trained() {
  static const TrainedClassifier c =
      train_classifier(quadrants(64, 1, "train"), quadrants(32, 2, "test"), quick(), "", tiny());
  return c;
}

TEST(ClassifierTraining, LearnsWhichQuadrantIsBright) {
  const TrainedClassifier& c = trained();
  EXPECT_GE(c.test_accuracy, 0.95);
  EXPECT_EQ(c.class_names[3], "bottom-right");
  EXPECT_EQ(c.data.at("train_images"), 256);
  EXPECT_EQ(c.data.at("test"), "test");
  EXPECT_FALSE(c.net->is_training());
  // The features the metrics use: [N, feature_dim].
  torch::NoGradGuard no_grad;
  Classifier net = c.net;
  EXPECT_EQ(net->features(quadrants(2, 3, "x").x).sizes(), torch::IntArrayRef({8, 16}));
}

TEST(ClassifierTraining, IsReproducibleAndLeavesTheDefaultGeneratorAsItWas) {
  const ImageData train = quadrants(8, 1, "train"), test = quadrants(2, 2, "test");
  const ClassifierTrainOptions once = quick().epochs(1);
  torch::manual_seed(11);
  TrainedClassifier a = train_classifier(train, test, once, "", tiny());
  const double after_training = torch::rand({1}).item<double>();
  torch::manual_seed(11);
  EXPECT_EQ(torch::rand({1}).item<double>(), after_training);
  TrainedClassifier b = train_classifier(train, test, once, "", tiny());
  EXPECT_EQ(max_abs_diff(a.net->forward(test.x), b.net->forward(test.x)), 0.0);
}

TEST(ClassifierTraining, RandomShiftMovesEachImageByAtMostTheShift) {
  // One bright pixel in the middle of each image: it moves by the image's (dy, dx).
  torch::Tensor x = torch::full({200, 2, 9, 9}, -1.0, torch::kFloat32);
  x.select(2, 4).select(2, 4).fill_(1.0);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(3);
  const torch::Tensor y = random_shift(x, 2, g);
  ASSERT_EQ(y.sizes(), x.sizes());
  std::set<std::pair<int64_t, int64_t>> seen;
  for (int64_t i = 0; i < 200; ++i) {
    const torch::Tensor bright = y[i][0].gt(0).nonzero();
    ASSERT_EQ(bright.size(0), 1) << "image " << i;
    const int64_t dy = bright[0][0].item<int64_t>() - 4, dx = bright[0][1].item<int64_t>() - 4;
    EXPECT_LE(std::abs(dy), 2);
    EXPECT_LE(std::abs(dx), 2);
    EXPECT_TRUE(y[i][0].equal(y[i][1])) << "both channels move together";
    seen.insert({dy, dx});
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_TRUE(random_shift(x, 0, g).equal(x));
}

TEST(ClassifierTraining, RefusesDataItCannotLearnFrom) {
  const ImageData train = quadrants(2, 1, "a"), test = quadrants(2, 2, "b");
  ImageData unlabelled = train;
  unlabelled.labels = torch::Tensor();
  unlabelled.class_names.clear();
  EXPECT_THROW_WITH(train_classifier(unlabelled, test, quick()), InvalidArgument,
                    "a classifier needs labelled images of >= 2 classes; 'a' has no labels");
  ImageData renamed = test;
  renamed.class_names[0] = "north-west";
  EXPECT_THROW_WITH(train_classifier(train, renamed, quick()), InvalidArgument,
                    "the test images 'b' have the classes [north-west, top-right");
  EXPECT_THROW_WITH(train_classifier(train, test, quick(), "", tiny().num_classes(3)), InvalidArgument,
                    "classifier options for 1x8x8 images of 3 classes, but 'a' has 1x8x8 images of 4 classes");
  EXPECT_THROW_WITH(train_classifier(train, test, quick().epochs(0)), InvalidArgument, "epochs must be >= 1, got 0");
}

class ClassifierStore : public ::testing::Test {
 protected:
  std::string dir = temp_path("classifier_store_" +
                              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  void SetUp() override { TearDown(); }
  void TearDown() override {
    for (const char* suffix : {"", ".old", ".tmp"}) fs::remove_all(dir + suffix);
  }
};

TEST_F(ClassifierStore, RoundTripGivesIdenticalLogits) {
  save_classifier(dir, trained());
  EXPECT_TRUE(fs::is_regular_file(dir + "/weights.pt"));
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
  TrainedClassifier loaded = load_classifier(dir);
  Classifier original = trained().net;
  const torch::Tensor x = quadrants(4, 9, "x").x;
  torch::NoGradGuard no_grad;
  EXPECT_EQ(max_abs_diff(loaded.net->forward(x), original->forward(x)), 0.0);
  EXPECT_EQ(loaded.class_names, trained().class_names);
  EXPECT_EQ(loaded.test_accuracy, trained().test_accuracy);
  EXPECT_EQ(loaded.data, trained().data);
  EXPECT_EQ(to_json(loaded.training), to_json(quick()));
  // Saving again replaces it; an interrupted save's <dir>.old is still read.
  save_classifier(dir, trained());
  fs::rename(dir, dir + ".old");
  EXPECT_EQ(load_classifier(dir).class_names, trained().class_names);
}

TEST_F(ClassifierStore, ACorruptedWeightFileIsRefusedByName) {
  save_classifier(dir, trained());
  const std::string weights = dir + "/weights.pt";
  {
    // Flip the bits of one byte in the middle: the size stays, the CRC changes.
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(fs::file_size(weights) / 2);
    f.seekg(middle);
    const char byte = static_cast<char>(f.get());
    f.seekp(middle);
    f.put(static_cast<char>(~byte));
  }
  EXPECT_THROW_WITH(load_classifier(dir), IoError,
                    "classifier file '" + weights + "' is corrupt or unreadable: its CRC-32");
  fs::resize_file(weights, 100);
  EXPECT_THROW_WITH(load_classifier(dir), IoError, "it is 100 bytes");
  fs::remove(weights);
  EXPECT_THROW_WITH(load_classifier(dir), IoError, "classifier file '" + weights + "' is missing");
}

TEST_F(ClassifierStore, AConfigOfAnotherShapeIsRefusedByName) {
  save_classifier(dir, trained());
  const std::string config_path = dir + "/config.json";
  nlohmann::json config = nlohmann::json::parse(std::ifstream(config_path));
  config["net"]["channels"] = {8, 8};
  std::ofstream(config_path) << config.dump(2);
  EXPECT_THROW_WITH(load_classifier(dir), InvalidArgument,
                    "classifier file '" + dir + "/weights.pt': 'body.4.weight' is Float[16, 8, 3, 3] in the file but "
                    "Float[8, 8, 3, 3] in the network that config.json describes");
  config["net"]["depth"] = 3;
  std::ofstream(config_path) << config.dump(2);
  EXPECT_THROW_WITH(load_classifier(dir), IoError, "unknown Classifier option 'depth'");
  std::ofstream(config_path) << "{";
  EXPECT_THROW_WITH(load_classifier(dir), IoError, "classifier file '" + config_path + "' is corrupt");
}

TEST_F(ClassifierStore, RefusesMissingClassifiersAndForeignFolders) {
  EXPECT_THROW_WITH(load_classifier(dir), IoError, "no classifier in '" + dir + "'");
  fs::create_directories(dir);
  std::ofstream(dir + "/notes.txt") << "mine";
  EXPECT_THROW_WITH(save_classifier(dir, trained()), IoError,
                    "it holds 'notes.txt', which is not part of a classifier");
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
  fs::remove(dir + "/notes.txt");
  save_classifier(dir, trained());
  EXPECT_THROW_WITH(check_classifier_destination(dir, false), IoError, "already holds a classifier");
  check_classifier_destination(dir, true);
}

}  // namespace
}  // namespace sdegen
