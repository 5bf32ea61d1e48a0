#include "sdegen/train/classifier_training.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/core/vmath.h"
#include "sdegen/train/classifier_store.h"

namespace sdegen {
namespace {

const std::vector<std::string>& train_json_keys() {
  static const std::vector<std::string> keys = {"epochs", "batch", "lr", "max_shift", "seed", "threads"};
  return keys;
}

// The caller's thread count and torch's default generator (initial weights and dropout draw from
// it) come back as they were, so that training a classifier in the middle of an evaluation does
// not change what the evaluation samples next.
class RuntimeGuard {
 public:
  explicit RuntimeGuard(int64_t threads)
      : threads_(torch::get_num_threads()), generator_(default_generator_state()) {
    torch::set_num_threads(static_cast<int>(threads));
    vmath::set_blas_threads(static_cast<int>(threads));
  }
  ~RuntimeGuard() {
    torch::set_num_threads(threads_);
    vmath::set_blas_threads(threads_);
    set_default_generator_state(generator_);
  }
  RuntimeGuard(const RuntimeGuard&) = delete;
  RuntimeGuard& operator=(const RuntimeGuard&) = delete;

 private:
  int threads_;
  torch::Tensor generator_;
};

double accuracy(Classifier& net, const torch::Tensor& images, const torch::Tensor& labels) {
  const torch::Tensor predicted = classify(net, images).logits.argmax(1);
  return predicted.eq(labels).to(torch::kFloat64).mean().item<double>();
}

void check_data(const ImageData& train, const ImageData& test, const ClassifierOptions& net) {
  SDEGEN_CHECK(train.labelled() && train.num_classes() >= 2, "a classifier needs labelled images of >= 2 classes; '",
               train.source, "' has ",
               train.labelled() ? std::to_string(train.num_classes()) + " class(es)" : "no labels");
  SDEGEN_CHECK(test.labelled(), "the test images '", test.source, "' have no labels");
  SDEGEN_CHECK(train.size() >= 1 && test.size() >= 1, "a classifier needs training and test images; '", train.source,
               "' has ", train.size(), ", '", test.source, "' has ", test.size());
  SDEGEN_CHECK(train.shape() == test.shape(), "the test images '", test.source, "' are ", test.x.sizes().slice(1),
               ", the training images '", train.source, "' are ", train.x.sizes().slice(1));
  SDEGEN_CHECK(train.class_names == test.class_names, "the test images '", test.source, "' have the classes [",
               join(test.class_names), "], the training images '", train.source, "' have [", join(train.class_names),
               "]");
  const std::vector<int64_t> s = train.shape();
  SDEGEN_CHECK(net.in_channels() == s[0] && net.height() == s[1] && net.width() == s[2] &&
                   net.num_classes() == train.num_classes(),
               "classifier options for ", net.in_channels(), "x", net.height(), "x", net.width(), " images of ",
               net.num_classes(), " classes, but '", train.source, "' has ", s[0], "x", s[1], "x", s[2], " images of ",
               train.num_classes(), " classes");
}

}  // namespace

void check_classifier_train_options(const ClassifierTrainOptions& o) {
  SDEGEN_CHECK(o.epochs() >= 1, "classifier training: epochs must be >= 1, got ", o.epochs());
  SDEGEN_CHECK(o.batch() >= 1, "classifier training: batch must be >= 1, got ", o.batch());
  SDEGEN_CHECK(std::isfinite(o.lr()) && o.lr() > 0, "classifier training: lr must be > 0, got ", o.lr());
  SDEGEN_CHECK(o.max_shift() >= 0, "classifier training: max_shift must be >= 0, got ", o.max_shift());
  SDEGEN_CHECK(o.threads() >= 1, "classifier training: threads must be >= 1, got ", o.threads());
}

nlohmann::json to_json(const ClassifierTrainOptions& o) {
  return {{"epochs", o.epochs()}, {"batch", o.batch()}, {"lr", o.lr()},
          {"max_shift", o.max_shift()}, {"seed", o.seed()}, {"threads", o.threads()}};
}

ClassifierTrainOptions classifier_train_options_from_json(const nlohmann::json& j) {
  SDEGEN_CHECK(j.is_object(), "classifier training options: expected a JSON object, got ", j.dump());
  for (const auto& item : j.items()) check_name("classifier training option", item.key(), train_json_keys());
  for (const auto& key : train_json_keys()) {
    SDEGEN_CHECK(j.contains(key), "classifier training options: missing key '", key, "'");
    const nlohmann::json& v = j.at(key);
    const bool ok = key == "lr" ? v.is_number() : key == "seed" ? v.is_number_unsigned() : v.is_number_integer();
    SDEGEN_CHECK(ok, "classifier training options: '", key, "' must be ",
                 key == "lr" ? "a number" : key == "seed" ? "a whole number >= 0" : "an integer", ", got ", v.dump());
  }
  ClassifierTrainOptions o = ClassifierTrainOptions()
                                 .epochs(j.at("epochs").get<int64_t>())
                                 .batch(j.at("batch").get<int64_t>())
                                 .lr(j.at("lr").get<double>())
                                 .max_shift(j.at("max_shift").get<int64_t>())
                                 .seed(j.at("seed").get<uint64_t>())
                                 .threads(j.at("threads").get<int64_t>());
  check_classifier_train_options(o);
  return o;
}

torch::Tensor random_shift(const torch::Tensor& images, int64_t max_shift, at::Generator& generator) {
  SDEGEN_CHECK(images.defined() && images.dim() == 4, "random_shift: expected images [N, C, H, W]");
  SDEGEN_CHECK(max_shift >= 0, "random_shift: max_shift must be >= 0, got ", max_shift);
  if (max_shift == 0 || images.size(0) == 0) return images;
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3), s = max_shift;
  namespace F = torch::nn::functional;
  // Replicate padding needs a float tensor: pad [N, C, H + 2s, W + 2s], then each image reads its
  // own window, offset by (dy, dx) in [0, 2s] from the padded corner, i.e. shifted by s - offset.
  const torch::Tensor padded =
      F::pad(images, F::PadFuncOptions({s, s, s, s}).mode(torch::kReplicate)).permute({0, 2, 3, 1});
  const auto offsets = torch::randint(0, 2 * s + 1, {2, n}, generator, torch::TensorOptions(torch::kLong));
  const torch::Tensor rows = offsets[0].view({n, 1, 1}) + torch::arange(h, torch::kLong).view({1, h, 1});
  const torch::Tensor cols = offsets[1].view({n, 1, 1}) + torch::arange(w, torch::kLong).view({1, 1, w});
  const torch::Tensor which = torch::arange(n, torch::kLong).view({n, 1, 1});
  return padded.index({which, rows, cols}).permute({0, 3, 1, 2}).contiguous();
}

