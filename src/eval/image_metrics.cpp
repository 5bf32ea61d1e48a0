#include "sdegen/eval/image_metrics.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {
namespace {

void check_images(const Classifier& classifier, const torch::Tensor& images, const char* what) {
  const ClassifierOptions& o = classifier->options;
  SDEGEN_CHECK(images.defined() && images.dim() == 4 && images.size(1) == o.in_channels() &&
                   images.size(2) == o.height() && images.size(3) == o.width(),
               what, ": the classifier takes images [N, ", o.in_channels(), ", ", o.height(), ", ", o.width(),
               "], got ", images.defined() ? images.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(images.is_floating_point(), what, ": expected floating-point images in [-1, 1], got ",
               images.scalar_type());
  SDEGEN_CHECK(all_finite(images), what, ": the images hold NaN or infinite values");
}

// The symmetric square root V diag(sqrt(max(w, 0))) V^T of a symmetric positive semi-definite S.
torch::Tensor psd_sqrt(const torch::Tensor& s) {
  const auto [w, v] = torch::linalg_eigh(s);
  return (v * w.clamp_min(0).sqrt().unsqueeze(0)).mm(v.t());
}

}  // namespace

FeatureStats feature_stats(const torch::Tensor& features, const std::string& what) {
  SDEGEN_CHECK(features.defined() && features.dim() == 2, what, " must be a matrix [N, F], got ",
               features.defined() ? features.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(features.size(0) >= 2, what, " has ", features.size(0), " row(s); a covariance needs at least 2");
  SDEGEN_CHECK(features.size(1) >= 1, what, " has no columns (", features.sizes(), ")");
  const torch::Tensor x = features.to(torch::kFloat64);
  SDEGEN_CHECK(all_finite(x), what, " holds NaN or infinite values");
  FeatureStats s;
  s.n = x.size(0);
  s.mean = x.mean(0);
  const torch::Tensor centred = x - s.mean;
  s.cov = centred.t().mm(centred) / static_cast<double>(s.n - 1);
  return s;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  SDEGEN_CHECK(a.mean.defined() && b.mean.defined() && a.cov.defined() && b.cov.defined(),
               "frechet_distance: statistics without a mean or covariance");
  SDEGEN_CHECK(a.mean.size(0) == b.mean.size(0), "frechet_distance: the feature sets have ", a.mean.size(0), " and ",
               b.mean.size(0), " columns; both must have the same");
  const torch::Tensor mean_a = a.mean.to(torch::kFloat64), mean_b = b.mean.to(torch::kFloat64);
  const torch::Tensor cov_a = a.cov.to(torch::kFloat64), cov_b = b.cov.to(torch::kFloat64);
  const double mean_term = (mean_a - mean_b).square().sum().item<double>();
  // tr (S_a^{1/2} S_b S_a^{1/2})^{1/2}: the product is symmetric PSD, so its square root's trace
  // is the sum of the square roots of its eigenvalues (symmetrised against rounding first).
  const torch::Tensor root_a = psd_sqrt(cov_a);
  torch::Tensor m = root_a.mm(cov_b).mm(root_a);
  m = 0.5 * (m + m.t());
  const double cross = torch::linalg_eigvalsh(m).clamp_min(0).sqrt().sum().item<double>();
  const double fd = mean_term + cov_a.trace().item<double>() + cov_b.trace().item<double>() - 2.0 * cross;
  if (!std::isfinite(fd)) throw NumericError("frechet_distance: the result is not finite (" + std::to_string(fd) + ")");
  return std::max(fd, 0.0);
}

double frechet_distance(const torch::Tensor& a, const torch::Tensor& b) {
  const FeatureStats sa = feature_stats(a, "frechet_distance: the first feature set");
  const FeatureStats sb = feature_stats(b, "frechet_distance: the second feature set");
  SDEGEN_CHECK(a.size(1) == b.size(1), "frechet_distance: the feature sets are ", a.sizes(), " and ", b.sizes(),
               "; both must have the same number of columns");
  return frechet_distance(sa, sb);
}

torch::Tensor image_features(Classifier& classifier, const torch::Tensor& images) {
  check_images(classifier, images, "image_features");
  return classify(classifier, images).features;
}

torch::Tensor predicted_classes(Classifier& classifier, const torch::Tensor& images) {
  check_images(classifier, images, "predicted_classes");
  return classify(classifier, images).logits.argmax(1);
}

double class_accuracy(Classifier& classifier, const torch::Tensor& images, const torch::Tensor& labels) {
  check_images(classifier, images, "class_accuracy");
  SDEGEN_CHECK(images.size(0) >= 1, "class_accuracy: no images");
  SDEGEN_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == images.size(0),
               "class_accuracy: expected one label per image (", images.size(0), "), got labels of shape ",
               labels.defined() ? labels.sizes() : torch::IntArrayRef{});
  SDEGEN_CHECK(!labels.is_floating_point() && !labels.is_complex(), "class_accuracy: labels must be integers, got ",
               labels.scalar_type());
  const torch::Tensor l = labels.to(torch::kLong);
  const int64_t lo = l.min().item<int64_t>(), hi = l.max().item<int64_t>(),
                classes = classifier->options.num_classes();
  SDEGEN_CHECK(lo >= 0 && hi < classes, "class_accuracy: labels must lie in [0, ", classes, "), got [", lo, ", ", hi,
               "]");
  return predicted_classes(classifier, images).eq(l).to(torch::kFloat64).mean().item<double>();
}

std::vector<int64_t> predicted_class_histogram(Classifier& classifier, const torch::Tensor& images) {
  const int64_t classes = classifier->options.num_classes();
  const torch::Tensor counts = torch::bincount(predicted_classes(classifier, images), {}, classes);
  std::vector<int64_t> out(static_cast<size_t>(classes));
  for (int64_t k = 0; k < classes; ++k) out[static_cast<size_t>(k)] = counts[k].item<int64_t>();
  return out;
}

double fd_floor(Classifier& classifier, const torch::Tensor& train_images, const torch::Tensor& test_images,
                int64_t n, uint64_t seed) {
  check_images(classifier, train_images, "fd_floor (training images)");
  check_images(classifier, test_images, "fd_floor (test images)");
  SDEGEN_CHECK(n >= 2, "fd_floor: n must be >= 2, got ", n);
  SDEGEN_CHECK(n <= train_images.size(0) && n <= test_images.size(0), "fd_floor: n = ", n, " images, but there are ",
               train_images.size(0), " training and ", test_images.size(0), " test images");
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto draw = [&](const torch::Tensor& images) {
    const torch::Tensor rows =
        torch::randperm(images.size(0), generator, torch::TensorOptions(torch::kLong)).narrow(0, 0, n);
    return image_features(classifier, images.index_select(0, rows));
  };
  const torch::Tensor train_features = draw(train_images);
  return frechet_distance(train_features, draw(test_images));
}

}  // namespace sdegen
