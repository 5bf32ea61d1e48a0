#pragma once
// Evaluation of a trained image model: generated images measured in a classifier's features
// against held-out real images (eval/image_metrics.h), at one or more classifier-free guidance
// weights, and bits per dimension of dequantised test images from the ELBO and, optionally, from
// the probability flow with Hutchinson's divergence.
//
// The Frechet distance of n images is biased upwards, strongly so for small n, so fd is always
// reported beside fd_floor: n real images independent of the reference (the training split)
// against the same n reference images (the test split) that the generated images are compared
// with. A model is as good as real data by this measure when fd is near fd_floor.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sdegen/data/images.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/model/generative_model.h"
#include "sdegen/model/latent.h"
#include "sdegen/net/classifier.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {

// The classifier-free guidance weight the commands use by default (sample, eval, plot). Measured
// on Fashion-MNIST with the flow recipe at 1000 images (README "Images"): W = 0, 1, 2, 4 gave fd
// 40, 12.4, 3.4 and 12.6 times fd_floor and class accuracy 0.08, 0.85, 0.97 and 1.00; the 8x8
// digits, a smaller problem, preferred W = 1 for fd (0.83x against 3.1x at W = 2).
constexpr double kDefaultGuidance = 2.0;
// Whether `model` learned an unconditional map to guide by: an affine model trained with label
// dropout. Not a consistency model, nor a flow trained without label dropout, as a reflowed
// student, which learned its teacher's guided flow.
bool learned_unconditional_map(const GenerativeModel& model);
// The default for `model`: kDefaultGuidance where it learned an unconditional map, else 1.
double default_guidance(const GenerativeModel& model);

struct ImageEvalOptions {
  int64_t n = 1000;  // images generated per guidance weight; also the floor's and the reference's n
  // Guidance weights W (math.md: uncond + W (cond - uncond)) measured on a class-conditional model,
  // with the same prior draws and labels (n / classes per class, in turn) at every weight. An
  // unconditional model is measured once, without guidance.
  std::vector<double> guidance{kDefaultGuidance};
  // 25 Heun steps: 49 network evaluations per image (two per step with guidance above 1, batched).
  SamplerOptions sampler = [] {
    SamplerOptions s;
    s.solver = "heun";
    s.steps = 25;
    return s;
  }();
  // Images per sampling solve. Small batches are faster per image on the CPU: a guided U-Net call
  // (base 32) took 22.8 ms per image at 250 images and 13.9 at 50 (bench/unet.cpp), with a third
  // of the memory.
  int64_t batch = 50;
  int64_t elbo_n = 1000;           // test images for the ELBO's bits per dimension (0: skip)
  int64_t elbo_time_samples = 4;   // draws of t per image
  // Test images for the probability flow's bits per dimension (0: skip; must be 0 for a model
  // without a probability flow, the general sde model, whose ELBO alone gives bits).
  int64_t likelihood_n = 0;
  LikelihoodOptions likelihood = [] {
    LikelihoodOptions l;
    l.exact_divergence = false;  // Hutchinson: an exact divergence costs one pass per pixel
    l.adaptive = AdaptiveOptions{1e-4, 1e-4};
    return l;
  }();
  uint64_t seed = 0;
};

// The figures at one guidance weight (unconditional models: one row, weight 1).
struct GuidanceRow {
  double weight = 1.0;
  double fd = 0.0;                        // n generated against n reference images
  std::optional<double> class_accuracy;   // share classified as the label asked for (conditional)
  std::vector<int64_t> histogram;         // predicted classes of the generated images
  int64_t nfe = 0;                        // network evaluations per image (a batched pair counts once)
  double seconds = 0.0;                   // sampling time for the n images
};

