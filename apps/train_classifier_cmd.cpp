// sdegen train-classifier: the image metrics' feature network (net/classifier.h), trained on
// Fashion-MNIST or a labelled folder of PNG images and stored as a classifier directory.
#include <fmt/core.h>

#include <cmath>
#include <filesystem>
#include <memory>

#include "apps/commands.h"
#include "sdegen/core/check.h"
#include "sdegen/data/images.h"
#include "sdegen/eval/classifier_cache.h"
#include "sdegen/train/classifier_store.h"
#include "sdegen/train/classifier_training.h"

namespace sdegen::app {
namespace {

struct ClassifierArgs {
  std::string data;
  std::string test;  // a folder of test images; empty: the shipped split, or a held-out 10%
  std::string out;   // empty: the metrics' cache folder for fashion-mnist
  int64_t image_size = 0;
  ClassifierTrainOptions options;
  bool overwrite = false;
};

constexpr double kHeldOut = 0.1;  // share of a folder held out for testing when there is no --test

void run(ClassifierArgs& a) {
  const bool fashion = a.data == "fashion-mnist";
  SDEGEN_CHECK(fashion || (!a.data.empty() && std::filesystem::is_directory(a.data)), "unknown data '", a.data,
               "'; valid: fashion-mnist, or a folder of labelled PNG images (DIR/<class>/*.png)");
  if (a.out.empty()) {
    SDEGEN_CHECK(fashion, "--out is required for a folder of images (the cache holds only Fashion-MNIST's classifier)");
    a.out = (std::filesystem::path(cache_root()) / "classifier-fashion-mnist").string();
  }
  check_classifier_destination(a.out, a.overwrite);  // before spending minutes on training

  ImageData train, test;
  if (fashion) {
    SDEGEN_CHECK(a.test.empty() && a.image_size == 0,
                 "--test and --image-size apply to a folder of images; fashion-mnist has its own 28x28 test split");
    train = load_fashion_mnist("train"), test = load_fashion_mnist("test");
    train.source = "fashion-mnist:train", test.source = "fashion-mnist:test";
  } else if (!a.test.empty()) {
    train = load_image_folder(a.data, a.image_size);
    test = load_image_folder(a.test, a.image_size);
  } else {
    const ImageData all = load_image_folder(a.data, a.image_size);
    const int64_t n = all.size(), n_test = std::max<int64_t>(1, std::llround(kHeldOut * static_cast<double>(n)));
    SDEGEN_CHECK(n - n_test >= 1, "'", a.data, "' has too few images (", n, ") to hold out a test set");
    torch::manual_seed(a.options.seed());
    const torch::Tensor order = torch::randperm(n, torch::kLong);
    train = all.select(order.narrow(0, n_test, n - n_test), a.data);
    test = all.select(order.narrow(0, 0, n_test),
                   fmt::format("{} (a held-out {:.0f}%, seed {})", a.data, 100 * kHeldOut, a.options.seed()));
  }
  const TrainedClassifier c = train_classifier(train, test, a.options, a.out);
  const std::vector<int64_t> s = train.shape();
  fmt::print("trained a classifier on '{}' ({} images of {}x{}x{}, {} classes) in {:.1f} s\n", a.data, train.size(),
             s[0], s[1], s[2], train.num_classes(), c.seconds);
  fmt::print("test accuracy {:.4f} on {} images ('{}')\n", c.test_accuracy, test.size(), test.source);
  fmt::print("classifier: {}\n", a.out);
}

}  // namespace

void register_train_classifier(CLI::App& app) {
  auto a = std::make_shared<ClassifierArgs>();
  CLI::App* cmd = app.add_subcommand(
      "train-classifier", "Train the image metrics' classifier (its features give the Frechet distance)");
  cmd->option_defaults()->always_capture_default();
  cmd->add_option("--data", a->data, "Labelled images: fashion-mnist, or a folder DIR/<class>/*.png")->required();
  cmd->add_option("--test", a->test, "A folder of test images (default: a seeded 10% of --data held out)");
  cmd->add_option("--out", a->out,
                  "Classifier directory (default for fashion-mnist: the cache the image metrics read, "
                  "$SDEGEN_CACHE/classifier-fashion-mnist)");
  cmd->add_option("--image-size", a->image_size, "Resize a folder's images to this size (0: as they are)");
  cmd->add_option("--epochs", a->options.epochs(), "Passes over the training images")->check(positive());
  cmd->add_option("--batch", a->options.batch(), "Images per step")->check(positive());
  cmd->add_option("--lr", a->options.lr(), "Adam's initial learning rate (cosine decay to 0)")->check(positive());
  cmd->add_option("--max-shift", a->options.max_shift(),
                  "Augmentation: random shifts of up to this many pixels (0: off)");
  cmd->add_option("--seed", a->options.seed(), "Random seed (weights, batches, shifts, held-out images)")
      ->check(seed_value());
  cmd->add_option("--threads", a->options.threads(), "Intra-op threads")->check(thread_count());
  cmd->add_flag("--overwrite", a->overwrite, "Replace a classifier already in --out");
  cmd->callback([a] { run(*a); });
}

}  // namespace sdegen::app
