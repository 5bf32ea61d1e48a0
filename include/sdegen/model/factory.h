#pragma once
// Models by name and by the configuration a checkpoint records.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "sdegen/model/affine_model.h"
#include "sdegen/sample/sampler.h"

namespace sdegen {

// The specialisations that can be built now: flow, diffusion, score, vdm. (sde and ode, the
// general model and the continuous normalizing flow, are not implemented yet.)
std::vector<std::string> model_names();

// Rebuilds a model's architecture from GenerativeModel::config(); refuses an unknown kind or a
// malformed configuration with a message naming the key.
ModelPtr make_model(const nlohmann::json& config);

// Samples from an affine model: integrates to the model's data end and, where that end stops
// short of t = 1 (b(1) = 0 and a prediction that is singular there), finishes with the model's
// data prediction, the usual final denoising step.
Solution generate(const AffineModel& model, const torch::Tensor& x0, SamplerOptions options);

}  // namespace sdegen
