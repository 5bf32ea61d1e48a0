#pragma once
// A latent space: where a latent model (latent diffusion, Rombach et al. 2022) learns. An
// autoencoder's (model/autoencoder.h) posterior means, shifted and scaled to unit spread:
//   encode(images) = (mean_q(images) - shift) * scale,   decode(z) = decoder(z / scale + shift),
// with shift the mean and 1 / scale the standard deviation of every latent value of the training
// images (one number each, as latent diffusion's scale factor: the prior N(0, I) of every model
// then has the data's scale). The posterior's spread is small next to the means' with a small KL
// weight; the means are what the generative model learns.
//
// A latent model's checkpoint embeds its latent space: to_json() in the checkpoint's extra and the
// autoencoder's weights as an attachment (weights_bytes), so that it samples and evaluates after
// the autoencoder's run directory is gone.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sdegen/model/autoencoder.h"

namespace sdegen {

// The autoencoder's posterior means of images [n, *image_shape], unstandardised: [n, *latent_shape],
// in batches of `batch`, without gradient, in eval mode.
torch::Tensor posterior_means(AutoencoderModel& autoencoder, const torch::Tensor& images, int64_t batch = 256);

// The autoencoder's decoding of raw (unstandardised) latents [n, *latent_shape] to images, in
// batches of `batch`, without gradient.
torch::Tensor decode_latents(AutoencoderModel& autoencoder, const torch::Tensor& means, int64_t batch = 256);

class LatentSpace {
 public:
  // Refuses a scale that is not positive and finite, a shift that is not finite.
  LatentSpace(std::shared_ptr<AutoencoderModel> autoencoder, double shift, double scale);
  // shift and scale from the raw posterior means (posterior_means) of the training images, n >= 2.
  static LatentSpace fit(std::shared_ptr<AutoencoderModel> autoencoder, const torch::Tensor& means);

  // Images [n, *image_shape] to standardised latents [n, *latent_shape] and back (float32 or the
  // autoencoder's dtype, no gradient, in batches of `batch`).
  torch::Tensor encode(const torch::Tensor& images, int64_t batch = 256) const;
  torch::Tensor decode(const torch::Tensor& latents, int64_t batch = 256) const;
  // The standardisation alone, on raw posterior means and back.
  torch::Tensor standardize(const torch::Tensor& raw) const { return (raw - shift_) * scale_; }
  torch::Tensor unstandardize(const torch::Tensor& z) const { return z / scale_ + shift_; }

  std::vector<int64_t> image_shape() const { return autoencoder_->shape(); }
  std::vector<int64_t> latent_shape() const { return autoencoder_->latent_shape(); }
  double shift() const { return shift_; }
  double scale() const { return scale_; }
  AutoencoderModel& autoencoder() const { return *autoencoder_; }

  // {"autoencoder": its model config, "shift", "scale", "image_shape", "latent_shape"}.
  nlohmann::json to_json() const;
  // The autoencoder's parameters and buffers as torch::nn::Module::save writes them.
  std::string weights_bytes() const;
  // The inverse of to_json and weights_bytes. Refuses (InvalidArgument) a configuration that does
  // not build an autoencoder, and weights of another layout, naming `where`; unreadable bytes and
  // NaN or infinite weights are an IoError naming it.
  static LatentSpace from_stored(const nlohmann::json& json, const std::string& weights, const std::string& where);

 private:
  std::shared_ptr<AutoencoderModel> autoencoder_;
  double shift_, scale_;
};

}  // namespace sdegen
