// evaluate_images on a tiny U-Net flow model and a tiny classifier. The U-Net's output layer
// starts at zero, so the untrained flow has velocity 0: its samples are the prior draws and its
// density is exactly N(0, I), which gives closed forms for what the evaluation reports.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/eval/figures.h"
#include "sdegen/eval/image_evaluate.h"
#include "sdegen/eval/image_metrics.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/net/unet.h"
#include "support/support.h"

namespace sdegen {
namespace {

std::shared_ptr<AffineModel> zero_flow(int64_t classes) {
  AffineModelOptions o = affine_model_defaults("flow", 1);
  o.net = to_json(
      UNetOptions(1, 8, 8).base_channels(8).channel_mult({1, 2}).blocks_per_level(1).attention_resolutions({}).groups(4).num_classes(classes));
  o.dtype = "float32";
  auto model = std::make_shared<AffineModel>(o);
  model->eval();
  return model;
}

// n 8x8 grey images on the 8-bit grid, scaled to [-1, 1], two classes: bright left or right half.
ImageData images(int64_t n, uint64_t seed, const std::string& source) {
  torch::manual_seed(seed);
  ImageData d;
  d.labels = torch::arange(n, torch::kLong).remainder(2);
  torch::Tensor pixels = torch::randint(0, 60, {n, 1, 8, 8}).to(torch::kFloat);
  for (int64_t i = 0; i < n; ++i) pixels[i].narrow(2, d.labels[i].item<int64_t>() * 4, 4).add_(180);
  d.x = pixels / 127.5 - 1.0;
  d.class_names = {"left", "right"};
  d.source = source;
  return d;
}

Classifier tiny_classifier() {
  torch::manual_seed(3);
  Classifier net(ClassifierOptions(1, 8, 8, 2).channels({4, 8}).convs_per_level(1).feature_dim(6));
  net->eval();
  return net;
}

ImageEvalOptions small_options() {
  ImageEvalOptions o;
  o.n = 12;
  o.batch = 5;  // several sampling batches, the last one short
  o.sampler.solver = "euler";
  o.sampler.steps = 3;
  o.elbo_n = 8;
  o.likelihood_n = 0;
  o.seed = 7;
  return o;
}

// The rows evaluate_images draws (the reference first, then the other set) with its seed.
torch::Tensor drawn_rows(int64_t size, int64_t n, at::Generator& generator) {
  return torch::randperm(size, generator, torch::TensorOptions(torch::kLong)).narrow(0, 0, n);
}

TEST(EvaluateImages, MeasuresThePriorDrawsAgainstTheReferenceAndTheFloorOnTheSameDraw) {
  auto model = zero_flow(2);
  Classifier classifier = tiny_classifier();
  const ImageData reference = images(30, 1, "test"), other = images(40, 2, "train");
  ImageEvalOptions o = small_options();
  o.guidance = {0.0, 1.0, 3.0};
  int64_t calls = 0;
  const ImageEvalResult r =
      evaluate_images(*model, classifier, reference, other, o, [&](double, int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 3 * 3);  // three batches (5, 5, 2) per weight

  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const torch::Tensor ref_rows = drawn_rows(30, 12, generator), other_rows = drawn_rows(40, 12, generator);
  const FeatureStats ref = feature_stats(image_features(classifier, reference.x.index_select(0, ref_rows)));
  EXPECT_NEAR(r.fd_floor,
              frechet_distance(feature_stats(image_features(classifier, other.x.index_select(0, other_rows))), ref),
              1e-9);

  // Velocity 0: the images are the seeded prior draws, clamped, in batches of 5.
  torch::manual_seed(o.seed);
  std::vector<torch::Tensor> parts;
  for (const int64_t m : {5, 5, 2}) parts.push_back(sample_model_prior(*model, m).clamp(-1.0, 1.0));
  const torch::Tensor expected = torch::cat(parts);
  ASSERT_TRUE(r.first_images.defined());
  EXPECT_TRUE(torch::allclose(r.first_images, expected, 0.0, 1e-6));

  const torch::Tensor labels = torch::arange(12, torch::kLong).remainder(2);
  const double accuracy = predicted_classes(classifier, expected).eq(labels).to(torch::kDouble).mean().item<double>();
  const double fd = frechet_distance(feature_stats(image_features(classifier, expected)), ref);
  ASSERT_EQ(r.rows.size(), 3u);
  for (const GuidanceRow& row : r.rows) {
    // The same prior draws and labels at every weight; a zero network makes guidance a no-op.
    EXPECT_NEAR(row.fd, fd, 1e-6) << row.weight;
    ASSERT_TRUE(row.class_accuracy.has_value());
    EXPECT_DOUBLE_EQ(*row.class_accuracy, accuracy) << row.weight;
    ASSERT_EQ(row.histogram.size(), 2u);
    EXPECT_EQ(row.histogram[0] + row.histogram[1], 12);
    EXPECT_EQ(row.nfe, 3);
  }
  EXPECT_EQ(r.rows[2].weight, 3.0);
  EXPECT_GT(r.rows[0].fd, r.fd_floor);  // noise is far from the data

  const nlohmann::json j = to_json(r);
  EXPECT_EQ(j.at("guidance").size(), 3u);
  EXPECT_NEAR(j.at("guidance")[1].at("fd_over_floor").get<double>(), fd / r.fd_floor, 1e-6);
}

TEST(EvaluateImages, BitsPerDimensionOfTheExactPriorDensityAndTheElboAboveIt) {
  auto model = zero_flow(0);
  Classifier classifier = tiny_classifier();
  const ImageData reference = images(30, 1, "test"), other = images(40, 2, "train");
  ImageEvalOptions o = small_options();
  o.elbo_n = 0;
  o.likelihood_n = 10;
  ImageEvalResult r = evaluate_images(*model, classifier, reference, other, o);
  ASSERT_EQ(r.rows.size(), 1u);  // unconditional: one row, no accuracy
  EXPECT_FALSE(r.rows[0].class_accuracy.has_value());
  EXPECT_FALSE(r.elbo_bits_per_dim.has_value());
  ASSERT_TRUE(r.likelihood_bits_per_dim.has_value()) << r.likelihood_problem;

  // The density is N(0, I) exactly (velocity 0, divergence 0 whatever the Hutchinson probe), on the
  // first 10 reference images dequantised right after the seed is set.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const torch::Tensor rows = drawn_rows(30, 12, generator).narrow(0, 0, 10);
  torch::manual_seed(o.seed);
  const torch::Tensor y = dequantize_pixels(reference.x.index_select(0, rows)).to(torch::kDouble);
  const torch::Tensor nll = 0.5 * y.square().flatten(1).sum(1) + 32.0 * std::log(2.0 * M_PI);
  EXPECT_NEAR(r.likelihood_bits_per_dim->mean, bits_per_dim(nll.mean().item<double>(), 64), 1e-5);
  EXPECT_NEAR(r.likelihood_bits_per_dim->se, nll.std().item<double>() / std::sqrt(10.0) / (64 * std::log(2.0)), 1e-5);

  // The ELBO bounds the log-likelihood from below, so its bits per dimension lie above.
  o.elbo_n = 10;
  o.elbo_time_samples = 16;
  r = evaluate_images(*model, classifier, reference, other, o);
  ASSERT_TRUE(r.elbo_bits_per_dim.has_value()) << r.elbo_problem;
  EXPECT_GT(r.elbo_bits_per_dim->mean, r.likelihood_bits_per_dim->mean);
}

TEST(EvaluateImages, RefusesWhatItCannotMeasure) {
  Classifier classifier = tiny_classifier();
  const ImageData reference = images(30, 1, "test"), other = images(40, 2, "train");
  auto three = zero_flow(3);
  EXPECT_THROW_WITH(evaluate_images(*three, classifier, reference, other, small_options()), InvalidArgument,
                    "the model has 3 classes and the classifier 2");
  auto model = zero_flow(2);
  ImageEvalOptions o = small_options();
  o.n = 31;
  EXPECT_THROW_WITH(evaluate_images(*model, classifier, reference, other, o), InvalidArgument,
                    "n = 31 must be >= 2 and at most the reference's 30");
  o = small_options();
  o.guidance.clear();
  EXPECT_THROW_WITH(evaluate_images(*model, classifier, reference, other, o), InvalidArgument, "no guidance weight");
  ImageData wide = reference;
  wide.x = torch::zeros({30, 1, 8, 9});
  EXPECT_THROW_WITH(evaluate_images(*model, classifier, wide, other, small_options()), InvalidArgument,
                    "the model draws images of [1, 8, 8] but 'test' holds [30, 1, 8, 9]");
}

TEST(ImageTrajectories, SnapshotsAreEvenlySpacedStepsInRowsPerImage) {
  auto model = zero_flow(2);
  torch::manual_seed(0);
  const torch::Tensor x0 = sample_model_prior(*model, 3);
  SamplerOptions o;
  o.solver = "euler";
  o.steps = 8;
  const ImageTrajectories t = image_trajectories(*model, x0, o, Guidance{Condition(torch::tensor({0, 1, 0})), 2.0}, 5);
  ASSERT_EQ(t.times.size(), 5u);
  for (size_t k = 0; k < 5; ++k) EXPECT_NEAR(t.times[k], 0.25 * static_cast<double>(k), 1e-12) << k;
  ASSERT_EQ(t.frames.sizes(), torch::IntArrayRef({15, 1, 8, 8}));
  // Velocity 0: every snapshot of image i is its prior draw, in row i.
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) EXPECT_TRUE(torch::equal(t.frames[i * 5 + k], x0[i])) << i << " " << k;
  EXPECT_THROW_WITH(image_trajectories(*model, x0, o, {}, 10), InvalidArgument, "the solve has 9 states");
  EXPECT_THROW_WITH(image_trajectories(*model, x0, o, {}, 1), InvalidArgument, "at least 2 snapshots");
}

}  // namespace
}  // namespace sdegen
