#pragma once
// The classical density estimators a user would try before an SDE model, so that a comparison
// shows whether the model earns its cost: a full-covariance Gaussian, a Gaussian mixture and a
// kernel density estimate. Each is fitted on the training rows, its one free choice (components,
// bandwidth) is made on the validation rows by their mean log-likelihood, and it is scored on the
// test rows. All rows are [n, d] in the same units (the caller standardises them and maps the log
// densities back, as for the models).
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

struct BaselineFit {
  std::string name;         // "gaussian", "mixture", "kde"
  std::string choice;       // what validation chose, for the report ("K = 4", "h = 0.31")
  double val_log_lik = 0;   // mean validation log-likelihood of the chosen fit
  torch::Tensor test_log_prob;  // [m] log density of each test row
};

// Maximum likelihood mean and covariance (a 1e-9 ridge only if the covariance is singular).
BaselineFit fit_gaussian(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test);

// Full-covariance mixtures fitted by k-means and EM (Armadillo's gmm_full), for each number of
// components in `components` (those with fewer than d + 1 training rows per component skipped)
// and each variance floor in {1e-3, 1e-2, 1e-1}; the best on validation is kept.
BaselineFit fit_mixture(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test,
                        const std::vector<int64_t>& components = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32},
                        uint64_t seed = 0);

// A Gaussian kernel of width h on every training row, h chosen on validation from 40 values
// spaced evenly in log between 0.01 and 3 (in the rows' units: standardised data).
BaselineFit fit_kde(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test);

// The log density at x [m, d] of the kernel estimate with width h on rows [n, d].
torch::Tensor kde_log_prob(const torch::Tensor& rows, const torch::Tensor& x, double h);

}  // namespace sdegen
