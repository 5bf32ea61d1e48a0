#pragma once
// The conditional baseline a user would try before a conditional generative model: the same MLP
// regressing the generated values on the conditioning ones by mean squared error. It predicts
// the conditional mean, so where the data has several answers for one condition (a way round an
// obstacle on either side) it gives their average, which may be none of them.
#include <torch/torch.h>

#include <cstdint>

#include "sdegen/net/mlp.h"

namespace sdegen {

struct RegressorOptions {
  int64_t width = 128, depth = 3;
  int64_t steps = 4000, batch = 256;
  double lr = 2e-3;  // Adam's peak learning rate, with cosine decay to zero
  uint64_t seed = 0;  // initial weights and batches (torch's global generator is reseeded)
};

// An Mlp from conditions [n, k] to targets [n, d] (float64; t is unused and given as 0), trained
// by Adam on mini-batches of the rows; returned in eval mode. Refuses rows of different counts, a
// NaN, and options out of range, by name.
Mlp fit_mse_regressor(const torch::Tensor& conditions, const torch::Tensor& targets, const RegressorOptions& options = {});

}  // namespace sdegen
