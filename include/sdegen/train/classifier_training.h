#pragma once
// Training the image metrics' classifier (net/classifier.h) on labelled images: Adam with a
// cosine decay over the run, cross-entropy, optional augmentation by random shifts, a progress
// line per epoch on stderr, and the accuracy on held-out test images after each epoch.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sdegen/data/images.h"
#include "sdegen/net/classifier.h"

namespace sdegen {

struct ClassifierTrainOptions {
  // Passes over the training images, >= 1. Five take the default network to 93.0% on
  // Fashion-MNIST in 5 minutes (2 threads, on a 2-core machine busy with other builds).
  TORCH_ARG(int64_t, epochs) = 5;
  TORCH_ARG(int64_t, batch) = 128;   // images per step, >= 1
  TORCH_ARG(double, lr) = 2e-3;      // Adam's learning rate at the start, > 0; cosine decay to 0 by the end
  // Each training image is moved by up to this many pixels in x and y (uniform, independently per
  // image; edge pixels repeat into the gap), >= 0; 0 means no augmentation. Images keep their size.
  // Off: in 5 epochs on Fashion-MNIST shifts cost accuracy (1 pixel 92.5%, 2 pixels 92.4%, none
  // 92.9%); for small folders, where the net overfits, they may pay.
  TORCH_ARG(int64_t, max_shift) = 0;
  TORCH_ARG(uint64_t, seed) = 0;     // initial weights, batch order, shifts and dropout
  TORCH_ARG(int64_t, threads) = 1;   // torch intra-op threads during training, >= 1
};

// Throws InvalidArgument naming the first option out of range.
void check_classifier_train_options(const ClassifierTrainOptions& options);
nlohmann::json to_json(const ClassifierTrainOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
ClassifierTrainOptions classifier_train_options_from_json(const nlohmann::json& json);

// A trained classifier and what it was trained on: what a classifier directory holds
// (train/classifier_store.h).
struct TrainedClassifier {
  Classifier net{nullptr};
  std::vector<std::string> class_names;
  // {"train": source, "test": source, "train_images": N, "test_images": M, "shape": [C, H, W]}
  nlohmann::json data = nlohmann::json::object();
  ClassifierTrainOptions training;
  double test_accuracy = 0;  // share of the test images classified correctly
  double seconds = 0;        // training time
};

// Trains a classifier of `net` options (default: ClassifierOptions(C, H, W, classes) for the
// images' shape) on `train`, reports each epoch on stderr and measures the accuracy on `test` at
// the end. With a non-empty out_dir the classifier is saved there (save_classifier).
// Refused (InvalidArgument, naming the data): unlabelled images, fewer than 2 classes, a test set
// whose shape or class names differ from the training set's, net options for another shape or
// class count, and an empty set. A loss that turns NaN or infinite is a NumericError.
TrainedClassifier train_classifier(const ImageData& train, const ImageData& test,
                                   const ClassifierTrainOptions& options = {}, const std::string& out_dir = "",
                                   const std::optional<ClassifierOptions>& net = std::nullopt);

// Images moved by up to max_shift pixels each (per image, uniform in [-max_shift, max_shift] in
// each direction, edge pixels repeated), drawn from `generator`. The identity when max_shift = 0.
torch::Tensor random_shift(const torch::Tensor& images, int64_t max_shift, at::Generator& generator);

}  // namespace sdegen
