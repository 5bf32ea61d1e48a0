#include "sdegen/model/autoencoder.h"

#include <cmath>

#include "sdegen/core/check.h"
#include "sdegen/core/shard.h"
#include "sdegen/core/json_fields.h"

namespace sdegen {

AutoencoderModel::AutoencoderModel(const AutoencoderModelOptions& options) : options_(options) {
  SDEGEN_CHECK(std::isfinite(options.kl_weight) && options.kl_weight > 0,
               "autoencoder: kl_weight must be a positive number, got ", options.kl_weight);
  check_name("dtype", options.dtype, {"float32", "float64"});
  net_ = register_module("net", AutoencoderNet(autoencoder_options_from_json(options.net)));
  to(dtype());
}

std::vector<int64_t> AutoencoderModel::shape() const {
  const AutoencoderOptions& o = net_->options;
  return {o.in_channels(), o.height(), o.width()};
}

AutoencoderModel::Pass AutoencoderModel::pass(const torch::Tensor& y, const Condition& condition) {
  check_unconditional(*this, condition);
  const std::vector<int64_t> s = shape();
  SDEGEN_CHECK(y.dim() == 4 && y.sizes().slice(1).vec() == s, "the autoencoder takes images [B, ", s[0], ", ", s[1],
               ", ", s[2], "], got ", y.sizes());
  const torch::Tensor x = y.to(dtype());
  const LatentPosterior q = net_->encode(x);
  const torch::Tensor std = torch::exp(0.5 * q.logvar);
  const torch::Tensor z = q.mean + std * batch_randn_like(q.mean);
  const torch::Tensor squared_error = (x - net_->decode(z)).square().flatten(1).sum(1);
  const double d = static_cast<double>(dim()), var = options_.kl_weight / 2;  // the decoder's s^2
  ElboTerms terms;
  terms.reconstruction = -squared_error / (2 * var) - 0.5 * d * std::log(2 * M_PI * var);
  terms.prior = gaussian_kl_to_prior(q.mean, std, 1.0);
  terms.drift = torch::zeros_like(terms.prior);
  return {terms, squared_error};
}

torch::Tensor AutoencoderModel::loss(const torch::Tensor& y, const Condition& condition) {
  const Pass p = pass(y, condition);
  return ((p.squared_error + options_.kl_weight * p.terms.prior) / static_cast<double>(dim())).mean();
}

ElboTerms AutoencoderModel::elbo(const torch::Tensor& y, int64_t /*time_samples*/, const Condition& condition) {
  return pass(y, condition).terms;
}

std::shared_ptr<const GenerativeSde> AutoencoderModel::sde(const DiffusionSpec&) const {
  throw InvalidArgument(
      "an autoencoder maps images to latents and back; it has no SDE to sample or solve. Train a model on its "
      "latents (sdegen train --latent AE) and sample that");
}

nlohmann::json AutoencoderModel::config() const {
  return {{"kind", "autoencoder"}, {"net", options_.net}, {"kl_weight", options_.kl_weight}, {"dtype", options_.dtype}};
}

nlohmann::json autoencoder_default_config() {
  AutoencoderModelOptions o;
  return {{"kind", "autoencoder"},
          {"net", to_json(AutoencoderOptions(1, 4, 4))},
          {"kl_weight", o.kl_weight},
          {"dtype", o.dtype}};
}

AutoencoderModelOptions autoencoder_model_options_from_json(const nlohmann::json& config) {
  const JsonFields f(config, "autoencoder model", {"kind", "net", "kl_weight", "dtype"});
  SDEGEN_CHECK(f.text("kind") == "autoencoder", "autoencoder model: 'kind' must be \"autoencoder\", got ",
               f.text("kind"));
  AutoencoderModelOptions o;
  o.net = f.at("net");
  o.kl_weight = f.number("kl_weight");
  o.dtype = f.text("dtype");
  return o;
}

}  // namespace sdegen
