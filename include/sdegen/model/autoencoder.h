#pragma once
// A KL autoencoder as a model: the variational autoencoder of net/autoencoder.h with a Gaussian
// decoder, trained by the same loop as every model (train/trainer.h: checkpoints, resuming,
// validation, the weight average). It is what latent models (model/latent.h) stand on, not a
// sampler: it has no SDE (sde() is refused with the reason).
//
// With encoder q(z | x) = N(mean, exp(logvar)), prior N(0, I) and decoder p(x | z) =
// N(decode(z), s^2 I), the ELBO of an image x of d values is
//   ELBO(x) = E_q log p(x | z) - KL(q(z | x) || N(0, I))
//           = -|x - decode(z)|^2 / (2 s^2) - d/2 log(2 pi s^2) - KL,
// one reparameterised draw z = mean + exp(logvar / 2) eps per image. Latent diffusion's KL
// autoencoder trains on the reconstruction error plus a small weight beta times the KL; that is
// this ELBO with s^2 = beta / 2:
//   loss = (|x - decode(z)|^2 + beta KL) / d = (beta / d) (-ELBO(x) - d/2 log(pi beta)),
// a weight times the negative ELBO plus a constant, averaged over the batch. elbo() reports the
// ELBO's terms as ElboTerms: reconstruction = E_q log p(x | z), prior = KL, drift = 0.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "sdegen/model/generative_model.h"
#include "sdegen/net/autoencoder.h"

namespace sdegen {

struct AutoencoderModelOptions {
  nlohmann::json net;  // AutoencoderOptions as JSON (net/autoencoder.h)
  // beta, the KL's weight against the summed squared error of an image in [-1, 1] (README, "Latent
  // diffusion", measured on Fashion-MNIST); > 0.
  double kl_weight = 1e-4;
  std::string dtype = "float32";  // "float32" or "float64"
};

class AutoencoderModel : public GenerativeModel {
 public:
  explicit AutoencoderModel(const AutoencoderModelOptions& options);

  std::string kind() const override { return "autoencoder"; }
  int64_t dim() const override { return example_numel(shape()); }
  std::vector<int64_t> shape() const override;
  torch::Tensor loss(const torch::Tensor& y, const Condition& condition = {}) override;
  // time_samples is not used: the one draw is of z.
  ElboTerms elbo(const torch::Tensor& y, int64_t time_samples, const Condition& condition = {}) override;
  // Refused: an autoencoder maps images to latents and back; a model trained on its latents samples.
  std::shared_ptr<const GenerativeSde> sde(const DiffusionSpec& diffusion) const override;
  bool has_probability_flow() const override { return false; }
  nlohmann::json config() const override;

  std::vector<int64_t> latent_shape() const { return net_->options.latent_shape(); }
  LatentPosterior encode(const torch::Tensor& images) { return net_->encode(images.to(dtype())); }
  torch::Tensor decode(const torch::Tensor& latents) { return net_->decode(latents.to(dtype())); }
  const AutoencoderModelOptions& options() const { return options_; }
  torch::Dtype dtype() const { return options_.dtype == "float32" ? torch::kFloat : torch::kDouble; }

 private:
  // The ELBO's terms of a batch and the squared error behind the reconstruction term.
  struct Pass {
    ElboTerms terms;
    torch::Tensor squared_error;  // [B]
  };
  Pass pass(const torch::Tensor& y, const Condition& condition);

  AutoencoderModelOptions options_;
  AutoencoderNet net_{nullptr};
};

// The configuration keys with their defaults (net: a 1x4x4 placeholder that overrides replace).
nlohmann::json autoencoder_default_config();
AutoencoderModelOptions autoencoder_model_options_from_json(const nlohmann::json& config);

}  // namespace sdegen
