// sdegen eval on an image model: generated images against held-out real ones in a classifier's
// features (eval/image_evaluate.h), printed as a table and written as JSON.
#include "apps/image_eval.h"

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <unistd.h>  // isatty

#include "sdegen/core/check.h"
#include "sdegen/eval/classifier_cache.h"
#include "sdegen/io/csv.h"
#include "sdegen/io/png.h"
#include "sdegen/train/classifier_store.h"

namespace sdegen::app {
namespace {

// The reference (held-out) images and an independent real set for the floor: Fashion-MNIST's
// test and training splits; a folder and the model's training folder; or, when the folder is the
// training folder itself (or that folder is gone), two seeded halves of the folder.
std::pair<ImageData, ImageData> real_images(const std::string& spec, const std::string& trained_on,
                                            const std::vector<int64_t>& shape, uint64_t seed) {
  if (spec == "fashion-mnist") {
    ImageData test = load_fashion_mnist("test"), train = load_fashion_mnist("train");
    test.source = "fashion-mnist:test", train.source = "fashion-mnist:train";
    return {test, train};
  }
  const auto load = [&](const std::string& dir) {
    SDEGEN_CHECK(std::filesystem::is_directory(dir), "'", dir,
                 "' is not fashion-mnist or a folder of PNG images; pass the test images as --data");
    ImageData images = load_image_folder(dir);
    if (images.shape() != shape && shape[1] == shape[2]) images = load_image_folder(dir, shape[1]);
    return images;
  };
  const bool own_training_folder =
      std::filesystem::is_directory(trained_on) && std::filesystem::equivalent(spec, trained_on);
  if (!own_training_folder && std::filesystem::is_directory(trained_on)) return {load(spec), load(trained_on)};
  const ImageData all = load(spec);
  torch::manual_seed(seed);
  const int64_t n = all.size(), half = n / 2;
  SDEGEN_CHECK(half >= 2, "'", spec, "' has ", n, " images; comparing with real images needs at least 4");
  const torch::Tensor order = torch::randperm(n, torch::kLong);
  return {all.select(order.narrow(0, 0, half), spec + " (a seeded half)"),
          all.select(order.narrow(0, half, half), spec + " (the other half)")};
}

TrainedClassifier metric_classifier(const ImageEvalArgs& a, const std::string& spec) {
  if (!a.classifier.empty()) return load_classifier(a.classifier);
  SDEGEN_CHECK(spec == "fashion-mnist", "the image metrics need a classifier of '", spec,
               "': train one with sdegen train-classifier --data ", spec, " --out CLF, then pass --classifier CLF");
  return fashion_mnist_classifier("", a.threads);
}

std::string figure(const std::optional<Estimate>& e, const std::string& problem) {
  if (e) return fmt::format("{:.4f} +- {:.4f}", e->mean, e->se);
  return problem.empty() ? std::string("-") : "untrusted: " + problem;
}

void print_table(const ImageEvalResult& r, const std::vector<std::string>& class_names) {
  fmt::print("{} model, {} images of {} from {} ({} steps) against {} images of '{}'\n", r.kind, r.n,
             fmt::join(r.shape, "x"), r.sampler, r.sampler_steps, r.n, r.source);
  fmt::print("  fd_floor (real against real, same n)   {:.4f}\n", r.fd_floor);
  fmt::print("  guidance        fd   fd/floor   class acc   evals   seconds   predicted classes\n");
  for (const GuidanceRow& g : r.rows)
    fmt::print("  {:8.2f} {:9.4f} {:10.2f} {:>11} {:7d} {:9.1f}   {}\n", g.weight, g.fd, g.fd / r.fd_floor,
               g.class_accuracy ? fmt::format("{:.4f}", *g.class_accuracy) : std::string("-"), g.nfe, g.seconds,
               fmt::join(g.histogram, " "));
  if (!class_names.empty()) fmt::print("  classes: {}\n", fmt::join(class_names, ", "));
  if (r.latent) {
    if (r.elbo_n > 0)
      fmt::print("negative ELBO of {} test images' latents, nats per latent dimension (a figure of the latent space, "
                 "not pixel bits): {}\n",
                 r.elbo_n, figure(r.latent_nelbo_per_dim, r.elbo_problem));
    return;
  }
  if (r.elbo_n == 0 && r.likelihood_n == 0) return;
  fmt::print("bits per dimension of {} dequantised test images (unconditional):\n", r.elbo_n);
  fmt::print("  from the ELBO (an upper bound)   {}\n", figure(r.elbo_bits_per_dim, r.elbo_problem));
  if (r.likelihood_n > 0)
    fmt::print("  probability flow ({} images, Hutchinson, {} evaluations)   {}\n", r.likelihood_n, r.likelihood_nfe,
               figure(r.likelihood_bits_per_dim, r.likelihood_problem));
}

void print_reconstruction(const ReconstructionResult& r, const std::string& source) {
  fmt::print("autoencoder: {} held-out images of '{}' reconstructed through their latents\n", r.n, source);
  fmt::print("  reconstruction fd {:.4f}, fd_floor (the same images themselves) {:.4f}, {:.2f} times\n", r.fd,
             r.fd_floor, r.fd / r.fd_floor);
  fmt::print("  PSNR {:.2f} +- {:.2f} dB\n", r.psnr.mean, r.psnr.se);
}

// An autoencoder's own figures: its reconstructions of held-out images, and a grid of them (each
// row of originals followed by a row of their reconstructions).
void run_autoencoder_eval(const ImageEvalArgs& a, TrainedModel& t, Classifier& net, const ImageData& reference) {
  auto& autoencoder = dynamic_cast<AutoencoderModel&>(*t.model);
  const ReconstructionResult r =
      evaluate_reconstruction(autoencoder, net, reference, std::min(a.options.n, reference.size() / 2), a.options.seed);
  print_reconstruction(r, reference.source);
  nlohmann::json j = {{"kind", "autoencoder"}, {"checkpoint", a.checkpoint}, {"reconstruction", to_json(r)}};
  write_file_atomic(a.out, j.dump(2) + "\n");
  fmt::print("wrote {}\n", a.out);
  if (!a.grid.empty()) {
    const int64_t columns = std::min<int64_t>(10, r.n), rows = std::min<int64_t>(5, r.n / columns);
    std::vector<torch::Tensor> pairs;
    for (int64_t i = 0; i < rows; ++i) {
      pairs.push_back(r.originals.narrow(0, i * columns, columns));
      pairs.push_back(r.reconstructions.narrow(0, i * columns, columns));
    }
    write_image_grid(a.grid, torch::cat(pairs), columns);
    fmt::print("wrote {} (rows of held-out images, each followed by its reconstructions)\n", a.grid);
  }
}

}  // namespace

void run_image_eval(const ImageEvalArgs& a, TrainedModel& t) {
  const std::string spec = a.data.empty() ? t.data : a.data;
  const std::vector<int64_t> shape = t.image_shape();
  const TrainedClassifier classifier = metric_classifier(a, spec);
  auto [reference, other] = real_images(spec, t.data, shape, a.options.seed);
  Classifier net = classifier.net;
  if (t.model->kind() == "autoencoder") return run_autoencoder_eval(a, t, net, reference);
  const bool tty = isatty(fileno(stderr));
  // A line that updates on a terminal; in a log, a line at each tenth of the images.
  const auto start = std::chrono::steady_clock::now();
  const auto progress = [tty, start, last = int64_t{0}](double w, int64_t done, int64_t total) mutable {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (tty) {
      fmt::print(stderr, "\rguidance {}: {}/{} images, {:.0f} s", w, done, total, seconds);
      if (done == total) fmt::print(stderr, "\n");
    } else if (done == total || 10 * done / total > 10 * last / total) {
      fmt::print(stderr, "guidance {}: {}/{} images, {:.0f} s\n", w, done, total, seconds);
    }
    last = done == total ? 0 : done;
  };
  const ImageEvalResult r = evaluate_images(*t.model, net, reference, other, a.options, progress, t.latent.get());
  std::vector<std::string> names = classifier.class_names;
  print_table(r, names);
  nlohmann::json j = to_json(r);
  if (t.latent) {
    // Which part limits quality: the autoencoder's reconstructions bound what any latent model shows.
    const ReconstructionResult recon = evaluate_reconstruction(
        t.latent->autoencoder(), net, reference, std::min(a.options.n, reference.size() / 2), a.options.seed);
    print_reconstruction(recon, reference.source);
    j["reconstruction"] = to_json(recon);
  }
  j["checkpoint"] = a.checkpoint;
  j["classifier"] = a.classifier.empty() ? "cached fashion-mnist classifier" : a.classifier;
  j["classifier_test_accuracy"] = classifier.test_accuracy;
  j["classes"] = names;
  write_file_atomic(a.out, j.dump(2) + "\n");
  fmt::print("wrote {}\n", a.out);
  if (!a.grid.empty()) {
    const int64_t columns = r.classes > 0 ? r.classes : 10;
    write_image_grid(a.grid, r.first_images.narrow(0, 0, std::min<int64_t>(r.n, columns * columns)), columns);
    fmt::print("wrote {} (guidance {}, the first {} images)\n", a.grid, r.rows.front().weight,
               std::min<int64_t>(r.n, columns * columns));
  }
}

}  // namespace sdegen::app
