#include "sdegen/eval/classifier_cache.h"

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "sdegen/core/check.h"
#include "sdegen/train/classifier_store.h"

namespace sdegen {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

std::string cache_root() {
  if (const std::string dir = env("SDEGEN_CACHE"); !dir.empty()) return dir;
  if (const std::string dir = env("XDG_CACHE_HOME"); !dir.empty()) return dir + "/sdegen";
  if (const std::string home = env("HOME"); !home.empty()) return home + "/.cache/sdegen";
  throw IoError("no cache folder: set SDEGEN_CACHE (or XDG_CACHE_HOME or HOME)");
}

TrainedClassifier fashion_mnist_classifier(const std::string& cache_dir, int64_t threads) {
  SDEGEN_CHECK(threads >= 0, "fashion_mnist_classifier: threads must be >= 0 (0: torch's current), got ", threads);
  const std::string dir =
      (std::filesystem::path(cache_dir.empty() ? cache_root() : cache_dir) / "classifier-fashion-mnist").string();
  if (has_classifier(dir)) {
    TrainedClassifier c = load_classifier(dir);
    const ClassifierOptions& o = c.net->options;
    if (o.in_channels() != 1 || o.height() != 28 || o.width() != 28 || c.class_names != fashion_mnist_classes())
      throw InvalidArgument("the cached classifier '" + dir + "' is not a Fashion-MNIST classifier (" +
                            std::to_string(o.in_channels()) + "x" + std::to_string(o.height()) + "x" +
                            std::to_string(o.width()) + " images, classes " + join(c.class_names) +
                            "); delete it to train a new one");
    return c;
  }
  const ClassifierTrainOptions options =
      ClassifierTrainOptions().threads(threads > 0 ? threads : torch::get_num_threads());
  fmt::print(stderr,
             "no Fashion-MNIST classifier in '{}': training one for the image metrics ({} epochs, {} threads)\n", dir,
             options.epochs(), options.threads());
  std::fflush(stderr);
  ImageData train = load_fashion_mnist("train"), test = load_fashion_mnist("test");
  train.source = "fashion-mnist:train";
  test.source = "fashion-mnist:test";
  TrainedClassifier c = train_classifier(train, test, options, dir);
  fmt::print(stderr, "stored the Fashion-MNIST classifier (test accuracy {:.4f}, {:.0f} s) in '{}'\n",
             c.test_accuracy, c.seconds, dir);
  return c;
}

}  // namespace sdegen
