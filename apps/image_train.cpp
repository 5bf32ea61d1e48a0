// sdegen train on images: Fashion-MNIST or a folder of PNG images, a U-Net in any model,
// class-conditional (with label dropout for classifier-free guidance) when the images have labels
// (the general sde and ode models, which have no prediction to guide, learn them unconditionally).
#include <fmt/core.h>

#include <filesystem>

#include "apps/commands.h"
#include "apps/json_config.h"
#include "apps/train_args.h"
#include "sdegen/core/check.h"
#include "sdegen/data/images.h"
#include "sdegen/io/csv.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/model/autoencoder.h"
#include "sdegen/model/factory.h"
#include "sdegen/model/latent.h"
#include "sdegen/net/dit.h"
#include "sdegen/net/unet.h"
#include "sdegen/train/checkpoint.h"
#include "sdegen/train/recipe.h"
#include "sdegen/train/trainer.h"
#include "sdegen/train/validation.h"

namespace sdegen::app {

bool is_image_data(const std::string& spec) {
  // A directory named *.csv is a mistaken CSV path, which the table reader names as such.
  const bool csv_name = std::filesystem::path(spec).extension() == ".csv";
  return spec == "fashion-mnist" || (!spec.empty() && !csv_name && std::filesystem::is_directory(spec));
}

ImageData load_training_images(const std::string& spec, int64_t image_size) {
  if (spec == "fashion-mnist") {
    SDEGEN_CHECK(image_size == 0, "--image-size applies to a folder of images; fashion-mnist is 28x28");
    return load_fashion_mnist("train");
  }
  return load_image_folder(spec, image_size);
}

namespace {

// The U-Net of the image recipe for images of `shape`: attention at the lowest level only (49
// positions for 28x28), where it is cheap; as many halvings (up to two) as the size allows.
UNetOptions recipe_unet(const std::vector<int64_t>& shape, int64_t classes, int64_t base_channels, bool latent) {
  UNetOptions u(shape[0], shape[1], shape[2]);
  std::vector<int64_t> mult{1, 2, 2};
  while (mult.size() > 1 && (shape[1] % (int64_t{1} << (mult.size() - 1)) || shape[2] % (int64_t{1} << (mult.size() - 1))))
    mult.pop_back();
  const int64_t lowest = shape[1] >> (mult.size() - 1);
  u.channel_mult(mult).attention_resolutions({lowest}).num_classes(classes);
  u.base_channels(base_channels > 0 ? base_channels : latent ? kLatentBaseChannels : kImageBaseChannels);
  return u;
}

// The DiT of the image recipe: DiTOptions' defaults where --width (the transformer's hidden
// features), --depth, --patch, --heads and --mlp-ratio are not given, except on latents: there
// the width is 64 and the patch 1 where 2 does not divide the latent (7x7). Measured on
// Fashion-MNIST's 4x7x7 latents at equal training time (README "Latent diffusion and the DiT"):
// width 64 took 0.087 s a step and reached fd 7.76, width 128 0.246 s and fd 10.3.
DiTOptions recipe_dit(const TrainArgs& a, const std::vector<int64_t>& shape, int64_t classes, bool latent) {
  DiTOptions d(shape[0], shape[1], shape[2]);
  d.num_classes(classes);
  if (a.width > 0) d.hidden(a.width);
  else if (latent) d.hidden(64);
  if (a.depth >= 0) d.depth(a.depth);
  if (a.patch > 0) d.patch(a.patch);
  else if (shape[1] % d.patch() || shape[2] % d.patch()) d.patch(1);  // one token per position
  if (a.heads > 0) d.heads(a.heads);
  if (a.mlp_ratio > 0) d.mlp_ratio(a.mlp_ratio);
  check_dit_options(d);
  return d;
}

// A latent model's training data: the standardised latents of every image and the latent space,
// fitted to the training rows' latents. A resumed run takes the space its checkpoint embeds (with
// or without --latent), so that it goes on in the same one; a run on pixels has neither.
struct Latents {
  std::shared_ptr<LatentSpace> space;
  torch::Tensor x;           // [n, *latent_shape], or the images themselves
  nlohmann::json record;     // the checkpoint's "latent" entry
};

Latents latents_of(const TrainArgs& a, const ImageData& images, const torch::Tensor& train_rows) {
  if (a.resume && has_checkpoint(a.out)) {
    const nlohmann::json config = load_checkpoint_config(a.out);
    std::shared_ptr<LatentSpace> stored = checkpoint_latent_space(a.out, config);
    SDEGEN_CHECK(stored || a.latent.empty(), "--latent: the run in '", a.out, "' was trained on pixels, not on latents");
    if (!stored) return {nullptr, images.x, nullptr};
    fmt::print(stderr, "encoding {} images of '{}' with the autoencoder the run embeds\n", images.size(), a.data);
    return {stored, stored->encode(images.x), config.at("extra").at("latent")};
  }
  if (a.latent.empty()) return {nullptr, images.x, nullptr};
  const TrainedModel ae = load_trained_model(a.latent);
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderModel>(ae.model);
  SDEGEN_CHECK(autoencoder != nullptr, "--latent '", a.latent, "' holds a '", ae.model->kind(),
               "' model; it must be an autoencoder (sdegen train --model autoencoder)");
  SDEGEN_CHECK(autoencoder->shape() == images.shape(), "--latent '", a.latent, "' encodes images of ",
               torch::IntArrayRef(autoencoder->shape()), "; '", a.data, "' holds ",
               torch::IntArrayRef(images.shape()));
  fmt::print(stderr, "encoding {} images of '{}' with the autoencoder of '{}'\n", images.size(), a.data, a.latent);
  const torch::Tensor means = posterior_means(*autoencoder, images.x);
  auto space = std::make_shared<LatentSpace>(LatentSpace::fit(autoencoder, means.index_select(0, train_rows)));
  nlohmann::json record = space->to_json();
  record["source"] = a.latent;
  return {space, space->standardize(means), record};
}

}  // namespace

AutoencoderOptions recipe_autoencoder(const TrainArgs& a, const std::vector<int64_t>& shape) {
  AutoencoderOptions o(shape[0], shape[1], shape[2]);
  const int64_t b = a.base_channels > 0 ? a.base_channels : 16;
  std::vector<int64_t> channels{b, 2 * b, 4 * b};
  while (channels.size() > 1 && (shape[1] % (int64_t{1} << (channels.size() - 1)) ||
                                 shape[2] % (int64_t{1} << (channels.size() - 1))))
    channels.pop_back();
  o.channels(channels);
  if (a.latent_channels > 0) o.latent_channels(a.latent_channels);
  check_autoencoder_options(o);
  return o;
}

void run_image_training(TrainArgs& a, const CLI::App& command) {
  SDEGEN_CHECK(a.net.empty() || a.net == "unet" || a.net == "dit",
               "images train a U-Net or a diffusion transformer (--net unet|dit), got --net ", a.net);
  const bool dit = a.net == "dit", autoencoder = a.model == "autoencoder";
  SDEGEN_CHECK(!autoencoder || (a.net.empty() && a.latent.empty()), "--model autoencoder trains its own encoder and ",
               "decoder on pixels: --net and --latent are for the models trained on its latents");
  SDEGEN_CHECK(autoencoder || (a.latent_channels == 0 && a.kl_weight == 0), "--latent-channels and --kl-weight shape ",
               "an autoencoder (--model autoencoder)");
  SDEGEN_CHECK(dit || (a.width == 0 && a.depth == -1 && a.patch == 0 && a.heads == 0 && a.mlp_ratio == 0),
               "--width, --depth, --patch, --heads and --mlp-ratio shape the diffusion transformer (--net dit); the "
               "U-Net takes --base-channels");
  SDEGEN_CHECK(!dit || a.base_channels == 0, "--base-channels shapes the U-Net; the diffusion transformer takes "
               "--width, --depth, --patch, --heads and --mlp-ratio");
  // The general models (sde, ode) have no prediction to guide: they learn the images without labels.
  // So does the autoencoder, which is trained unconditionally.
  const bool general = a.model == "sde" || a.model == "ode" || autoencoder;
  SDEGEN_CHECK(a.p_uncond >= 0 && a.p_uncond <= 1, "--p-uncond must lie in [0, 1], got ", a.p_uncond);
  SDEGEN_CHECK(a.steps >= 0 && a.lr >= 0 && a.base_channels >= 0 && a.image_size >= 0,
               "--steps, --lr, --base-channels and --image-size must be >= 0 (0: the recipe's)");
  const ImageData images = load_training_images(a.data, a.image_size);
  // Hold out a seeded 5% (at most 1000 images) for validation: the checkpoint keeps the weights
  // with the best validation -ELBO.
  const int64_t n = images.size();
  const int64_t n_val = std::min<int64_t>(1000, n / 20);
  SDEGEN_CHECK(n - n_val >= 1, "'", a.data, "' has too few images to train on (", n, ")");
  torch::manual_seed(a.options.seed());
  const torch::Tensor order = torch::randperm(n, torch::kLong);
  const torch::Tensor train_rows = order.narrow(0, n_val, n - n_val), val_rows = order.narrow(0, 0, n_val);
  const bool labelled = images.labels.defined() && !general;
  if (images.labels.defined() && general && !autoencoder)
    fmt::print("the '{}' model is unconditional: it learns the images of '{}' without their labels\n", a.model,
               a.data);
  // A latent model learns the autoencoder's standardised latents of the images.
  const Latents encoded = latents_of(a, images, train_rows);
  const std::shared_ptr<LatentSpace>& latent = encoded.space;
  const torch::Tensor& x = encoded.x;
  const std::vector<int64_t> space = latent ? latent->latent_shape() : images.shape();

  const int64_t classes = labelled ? images.num_classes() : 0;
  nlohmann::json net;
  if (autoencoder) {
    net = to_json(recipe_autoencoder(a, images.shape()));
  } else if (dit) {
    net = to_json(recipe_dit(a, space, classes, latent != nullptr));
  } else {
    const UNetOptions unet = recipe_unet(space, classes, a.base_channels, latent != nullptr);
    check_unet_options(unet);
    net = to_json(unet);
  }
  nlohmann::json overrides = a.model_overrides;
  if (!a.schedule.empty()) overrides["schedule"] = a.schedule;
  if (!a.prediction.empty()) overrides["prediction"] = a.prediction;
  add_coupling_overrides(a, overrides);
  if (overrides.contains("net")) net.update(overrides["net"]);
  overrides["net"] = net;
  if (!general) overrides["p_uncond"] = a.p_uncond;
  if (a.kl_weight > 0) overrides["kl_weight"] = a.kl_weight;
  const nlohmann::json config = model_config(a.model, 1, overrides);

  // The image recipe: Adam at 5e-4 with a short warm-up, cosine decay, clipping and a 0.999 weight
  // average (the averaged weights are what sampling uses). Batch 64 unless given.
  if (command.count("--batch") == 0) a.options.batch(64);
  a.options.steps(a.steps > 0 ? a.steps : autoencoder ? kAutoencoderSteps : kImageSteps);
  a.options.lr(a.lr > 0 ? a.lr : 5e-4);
  a.options.decay(!a.decay.empty() ? a.decay : "cosine");
  if (command.count("--warmup") == 0) a.options.warmup_steps(std::min<int64_t>(200, a.options.steps() / 10));
  if (command.count("--grad-clip") == 0) a.options.grad_clip(1.0);
  a.options.val_every(a.val_every >= 0 ? a.val_every
                                        : std::max<int64_t>(1, a.options.steps() / kImageValidationsPerRun));
  a.options.patience(a.patience >= 0 ? a.patience : 0);
  SDEGEN_CHECK(a.val_metric.empty() || a.val_metric == "nelbo", "images are validated by their ELBO (nelbo); ",
               "--val-metric ", a.val_metric, " is for vectors");

  torch::manual_seed(a.options.seed());
  ModelPtr model = make_model(config);
  model->to(a.on);
  TrainSetup setup;
  if (n_val > 0) {
    setup.val = x.index_select(0, val_rows);
    if (labelled) setup.val_labels = images.labels.index_select(0, val_rows);
    setup.validator = nelbo_validator(1, 256);
  }
  if (labelled) setup.labels = images.labels.index_select(0, train_rows);
  setup.resume = a.resume;
  setup.group = a.group;
  setup.overwrite = a.overwrite;
  setup.extra = {{"data", a.data},
                 {"images", {{"shape", images.shape()}, {"classes", images.class_names}, {"source", images.source}}}};
  if (latent) {
    setup.extra["latent"] = encoded.record;
    setup.attachments[kLatentWeightsFile] = latent->weights_bytes();
  }
  setup.on_start = [&] {
    std::filesystem::create_directories(a.out);
    const std::string record = (std::filesystem::path(a.out) / "run.json").string();
    if (!a.resume || !std::filesystem::exists(record)) write_file_atomic(record, options_json(command).dump(2) + "\n");
  };
  const TrainResult r = train(model, x.index_select(0, train_rows), a.options, a.out, setup);
  const std::vector<int64_t> s = images.shape();
  const std::string what = autoencoder ? "an autoencoder" : fmt::format("{} with a {}", a.model, dit ? "DiT" : "U-Net");
  const std::string where =
      latent ? fmt::format(" in the {}x{}x{} latents of '{}'", space[0], space[1], space[2], a.latent) : "";
  fmt::print("trained {}{} on '{}' ({} images of {}x{}x{}, {} classes): {} steps in {:.1f} s, final loss {:.4f}\n",
             what, where, a.data, n - n_val, s[0], s[1], s[2], images.num_classes(), r.steps, r.seconds, r.final_loss);
  for (const auto& m : r.validation) fmt::print("  {} = {:.4f}\n", m.name, m.value);
  if (r.best_step >= 0)
    fmt::print("  kept the weights of step {} ({} = {:.4f}) for sampling and evaluation\n", r.best_step,
               r.validation.front().name, r.best_value);
  fmt::print("checkpoint: {}\n", r.checkpoint);
}

}  // namespace sdegen::app
