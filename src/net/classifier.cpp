#include "sdegen/net/classifier.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {
namespace {

std::string list(const std::vector<int64_t>& values) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < values.size(); ++i) s << (i ? ", " : "") << values[i];
  s << "]";
  return s.str();
}

}  // namespace

void check_classifier_options(const ClassifierOptions& o) {
  SDEGEN_CHECK(o.in_channels() >= 1, "Classifier: in_channels must be >= 1, got ", o.in_channels());
  SDEGEN_CHECK(o.height() >= 1 && o.width() >= 1, "Classifier: height and width must be >= 1, got ", o.height(),
               "x", o.width());
  SDEGEN_CHECK(o.num_classes() >= 2, "Classifier: num_classes must be >= 2, got ", o.num_classes());
  SDEGEN_CHECK(o.levels() >= 1, "Classifier: channels needs one entry per level, got none");
  for (const int64_t c : o.channels())
    SDEGEN_CHECK(c >= 1, "Classifier: every entry of channels must be >= 1, got ", list(o.channels()));
  SDEGEN_CHECK(o.convs_per_level() >= 1, "Classifier: convs_per_level must be >= 1, got ", o.convs_per_level());
  SDEGEN_CHECK(o.feature_dim() >= 1, "Classifier: feature_dim must be >= 1, got ", o.feature_dim());
  SDEGEN_CHECK(std::isfinite(o.dropout()) && o.dropout() >= 0.0 && o.dropout() < 1.0,
               "Classifier: dropout must be in [0, 1), got ", o.dropout());
}

ClassifierImpl::ClassifierImpl(const ClassifierOptions& o) : options(o) {
  check_classifier_options(o);
  torch::nn::Sequential seq;
  int64_t in = o.in_channels();
  for (int64_t level = 0; level < o.levels(); ++level) {
    const int64_t c = o.channels()[level];
    for (int64_t k = 0; k < o.convs_per_level(); ++k) {
      // No bias: BatchNorm's shift replaces it.
      seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c, 3).padding(1).bias(false)));
      seq->push_back(torch::nn::BatchNorm2d(c));
      seq->push_back(torch::nn::ReLU());
      in = c;
    }
    if (level + 1 < o.levels())
      seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2).ceil_mode(true)));
  }
  body = register_module("body", seq);
  feature_dropout = register_module("feature_dropout", torch::nn::Dropout(o.dropout()));
  feature_layer = register_module("feature_layer", torch::nn::Linear(in, o.feature_dim()));
  logit_dropout = register_module("logit_dropout", torch::nn::Dropout(o.dropout()));
  logit_layer = register_module("logit_layer", torch::nn::Linear(o.feature_dim(), o.num_classes()));
  // Float32 even where a caller (the tests) made float64 torch's default: images are float32.
  to(torch::kFloat32);
}

torch::Tensor ClassifierImpl::features(const torch::Tensor& x) {
  SDEGEN_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.in_channels() &&
                   x.size(2) == options.height() && x.size(3) == options.width(),
               "Classifier: expected images [B, ", options.in_channels(), ", ", options.height(), ", ",
               options.width(), "], got ", x.defined() ? x.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(x.is_floating_point(), "Classifier: expected floating-point images, got ", x.scalar_type());
  const torch::Tensor h = body->forward(x.to(torch::kFloat32)).mean({2, 3});
  return torch::relu(feature_layer->forward(feature_dropout->forward(h)));
}

torch::Tensor ClassifierImpl::logits_from_features(const torch::Tensor& f) {
  return logit_layer->forward(logit_dropout->forward(f));
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) { return logits_from_features(features(x)); }

ClassifierOutput classify(Classifier& net, const torch::Tensor& images, int64_t batch) {
  SDEGEN_CHECK(batch >= 1, "classify: batch must be >= 1, got ", batch);
  SDEGEN_CHECK(images.defined() && images.dim() == 4, "classify: expected images [N, C, H, W], got ",
               images.defined() ? images.sizes() : torch::IntArrayRef{});
  torch::NoGradGuard no_grad;
  // Restores the caller's mode however this returns.
  struct ModeGuard {
    torch::nn::Module& module;
    bool training;
    ~ModeGuard() { module.train(training); }
  } mode{*net, net->is_training()};
  net->eval();
  std::vector<torch::Tensor> features, logits;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    const torch::Tensor f = net->features(images.narrow(0, start, std::min(batch, images.size(0) - start)));
    features.push_back(f);
    logits.push_back(net->logits_from_features(f));
  }
  if (features.empty())
    return {torch::empty({0, net->options.feature_dim()}, torch::kFloat32),
            torch::empty({0, net->options.num_classes()}, torch::kFloat32)};
  return {torch::cat(features), torch::cat(logits)};
}

void ClassifierImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::Classifier(in_channels=" << options.in_channels() << ", size=" << options.height() << "x"
         << options.width() << ", channels=" << list(options.channels())
         << ", convs_per_level=" << options.convs_per_level() << ", feature_dim=" << options.feature_dim()
         << ", num_classes=" << options.num_classes() << ")";
}

// ---- options <-> JSON ----

namespace {

const std::vector<std::string>& classifier_json_keys() {
  static const std::vector<std::string> keys = {"type",     "in_channels",     "height",      "width",
                                                "num_classes", "channels",    "convs_per_level", "feature_dim",
                                                "dropout"};
  return keys;
}

}  // namespace

nlohmann::json to_json(const ClassifierOptions& o) {
  return {{"type", "classifier"},
          {"in_channels", o.in_channels()},
          {"height", o.height()},
          {"width", o.width()},
          {"num_classes", o.num_classes()},
          {"channels", o.channels()},
          {"convs_per_level", o.convs_per_level()},
          {"feature_dim", o.feature_dim()},
          {"dropout", o.dropout()}};
}

ClassifierOptions classifier_options_from_json(const nlohmann::json& j) {
  const JsonFields f(j, "Classifier", classifier_json_keys());
  f.expect_type("classifier");
  ClassifierOptions o =
      ClassifierOptions(f.integer("in_channels"), f.integer("height"), f.integer("width"), f.integer("num_classes"))
          .channels(f.integers("channels"))
          .convs_per_level(f.integer("convs_per_level"))
          .feature_dim(f.integer("feature_dim"))
          .dropout(f.number("dropout"));
  check_classifier_options(o);
  return o;
}

}  // namespace sdegen
