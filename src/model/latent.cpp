#include "sdegen/model/latent.h"

#include <cmath>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/tensor.h"
#include "sdegen/io/module_archive.h"
#include "sdegen/model/factory.h"

namespace sdegen {
namespace {

// f on rows [i, i + batch) of x, concatenated.
template <typename F>
torch::Tensor batched(const torch::Tensor& x, int64_t batch, F f) {
  SDEGEN_CHECK(batch >= 1, "latent space: batch must be >= 1, got ", batch);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += batch) parts.push_back(f(x.narrow(0, i, std::min(batch, x.size(0) - i))));
  return torch::cat(parts);
}

}  // namespace

LatentSpace::LatentSpace(std::shared_ptr<AutoencoderModel> autoencoder, double shift, double scale)
    : autoencoder_(std::move(autoencoder)), shift_(shift), scale_(scale) {
  SDEGEN_CHECK(autoencoder_ != nullptr, "latent space: no autoencoder");
  SDEGEN_CHECK(std::isfinite(shift) && std::isfinite(scale) && scale > 0,
               "latent space: the shift must be finite and the scale positive and finite, got shift ", shift,
               " and scale ", scale);
  autoencoder_->eval();
}

torch::Tensor posterior_means(AutoencoderModel& autoencoder, const torch::Tensor& images, int64_t batch) {
  const std::vector<int64_t> s = autoencoder.shape();
  SDEGEN_CHECK(images.dim() == 4 && images.sizes().slice(1).vec() == s, "latent space: expected images [n, ", s[0],
               ", ", s[1], ", ", s[2], "], got ", images.sizes());
  autoencoder.eval();
  return batched(images, batch, [&](const torch::Tensor& x) { return autoencoder.encode(x).mean; });
}

LatentSpace LatentSpace::fit(std::shared_ptr<AutoencoderModel> autoencoder, const torch::Tensor& means) {
  SDEGEN_CHECK(autoencoder != nullptr, "latent space: no autoencoder");
  const std::vector<int64_t> s = autoencoder->latent_shape();
  SDEGEN_CHECK(means.dim() == 4 && means.size(0) >= 2 && means.sizes().slice(1).vec() == s,
               "latent space: fitting the standardisation needs the posterior means of at least 2 images, [n, ", s[0],
               ", ", s[1], ", ", s[2], "], got ", means.sizes());
  const torch::Tensor raw = means.to(torch::kDouble);
  const double shift = raw.mean().item<double>(), std = raw.std().item<double>();
  SDEGEN_CHECK(std::isfinite(shift) && std::isfinite(std) && std > 0, "latent space: the autoencoder's latents of ",
               "these images have mean ", shift, " and spread ", std, "; they cannot be standardised");
  return LatentSpace(std::move(autoencoder), shift, 1.0 / std);
}

torch::Tensor LatentSpace::encode(const torch::Tensor& images, int64_t batch) const {
  return standardize(posterior_means(*autoencoder_, images, batch));
}

torch::Tensor decode_latents(AutoencoderModel& autoencoder, const torch::Tensor& means, int64_t batch) {
  const std::vector<int64_t> s = autoencoder.latent_shape();
  SDEGEN_CHECK(means.dim() == 4 && means.sizes().slice(1).vec() == s, "latent space: expected latents [n, ", s[0],
               ", ", s[1], ", ", s[2], "], got ", means.sizes());
  return batched(means, batch, [&](const torch::Tensor& z) { return autoencoder.decode(z); });
}

torch::Tensor LatentSpace::decode(const torch::Tensor& latents, int64_t batch) const {
  return decode_latents(*autoencoder_, unstandardize(latents), batch);
}

nlohmann::json LatentSpace::to_json() const {
  return {{"autoencoder", autoencoder_->config()},
          {"shift", shift_},
          {"scale", scale_},
          {"image_shape", image_shape()},
          {"latent_shape", latent_shape()}};
}

std::string LatentSpace::weights_bytes() const {
  torch::serialize::OutputArchive archive;
  autoencoder_->save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

LatentSpace LatentSpace::from_stored(const nlohmann::json& json, const std::string& weights, const std::string& where) {
  SDEGEN_CHECK(json.is_object() && json.contains("autoencoder") && json.contains("shift") && json.contains("scale") &&
                   json.at("shift").is_number() && json.at("scale").is_number(),
               "'", where, "': the latent space needs 'autoencoder', 'shift' and 'scale', got ", json.dump());
  // Building the autoencoder draws initial weights: put the default generator back after.
  const torch::Tensor generator = default_generator_state();
  ModelPtr model = make_model(json.at("autoencoder"));
  set_default_generator_state(generator);
  auto autoencoder = std::dynamic_pointer_cast<AutoencoderModel>(model);
  SDEGEN_CHECK(autoencoder != nullptr, "'", where, "': the latent space's model is a '", model->kind(),
               "', not an autoencoder");
  std::istringstream in(weights);
  TensorPairs pairs;
  const StoredTensorCheck check{"the stored weights", "the autoencoder its configuration describes",
                                [&](const std::string& why) { return IoError("'" + where + "': the autoencoder's " + why); }};
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(in, device_of(*autoencoder));  // onto its device, wherever it was saved
    read_module_tensors(archive, *autoencoder, pairs, check);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw IoError("'" + where + "': the autoencoder's weights are unreadable: " + what.substr(0, what.find('\n')));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("'" + where + "': the autoencoder's " + e.what());
  }
  commit_tensors(pairs);
  return LatentSpace(autoencoder, json.at("shift").get<double>(), json.at("scale").get<double>());
}

}  // namespace sdegen
