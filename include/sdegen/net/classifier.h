#pragma once
// A small convolutional image classifier whose penultimate activations are the feature space of
// the image metrics (eval/image_metrics.h): the Frechet distance, class accuracy and the
// histogram of predicted classes. Inception's features are badly biased on small grey images
// (docs/anchors.md), so each dataset gets a classifier of its own.
//
//   x [B, C, H, W] in [-1, 1]
//   -> per level: convs_per_level x (conv3x3 -> BatchNorm -> ReLU), then a 2x2 max-pool (ceil,
//      so odd sizes keep their edge: 28 -> 14 -> 7 -> 4) between levels
//   -> global average pool -> dropout -> Linear -> ReLU = features [B, feature_dim]
//   -> dropout -> Linear = logits [B, num_classes]
//
// BatchNorm rather than a per-image norm: with GroupNorm every image's channel means were nearly
// equal before the global average pool and the net learnt far slower (on 20,000 Fashion-MNIST
// images, 2 epochs: 76% against 84%); a per-image norm would also hide an image's overall
// brightness and contrast from the features, which the metrics should see. In eval mode (what
// classify() and the metrics use) the running statistics are fixed, so an image's features never
// depend on the rest of its batch. Parameters are float32 whatever torch's default dtype.
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <iosfwd>
#include <vector>

namespace sdegen {

struct ClassifierOptions {
  ClassifierOptions(int64_t in_channels, int64_t height, int64_t width, int64_t num_classes)
      : in_channels_(in_channels), height_(height), width_(width), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_channels);  // image channels, >= 1 (1 grey, 3 RGB)
  TORCH_ARG(int64_t, height);       // >= 1
  TORCH_ARG(int64_t, width);        // >= 1
  TORCH_ARG(int64_t, num_classes);  // >= 2
  // Channels per level, one entry per level (each >= 1); every level but the last halves the
  // image: 28x28 -> 14 -> 7 -> 4. Narrow at full size, where a conv costs the most. Chosen on
  // Fashion-MNIST (5 epochs, shifts of up to 2 pixels, one thread, a loaded machine): these with
  // two convs per level reached 92.4% at 49 s an epoch; with one conv 90.3% at 41 s;
  // {32, 64, 128, 256} with one conv 91.3% at 67 s.
  TORCH_ARG(std::vector<int64_t>, channels) = std::vector<int64_t>{16, 32, 64, 128};
  TORCH_ARG(int64_t, convs_per_level) = 2;  // conv-norm-ReLU units per level, >= 1
  // Width of the penultimate layer, the metrics' feature space, >= 1. 128 keeps the Frechet
  // distance's 128x128 covariances well estimated from a few thousand images.
  TORCH_ARG(int64_t, feature_dim) = 128;
  TORCH_ARG(double, dropout) = 0.2;  // in [0, 1), before each linear layer; off in eval mode

 public:
  int64_t levels() const { return static_cast<int64_t>(channels_.size()); }
};

// Throws InvalidArgument naming the first option out of range.
void check_classifier_options(const ClassifierOptions& options);

class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(const ClassifierOptions& options);

  // x: [B, in_channels, height, width], floating, in [-1, 1]; computed in float32.
  // The penultimate activations [B, feature_dim] (after the ReLU).
  torch::Tensor features(const torch::Tensor& x);
  // Class logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& x);
  // Logits from features(x), for callers that want both without running the convolutions twice.
  torch::Tensor logits_from_features(const torch::Tensor& features);

  void pretty_print(std::ostream& stream) const override;

  ClassifierOptions options;
  torch::nn::Sequential body{nullptr};  // the conv levels and pools
  torch::nn::Dropout feature_dropout{nullptr}, logit_dropout{nullptr};
  torch::nn::Linear feature_layer{nullptr}, logit_layer{nullptr};
};
TORCH_MODULE(Classifier);

// The features [N, feature_dim] and logits [N, num_classes] of N images, computed in eval mode
// (dropout off; the module's mode is restored afterwards) without gradients, `batch` images at a
// time so that memory stays bounded. Float32 on the CPU.
struct ClassifierOutput {
  torch::Tensor features;
  torch::Tensor logits;
};
ClassifierOutput classify(Classifier& net, const torch::Tensor& images, int64_t batch = 500);

// Every option under its own name plus "type": "classifier".
nlohmann::json to_json(const ClassifierOptions& options);
// Refuses a missing, ill-typed or unknown key, or an out-of-range value, naming it.
ClassifierOptions classifier_options_from_json(const nlohmann::json& json);

}  // namespace sdegen
