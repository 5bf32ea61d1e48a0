#pragma once
// What each named model trains well with, given the size of the data: the network and the
// training options (the most steps, learning-rate schedule, validation cadence, early stopping).
// The CLI's train and compare commands start from these and apply the user's flags on top. Every
// choice and the measurement behind it is in recipe.cpp; the figures are in the README.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "sdegen/train/options.h"

namespace sdegen {

struct Recipe {
  nlohmann::json model;  // overrides for model_config(kind, dim, ...)
  TrainOptions options;  // steps is the most; validation stops a run earlier when it stalls
  // What validation judges weights by: "nll" (the likelihood through the probability flow, the
  // figure held-out evaluation reports) or "nelbo" (the negative ELBO; for models without a
  // probability flow, and the ode model, whose ELBO is its likelihood).
  std::string validation = "nelbo";
};

// Validations over a recipe's run: often enough to stop within a few percent of the best step.
constexpr int64_t kValidationsPerRun = 40;

// Draws of t per validation row for the validation ELBO: more for small validation sets, whose
// figure would otherwise be too noisy to rank checkpoints by (about 4096 draws in all, 1 to 16
// per row).
int64_t validation_time_samples(int64_t validation_rows);

// For `rows` training rows of dimension `dim` (standardised). Throws InvalidArgument for an
// unknown kind or rows, dim < 1.
Recipe recommended_recipe(const std::string& kind, int64_t rows = 1000, int64_t dim = 1);

}  // namespace sdegen
