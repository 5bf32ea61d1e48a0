#pragma once
// Models by name and by the configuration a checkpoint records.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sdegen/model/affine_model.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {

// sde (the general model), ode (continuous normalizing flow), flow, diffusion, score, vdm.
std::vector<std::string> model_names();

// The complete configuration of a named model (one of model_names(), or "consistency" or
// "autoencoder" (model/autoencoder.h), whose overrides' net gives the image shape) for data of
// dimension `dim`, with `overrides`
// applied on top: any subset of the keys of that kind's config() ("net" may itself be partial).
// An unknown kind or key is refused with the valid ones listed.
nlohmann::json model_config(const std::string& kind, int64_t dim, const nlohmann::json& overrides = {});

// Builds a model (fresh weights, double precision) from a complete configuration, as written by
// GenerativeModel::config() or model_config(); refuses an unknown kind, a missing or unknown
// key or a bad value with a message naming it.
ModelPtr make_model(const nlohmann::json& config);

// What to generate: labels [n] for a class-conditional model (empty: unconditional) and the
// classifier-free guidance weight (math.md: uncond + w (cond - uncond)).
struct Guidance {
  Condition condition;
  double weight = 1.0;
};

// Samples from an affine model: integrates to the model's data end and, where that end stops
// short of t = 1 (b(1) = 0 and a prediction that is singular there), finishes with the model's
// data prediction, the usual final denoising step. Guidance applies to every step, the final
// one included. The observer sees the state at each step of the solve (not the final denoising).
Solution generate(const AffineModel& model, const torch::Tensor& x0, SamplerOptions options,
                  const Guidance& guidance = {}, const Observer& observer = {});

// Samples any model from prior draws x0 (an affine model as above; a model with a free drift
// through sample_sde). A model without a probability flow (sde) refuses deterministic solvers.
Solution generate(const GenerativeModel& model, const torch::Tensor& x0, SamplerOptions options,
                  const Guidance& guidance = {}, const Observer& observer = {});

// n draws from a model's prior, [n, *shape], in the model's dtype on `device` (default: the
// model's), drawn on the CPU from `generator` (default: LibTorch's global CPU one) and moved there,
// so that a seed gives the same points on every device.
torch::Tensor sample_model_prior(const GenerativeModel& model, int64_t n,
                                 const c10::optional<torch::Device>& device = c10::nullopt,
                                 const c10::optional<torch::Generator>& generator = c10::nullopt);

}  // namespace sdegen
