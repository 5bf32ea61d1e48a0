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

// Wasserstein-1 for samples of one column, sliced Wasserstein (256 directions, seed 0) otherwise.
double sample_distance(const torch::Tensor& a, const torch::Tensor& b);

// The mean sample_distance between matching chunks of `chunk` rows of a and b, over `chunks`
// chunks (each sample needs chunk * chunks rows): one distance between a few hundred points
// spreads by tens of percent, the mean of many chunks far less.
double chunked_sample_distance(const torch::Tensor& a, const torch::Tensor& b, int64_t chunk, int64_t chunks);

// Kernel and distance based two-sample statistics for samples of any dimension. Both are
// V-statistics (every pair, the diagonal included), so two identical samples give exactly 0
// and the value is never negative. The pairwise terms are summed in blocks of at most
// kPairBlock x kPairBlock, so 8000 x 8000 samples need a few megabytes, not gigabytes.
constexpr int64_t kPairBlock = 1024;

// The median heuristic: the median Euclidean distance between distinct points of the pooled
// sample [a; b]. Pools of more than `max_points` rows use evenly spaced rows of each sample
// (deterministic), which keeps the cost at max_points^2 / 2 distances. Refuses a pool whose
// points all coincide (the bandwidth would be 0).
double median_bandwidth(const torch::Tensor& a, const torch::Tensor& b, int64_t max_points = 2000);

// Maximum mean discrepancy with the RBF kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)):
//   MMD = sqrt(mean k(a, a') + mean k(b, b') - 2 mean k(a, b)),
// with h = bandwidth, or median_bandwidth(a, b) when bandwidth <= 0.
double mmd_rbf(const torch::Tensor& a, const torch::Tensor& b, double bandwidth = 0.0);

// Energy distance (Szekely and Rizzo) 2 E|X - Y| - E|X - X'| - E|Y - Y'| with Euclidean norms:
// zero exactly when the two distributions agree; in 1-D it is twice the integral of (F_a - F_b)^2.
double energy_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace sdegen