TrainedClassifier train_classifier(const ImageData& train, const ImageData& test, const ClassifierTrainOptions& options,
                                   const std::string& out_dir, const std::optional<ClassifierOptions>& net_options) {
  check_classifier_train_options(options);
  SDEGEN_CHECK(train.x.defined() && test.x.defined(), "train_classifier: the images are empty");
  const std::vector<int64_t> shape = train.shape();
  const ClassifierOptions net_opts =
      net_options ? *net_options : ClassifierOptions(shape[0], shape[1], shape[2], train.num_classes());
  check_data(train, test, net_opts);

  const auto start = std::chrono::steady_clock::now();
  RuntimeGuard runtime(options.threads());
  torch::manual_seed(options.seed());
  TrainedClassifier out;
  out.net = Classifier(net_opts);
  out.class_names = train.class_names;
  out.training = options;
  out.data = {{"train", train.source},     {"test", test.source}, {"train_images", train.size()},
              {"test_images", test.size()}, {"shape", shape}};
  Classifier& net = out.net;

  // Batches and shifts from a generator of their own; initial weights and dropout from the
  // default one, seeded above.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed() ^ 0x9E3779B97F4A7C15ULL);
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(options.lr()));
  const int64_t n = train.size(), steps_per_epoch = (n + options.batch() - 1) / options.batch();
  const int64_t total_steps = options.epochs() * steps_per_epoch;
  const torch::Tensor x = train.x.to(torch::kFloat32), labels = train.labels.to(torch::kLong);
  const torch::Tensor test_x = test.x.to(torch::kFloat32), test_labels = test.labels.to(torch::kLong);
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= options.epochs(); ++epoch) {
    net->train();
    const torch::Tensor order = torch::randperm(n, generator, torch::TensorOptions(torch::kLong));
    double loss_sum = 0;
    int64_t correct = 0;
    for (int64_t first = 0; first < n; first += options.batch(), ++step) {
      const torch::Tensor rows = order.narrow(0, first, std::min(options.batch(), n - first));
      const torch::Tensor xb = random_shift(x.index_select(0, rows), options.max_shift(), generator);
      const torch::Tensor yb = labels.index_select(0, rows);
      // Cosine decay from lr at the first step towards 0 after the last.
      const double lr = options.lr() * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / total_steps));
      for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      const torch::Tensor logits = net->forward(xb);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, yb);
      const double value = loss.item<double>();
      if (!std::isfinite(value))
        throw NumericError("classifier training: the loss is " + std::to_string(value) + " at epoch " +
                           std::to_string(epoch) + ", step " + std::to_string(step + 1) + "; try a lower lr");
      adam.zero_grad();
      loss.backward();
      adam.step();
      loss_sum += value * static_cast<double>(rows.size(0));
      correct += logits.argmax(1).eq(yb).sum().item<int64_t>();
    }
    out.test_accuracy = accuracy(net, test_x, test_labels);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "classifier epoch {}/{}: loss {:.4f}, train accuracy {:.4f}, test accuracy {:.4f}, {:.1f} s\n",
               epoch, options.epochs(), loss_sum / n, static_cast<double>(correct) / n, out.test_accuracy, out.seconds);
    std::fflush(stderr);
  }
  net->eval();
  if (!out_dir.empty()) save_classifier(out_dir, out);
  return out;
}

}  // namespace sdegen
