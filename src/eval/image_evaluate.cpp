#include "sdegen/eval/image_evaluate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/tensor.h"
#include "sdegen/eval/image_metrics.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"

namespace sdegen {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// n images of `images` drawn without replacement by `generator`.
torch::Tensor draw(const ImageData& images, int64_t n, at::Generator& generator) {
  const torch::Tensor rows =
      torch::randperm(images.size(), generator, torch::TensorOptions(torch::kLong)).narrow(0, 0, n);
  return images.x.index_select(0, rows);
}

// Per-image bits per dimension from nats per image (data/images.h), as a mean and standard error.
Estimate bits_estimate(const torch::Tensor& nll_nats, int64_t dims) {
  const Estimate nats = mean_and_se(nll_nats);
  return {bits_per_dim(nats.mean, dims), nats.se / (static_cast<double>(dims) * std::log(2.0))};
}

// The model's generated images at weight w, the same prior draws and labels for every w.
GuidanceRow sample_row(GenerativeModel& model, Classifier& classifier, const FeatureStats& reference, double w,
                       const torch::Tensor& labels, const ImageEvalOptions& o, const ImageEvalProgress& progress,
                       const LatentSpace* latent, torch::Tensor* first) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(o.seed);
  const auto start = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> parts;
  GuidanceRow row;
  row.weight = w;
  for (int64_t done = 0; done < o.n; done += o.batch) {
    const int64_t m = std::min(o.batch, o.n - done);
    const torch::Tensor x0 = sample_model_prior(model, m);
    Guidance guidance;
    if (labels.defined()) guidance = Guidance{Condition(labels.narrow(0, done, m)), w};
    const Solution sol = generate(model, x0, o.sampler, guidance);
    sol.check();
    row.nfe = sol.nfe;
    // Back on the CPU, where the classifier measures them.
    parts.push_back((latent ? latent->decode(sol.x) : sol.x).to(torch::kCPU, torch::kFloat).clamp(-1.0, 1.0));
    if (progress) progress(w, done + m, o.n);
  }
  row.seconds = seconds_since(start);
  const torch::Tensor images = torch::cat(parts);
  if (first && !first->defined()) *first = images;
  row.fd = frechet_distance(feature_stats(image_features(classifier, images), "the generated images' features"),
                            reference);
  row.histogram = predicted_class_histogram(classifier, images);
  if (labels.defined()) row.class_accuracy = class_accuracy(classifier, images, labels);
  return row;
}

}  // namespace

bool learned_unconditional_map(const GenerativeModel& model) {
  const auto* affine = dynamic_cast<const AffineModel*>(&model);
  return affine && affine->options().p_uncond > 0;
}

double default_guidance(const GenerativeModel& model) {
  return learned_unconditional_map(model) ? kDefaultGuidance : 1.0;
}

