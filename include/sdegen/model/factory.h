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

// Samples any model from prior draws x0 (an affine model as above; a model with a free drift
// through sample_sde). A model without a probability flow (sde) refuses deterministic solvers.
Solution generate(const GenerativeModel& model, const torch::Tensor& x0, SamplerOptions options);

// n draws from a model's prior, [n, dim], in double precision on `device`.
torch::Tensor sample_model_prior(const GenerativeModel& model, int64_t n,
                                 const torch::Device& device = torch::kCPU);

}  // namespace sdegen
