#pragma once
// Gaussian mixtures with diagonal covariances, in any dimension: the data densities with exact
// log densities, and the family that stays closed under affine noising (see eval/oracle.h).
#include <torch/torch.h>

#include <string>

namespace sdegen {

struct GaussianMixture {
  torch::Tensor weights;  // [K], positive, summing to 1
  torch::Tensor means;    // [K, d]
  torch::Tensor stds;     // [K, d], positive

  int64_t components() const { return weights.size(0); }
  int64_t dim() const { return means.size(1); }

  // Throws InvalidArgument naming the problem (shapes, non-positive std, weights not summing
  // to 1 within 1e-6, non-finite values).
  void validate() const;
  // n draws, [n, d], from torch's default generator.
  torch::Tensor sample(int64_t n) const;
  // log density of each row of x [n, d]: [n].
  torch::Tensor log_prob(const torch::Tensor& x) const;
  // log w_k + log N(x; mu_k, diag(s_k^2)) for each row and component: [n, K].
  torch::Tensor component_log_prob(const torch::Tensor& x) const;
};

// Builds and validates a mixture from plain vectors (double precision).
GaussianMixture make_mixture(const std::vector<double>& weights,
                             const std::vector<std::vector<double>>& means,
                             const std::vector<std::vector<double>>& stds);

// Reads {"weights": [...], "means": [[...], ...], "stds": [[...], ...]}; errors name the file
// and the field.
GaussianMixture load_mixture_json(const std::string& path);
// The same reading of a file's contents (`path` names it in messages).
GaussianMixture parse_mixture_json(const std::string& text, const std::string& path);

}  // namespace sdegen