ImageEvalResult evaluate_images(GenerativeModel& model, Classifier& classifier, const ImageData& reference,
                                const ImageData& other, const ImageEvalOptions& o,
                                const ImageEvalProgress& progress, const LatentSpace* latent) {
  const std::vector<int64_t> shape = latent ? latent->image_shape() : model.shape();
  SDEGEN_CHECK(shape.size() == 3, "evaluate_images needs an image model (shape [C, H, W]), got shape ",
               torch::IntArrayRef(shape));
  SDEGEN_CHECK(!latent || latent->latent_shape() == model.shape(), "evaluate_images: the model draws ",
               torch::IntArrayRef(model.shape()), " but the latent space decodes ",
               torch::IntArrayRef(latent ? latent->latent_shape() : shape));
  SDEGEN_CHECK(!latent || o.likelihood_n == 0, "evaluate_images: a latent model's probability flow gives the ",
               "likelihood of latents, not pixel bits per dimension; set likelihood_n to 0");
  for (const ImageData* set : {&reference, &other})
    SDEGEN_CHECK(set->x.defined() && set->shape() == shape, "evaluate_images: the model draws images of ",
                 torch::IntArrayRef(shape), " but '", set->source, "' holds ",
                 set->x.defined() ? set->x.sizes() : torch::IntArrayRef{});
  const ClassifierOptions& c = classifier->options;
  SDEGEN_CHECK(c.in_channels() == shape[0] && c.height() == shape[1] && c.width() == shape[2],
               "evaluate_images: the classifier takes images of [", c.in_channels(), ", ", c.height(), ", ",
               c.width(), "], the model draws ", torch::IntArrayRef(shape));
  const int64_t classes = model.num_classes();
  SDEGEN_CHECK(classes == 0 || classes == c.num_classes(), "evaluate_images: the model has ", classes,
               " classes and the classifier ", c.num_classes(), "; they must be the same");
  SDEGEN_CHECK(o.n >= 2 && o.n <= reference.size() && o.n <= other.size(), "evaluate_images: n = ", o.n,
               " must be >= 2 and at most the reference's ", reference.size(), " and the other set's ",
               other.size(), " images");
  SDEGEN_CHECK(o.batch >= 1, "evaluate_images: batch must be >= 1, got ", o.batch);
  SDEGEN_CHECK(!o.guidance.empty(), "evaluate_images: no guidance weight to measure");
  SDEGEN_CHECK(o.likelihood_n == 0 || model.has_probability_flow(), "evaluate_images: the '", model.kind(),
               "' model has no probability flow to give bits per dimension; set likelihood_n to 0 (its ELBO ",
               "gives elbo_bits_per_dim)");
  SDEGEN_CHECK(o.elbo_n >= 0 && o.elbo_n <= reference.size() && o.likelihood_n >= 0 &&
                   o.likelihood_n <= reference.size(),
               "evaluate_images: elbo_n (", o.elbo_n, ") and likelihood_n (", o.likelihood_n,
               ") must lie in [0, ", reference.size(), "]");

  ImageEvalResult r;
  r.kind = model.kind();
  r.latent = latent != nullptr;
  r.source = reference.source;
  r.shape = shape;
  r.n = o.n;
  r.classes = classes;
  r.sampler = o.sampler.solver;
  r.sampler_steps = o.sampler.steps;

  // The reference draw, shared by the floor and every guidance weight.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  const torch::Tensor reference_images = draw(reference, o.n, generator);
  const FeatureStats reference_stats =
      feature_stats(image_features(classifier, reference_images), "the reference images' features");
  r.fd_floor = frechet_distance(
      feature_stats(image_features(classifier, draw(other, o.n, generator)), "the other real images' features"),
      reference_stats);

  // Labels n / classes per class in turn; an unconditional model is measured once.
  const torch::Tensor labels = classes > 0 ? torch::arange(o.n, torch::kLong).remainder(classes) : torch::Tensor();
  const std::vector<double> weights = classes > 0 ? o.guidance : std::vector<double>{1.0};
  for (const double w : weights)
    r.rows.push_back(sample_row(model, classifier, reference_stats, w, labels, o, progress, latent, &r.first_images));

  // Bits per dimension of the unconditional model on dequantised reference images.
  const int64_t dims = example_numel(shape);
  const auto dtype = model.parameters().empty() ? torch::kFloat : model.parameters().front().scalar_type();
  const torch::Device on = device_of(model);  // the data follow the model; figures come back as numbers
  torch::manual_seed(o.seed);
  if (o.elbo_n > 0) {
    torch::NoGradGuard no_grad;
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor images = reference_images.narrow(0, 0, std::min(o.elbo_n, o.n));
    // A latent model's ELBO is of the images' latents; pixels are dequantised as a discrete
    // likelihood needs.
    const torch::Tensor y = latent ? latent->encode(images.to(on)).to(dtype) : dequantize_pixels(images).to(on, dtype);
    std::vector<torch::Tensor> totals;
    for (int64_t i = 0; i < y.size(0); i += o.batch)
      totals.push_back(model.elbo(y.narrow(0, i, std::min(o.batch, y.size(0) - i)), o.elbo_time_samples).total());
    const torch::Tensor nelbo = -torch::cat(totals).to(torch::kCPU, torch::kDouble);
    r.elbo_n = y.size(0);
    const int64_t bad = nelbo.isfinite().logical_not().sum().item<int64_t>();
    if (bad > 0) r.elbo_problem = detail::concat(bad, " of ", r.elbo_n, " images have a non-finite ELBO");
    else if (!latent) r.elbo_bits_per_dim = bits_estimate(nelbo, dims);
    else {
      const Estimate nats = mean_and_se(nelbo);
      const double d = static_cast<double>(example_numel(model.shape()));
      r.latent_nelbo_per_dim = Estimate{nats.mean / d, nats.se / d};
    }
    r.elbo_seconds = seconds_since(start);
  }
  if (o.likelihood_n > 0) {
    const auto start = std::chrono::steady_clock::now();
    const torch::Tensor y =
        dequantize_pixels(reference_images.narrow(0, 0, std::min(o.likelihood_n, o.n))).to(on, dtype);
    r.likelihood_n = y.size(0);
    try {
      const LikelihoodResult l = model_log_likelihood(model, y, o.likelihood);
      r.likelihood_nfe = l.nfe;
      const int64_t bad = untrusted_points(model, l).sum().item<int64_t>();
      if (bad == 0) r.likelihood_bits_per_dim = bits_estimate(-l.log_prob, dims);
      else
        r.likelihood_problem = detail::concat(bad, " of ", r.likelihood_n,
                                              " images' probability-flow solves failed or diverged");
    } catch (const NumericError& e) {
      r.likelihood_problem = std::string("the probability-flow solve failed: ") + e.what();
    }
    r.likelihood_seconds = seconds_since(start);
  }
  return r;
}

