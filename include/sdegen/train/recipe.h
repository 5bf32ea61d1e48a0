#pragma once
// What each named model trains well with on low-dimensional (standardised) data: the network,
// the number of steps and the learning-rate schedule. Measured on laplace5 (n_train 1000) on
// 2 cores, each trains in under 2 minutes; the figures are in the README. The CLI's train and
// compare commands start from these and apply the user's flags on top.
#include <nlohmann/json.hpp>

#include <string>

#include "sdegen/train/options.h"

namespace sdegen {

struct Recipe {
  nlohmann::json model;  // overrides for model_config(kind, dim, ...)
  int64_t steps = 0;
  double lr = 0.0;
  std::string decay;
};

// Throws InvalidArgument for an unknown kind.
Recipe recommended_recipe(const std::string& kind);

}  // namespace sdegen
