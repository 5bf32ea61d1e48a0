// The reference figures of the image metrics on Fashion-MNIST: the cached classifier's test
// accuracy (trained on first use, see eval/classifier_cache.h), and the Frechet distances that
// real images reach: training against test images at equal N, and the test set's two halves.
// Usage: example_image_metric_floors [classifier_dir] [threads]
// (classifier_dir: a directory written by sdegen train-classifier; empty or absent: the cache's)
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "sdegen/data/images.h"
#include "sdegen/eval/classifier_cache.h"
#include "sdegen/eval/image_metrics.h"
#include "sdegen/train/classifier_store.h"

int main(int argc, char** argv) {
  using namespace sdegen;
  try {
    const int threads = argc > 2 ? std::stoi(argv[2]) : 1;
    torch::set_num_threads(threads);
    const std::string dir = argc > 1 ? argv[1] : "";
    TrainedClassifier c = !dir.empty() ? load_classifier(dir) : fashion_mnist_classifier("", threads);
    std::cout << "classifier: test accuracy " << c.test_accuracy << ", trained in " << c.seconds << " s\n";
    const ImageData train = load_fashion_mnist("train"), test = load_fashion_mnist("test");
    const auto start = std::chrono::steady_clock::now();
    std::cout << "accuracy on the whole test set: " << class_accuracy(c.net, test.x, test.labels) << "\n";
    for (const int64_t n : {1000, 5000})
      for (const uint64_t seed : {0, 1})
        std::cout << "fd_floor(train vs test, N = " << n << ", seed " << seed
                  << ") = " << fd_floor(c.net, train.x, test.x, n, seed) << "\n";
    const torch::Tensor f = image_features(c.net, test.x);
    std::cout << "FD(test[0:5000], test[5000:10000]) = "
              << frechet_distance(f.narrow(0, 0, 5000), f.narrow(0, 5000, 5000)) << "\n";
    torch::manual_seed(0);
    const torch::Tensor shuffled = f.index_select(0, torch::randperm(f.size(0), torch::kLong));
    std::cout << "FD(two random halves of test) = "
              << frechet_distance(shuffled.narrow(0, 0, 5000), shuffled.narrow(0, 5000, 5000)) << "\n";
    // The scale of a failure: uniform noise images, and the test images blurred by a 3x3 box.
    const torch::Tensor noise = torch::rand({5000, 1, 28, 28}, torch::kFloat32) * 2 - 1;
    std::cout << "FD(test[0:5000], uniform noise) = "
              << frechet_distance(f.narrow(0, 0, 5000), image_features(c.net, noise)) << "\n";
    const torch::Tensor blurred = torch::avg_pool2d(test.x.narrow(0, 5000, 5000), 3, 1, 1, false, false);
    std::cout << "FD(test[0:5000], test[5000:10000] blurred 3x3) = "
              << frechet_distance(f.narrow(0, 0, 5000), image_features(c.net, blurred)) << "\n";
    std::cout << "predicted classes of the noise:";
    for (const int64_t k : predicted_class_histogram(c.net, noise)) std::cout << " " << k;
    std::cout << "\n";
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "metrics computed in " << s << " s\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