ReconstructionResult evaluate_reconstruction(AutoencoderModel& autoencoder, Classifier& classifier,
                                             const ImageData& reference, int64_t n, uint64_t seed) {
  const std::vector<int64_t> shape = autoencoder.shape();
  SDEGEN_CHECK(reference.x.defined() && reference.shape() == shape, "evaluate_reconstruction: the autoencoder takes ",
               "images of ", torch::IntArrayRef(shape), " but '", reference.source, "' holds ",
               reference.x.defined() ? reference.x.sizes() : torch::IntArrayRef{});
  const ClassifierOptions& c = classifier->options;
  SDEGEN_CHECK(c.in_channels() == shape[0] && c.height() == shape[1] && c.width() == shape[2],
               "evaluate_reconstruction: the classifier takes images of [", c.in_channels(), ", ", c.height(), ", ",
               c.width(), "], the autoencoder ", torch::IntArrayRef(shape));
  SDEGEN_CHECK(n >= 2 && 2 * n <= reference.size(), "evaluate_reconstruction: n = ", n, " must be >= 2 and at most ",
               "half of the ", reference.size(), " images of '", reference.source, "'");
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor rows = torch::randperm(reference.size(), generator, torch::TensorOptions(torch::kLong));
  const torch::Tensor a = reference.x.index_select(0, rows.narrow(0, 0, n));
  const torch::Tensor b = reference.x.index_select(0, rows.narrow(0, n, n));
  ReconstructionResult r;
  r.n = n;
  r.originals = b.to(torch::kFloat);
  r.reconstructions =
      decode_latents(autoencoder, posterior_means(autoencoder, b.to(device_of(autoencoder))))
          .to(torch::kCPU, torch::kFloat)
          .clamp(-1.0, 1.0);
  const FeatureStats reference_stats = feature_stats(image_features(classifier, a), "the reference images' features");
  r.fd = frechet_distance(feature_stats(image_features(classifier, r.reconstructions), "the reconstructions' features"),
                          reference_stats);
  r.fd_floor =
      frechet_distance(feature_stats(image_features(classifier, r.originals), "the held-out images' features"),
                       reference_stats);
  const torch::Tensor mse = (r.reconstructions - r.originals).to(torch::kDouble).square().flatten(1).mean(1);
  r.psnr = mean_and_se(10.0 * torch::log10(4.0 / mse.clamp_min(1e-12)));
  r.seconds = seconds_since(start);
  return r;
}

nlohmann::json to_json(const ReconstructionResult& r) {
  return {{"n", r.n},
          {"fd", r.fd},
          {"fd_floor", r.fd_floor},
          {"fd_over_floor", r.fd_floor > 0 ? nlohmann::json(r.fd / r.fd_floor) : nlohmann::json()},
          {"psnr", r.psnr.mean},
          {"psnr_stderr", r.psnr.se},
          {"seconds", r.seconds}};
}

nlohmann::json to_json(const ImageEvalResult& r) {
  const auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json rows = nlohmann::json::array();
  for (const GuidanceRow& g : r.rows)
    rows.push_back({{"weight", g.weight},
                    {"fd", g.fd},
                    {"fd_over_floor", r.fd_floor > 0 ? nlohmann::json(g.fd / r.fd_floor) : nlohmann::json()},
                    {"class_accuracy", optional(g.class_accuracy)},
                    {"histogram", g.histogram},
                    {"nfe", g.nfe},
                    {"seconds", g.seconds}});
  const auto mean = [](const std::optional<Estimate>& e) { return e ? nlohmann::json(e->mean) : nlohmann::json(); };
  const auto se = [](const std::optional<Estimate>& e) { return e ? nlohmann::json(e->se) : nlohmann::json(); };
  const nlohmann::json& first = rows.front();
  return {{"kind", r.kind},
          {"source", r.source},
          {"shape", r.shape},
          {"n", r.n},
          {"classes", r.classes},
          {"sampler", r.sampler},
          {"sampler_steps", r.sampler_steps},
          {"fd_floor", r.fd_floor},
          // The first guidance weight's figures (the default one), then every weight's.
          {"guidance_weight", first.at("weight")},
          {"fd", first.at("fd")},
          {"class_accuracy", first.at("class_accuracy")},
          {"histogram", first.at("histogram")},
          {"nfe", first.at("nfe")},
          {"guidance", rows},
          {"bits_per_dim", mean(r.likelihood_bits_per_dim)},
          {"bits_per_dim_stderr", se(r.likelihood_bits_per_dim)},
          {"likelihood_n", r.likelihood_n},
          {"likelihood_nfe", r.likelihood_nfe},
          {"likelihood_problem", r.likelihood_problem},
          {"likelihood_seconds", r.likelihood_seconds},
          {"elbo_bits_per_dim", mean(r.elbo_bits_per_dim)},
          {"elbo_bits_per_dim_stderr", se(r.elbo_bits_per_dim)},
          {"elbo_n", r.elbo_n},
          {"elbo_problem", r.elbo_problem},
          {"elbo_seconds", r.elbo_seconds},
          {"latent", r.latent},
          {"latent_nelbo_per_dim", mean(r.latent_nelbo_per_dim)},
          {"latent_nelbo_per_dim_stderr", se(r.latent_nelbo_per_dim)}};
}

}  // namespace sdegen
