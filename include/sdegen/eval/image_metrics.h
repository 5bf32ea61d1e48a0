#pragma once
// Image quality in the feature space of a classifier trained on the same dataset
// (net/classifier.h), the usual choice on small grey datasets where Inception's features are
// biased (docs/anchors.md):
//   - the Frechet distance between Gaussians fitted to two sets of features (FID's formula, in
//     the classifier's penultimate features instead of Inception's);
//   - the classifier's accuracy on conditional samples (did the model draw the class asked for?);
//   - the histogram of predicted classes on unconditional samples (does it favour some classes?).
// The Frechet distance of a finite sample is biased upwards, strongly so for small N: compare
// figures only at equal N, and report fd_floor (real against real at that N) beside each.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sdegen/net/classifier.h"

namespace sdegen {

// The mean [F] and covariance [F, F] (normalised by n - 1, as FID's reference code) of n >= 2
// feature rows, in float64: a reference set's statistics can be computed once and reused.
struct FeatureStats {
  torch::Tensor mean;
  torch::Tensor cov;
  int64_t n = 0;
};

// Statistics of features [n, F]. Refused (InvalidArgument): not 2-D, fewer than 2 rows, no columns,
// NaN or infinite values; `what` names the set in the message ("the generated images' features").
FeatureStats feature_stats(const torch::Tensor& features, const std::string& what = "the feature set");

// The Frechet distance between N(mu_a, S_a) and N(mu_b, S_b), the squared 2-Wasserstein distance
// between the two Gaussians:
//   |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2}),
// in float64 with symmetric eigendecompositions; eigenvalues a hair below 0 from rounding are
// taken as 0 (both matrices are positive semi-definite), and so is a total a hair below 0.
// Refuses statistics of different feature dimensions, naming both.
double frechet_distance(const FeatureStats& a, const FeatureStats& b);
// The same from feature sets [N, F] and [M, F] (N, M >= 2, same F, finite).
double frechet_distance(const torch::Tensor& a, const torch::Tensor& b);

// The classifier's features [N, feature_dim] of images [N, C, H, W] in [-1, 1] (eval mode, no
// gradients, in batches). Images of another shape than the classifier's are refused, naming both.
torch::Tensor image_features(Classifier& classifier, const torch::Tensor& images);

// The classes the classifier predicts (argmax of its logits) for images [N, C, H, W]: [N] int64.
torch::Tensor predicted_classes(Classifier& classifier, const torch::Tensor& images);

// The share of images whose predicted class is their label [N] (int64 in [0, num_classes)).
// Refused: labels of another count than the images, or out of range; no images.
double class_accuracy(Classifier& classifier, const torch::Tensor& images, const torch::Tensor& labels);

// How many of the images the classifier assigns to each class: num_classes counts summing to N.
std::vector<int64_t> predicted_class_histogram(Classifier& classifier, const torch::Tensor& images);

// The Frechet distance that real images reach at n images: n training images against n test
// images, both drawn without replacement by a generator seeded with `seed`. A model's FD at n
// generated images is to be read against this floor. Refused: n < 2, or n beyond either set.
double fd_floor(Classifier& classifier, const torch::Tensor& train_images, const torch::Tensor& test_images,
                int64_t n, uint64_t seed = 0);

}  // namespace sdegen
