#pragma once
// Distances between two samples, each [n, d]. Sizes may differ.
#include <torch/torch.h>

#include <cstdint>

namespace sdegen {

// Exact 1-D Wasserstein-1 between the empirical distributions: the integral of |F_a - F_b|.
// a and b are [n] or [n, 1].
double wasserstein1(const torch::Tensor& a, const torch::Tensor& b);

// Kolmogorov-Smirnov statistic sup |F_a - F_b| (1-D).
double ks_statistic(const torch::Tensor& a, const torch::Tensor& b);

// Sliced Wasserstein-1: the mean of wasserstein1 over `projections` random unit directions,
// drawn from a generator seeded with `seed` so that two calls compare like with like.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t projections = 256,
                          uint64_t seed = 0);

}  // namespace sdegen