struct ImageEvalResult {
  std::string kind, source;
  std::vector<int64_t> shape;
  int64_t n = 0, classes = 0;
  std::string sampler;
  int64_t sampler_steps = 0;
  double fd_floor = 0.0;  // n images of `other` against the same n reference images
  std::vector<GuidanceRow> rows;
  // Bits per dimension of dequantised reference images under the unconditional model: from the
  // ELBO (an upper bound on the model's figure) and from the probability flow (Hutchinson's
  // estimate). Absent when skipped or untrustworthy; the *_problem strings then say why.
  std::optional<Estimate> elbo_bits_per_dim, likelihood_bits_per_dim;
  int64_t elbo_n = 0, likelihood_n = 0, likelihood_nfe = 0;
  std::string elbo_problem, likelihood_problem;
  double elbo_seconds = 0.0, likelihood_seconds = 0.0;
  bool latent = false;  // a latent model's (its draws decoded, its ELBO of latents)
  // A latent model: the negative ELBO of the reference images' latents per latent dimension, in
  // nats. A figure of the latent space, not comparable with pixel bits per dimension (which stay
  // absent for latent models).
  std::optional<Estimate> latent_nelbo_per_dim;
  torch::Tensor first_images;  // the first row's generated images [n, C, H, W] in [-1, 1]
};

// Called after each sampling batch: images done and in total, at guidance weight `weight`.
using ImageEvalProgress = std::function<void(double weight, int64_t done, int64_t total)>;

// Evaluates `model` (images in [-1, 1], eval mode) with `classifier` (the same image shape) against
// `reference` (held-out real images: the test split) and `other` (real images independent of the
// reference: the training split), which give fd_floor. Refused (InvalidArgument, naming the
// problem): images of another shape than the model's or the classifier's, n < 2 or beyond either
// set, a conditional model whose class count differs from the classifier's, no guidance weight.
// A sampling solve that fails is a NumericError; samples are clamped to [-1, 1], as a PNG would
// store them, before they are measured.
// A latent model (model/latent.h) passes its latent space: its draws are decoded to images before
// they are measured, the ELBO is of the reference images' latents (latent_nelbo_per_dim), and
// likelihood_n must be 0.
ImageEvalResult evaluate_images(GenerativeModel& model, Classifier& classifier, const ImageData& reference,
                                const ImageData& other, const ImageEvalOptions& options = {},
                                const ImageEvalProgress& progress = {}, const LatentSpace* latent = nullptr);

// How well an autoencoder reconstructs held-out images: n images B of `reference`, disjoint from
// n images A of it (both drawn by seed), reconstructed through the posterior mean; fd of the
// reconstructions against A beside fd_floor, fd of B itself against A (a perfect autoencoder
// scores fd_floor), and the peak signal-to-noise ratio of each reconstruction, 10 log10(2^2 /
// MSE) for pixels in [-1, 1] (reconstructions clamped to it), averaged over the images.
struct ReconstructionResult {
  int64_t n = 0;
  double fd = 0.0, fd_floor = 0.0;
  Estimate psnr;
  double seconds = 0.0;
  torch::Tensor originals, reconstructions;  // B and its reconstructions, [n, C, H, W]
};
// Refused (InvalidArgument): images of another shape than the autoencoder's or the classifier's,
// n < 2 or more than half of the reference images.
ReconstructionResult evaluate_reconstruction(AutoencoderModel& autoencoder, Classifier& classifier,
                                             const ImageData& reference, int64_t n, uint64_t seed = 0);
nlohmann::json to_json(const ReconstructionResult& result);

// Keys: kind, source, shape, n, classes, sampler, sampler_steps, fd_floor; the first guidance
// weight's figures as guidance_weight, fd, class_accuracy, histogram and nfe; guidance, a list of
// every weight's {weight, fd, fd_over_floor, class_accuracy, histogram, nfe, seconds};
// bits_per_dim (the probability flow's) and elbo_bits_per_dim with their _stderr, n, problem and
// seconds; latent (true for a latent model), latent_nelbo_per_dim and its _stderr. Absent figures
// are null.
nlohmann::json to_json(const ImageEvalResult& result);

}  // namespace sdegen
