#include "sdegen/eval/baselines.h"

#include <armadillo>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {
namespace {

void check_rows(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test) {
  for (const torch::Tensor* x : {&train, &val, &test})
    SDEGEN_CHECK(x->defined() && x->dim() == 2 && x->size(0) >= 1 && x->size(1) == train.size(1) &&
                     all_finite(*x),
                 "baselines need finite rows [n, d] of one d for training, validation and test, got ",
                 x->defined() ? x->sizes() : torch::IntArrayRef{});
}

double mean_of(const torch::Tensor& v) { return v.mean().item<double>(); }

// Rows [n, d] (row-major) are Armadillo's columns of a d x n (column-major) matrix.
arma::mat to_columns(const torch::Tensor& x) {
  const torch::Tensor c = x.to(torch::kDouble).contiguous();
  return arma::mat(c.data_ptr<double>(), static_cast<arma::uword>(c.size(1)), static_cast<arma::uword>(c.size(0)));
}

torch::Tensor from_row(const arma::rowvec& r) {
  return torch::from_blob(const_cast<double*>(r.memptr()), {static_cast<int64_t>(r.n_elem)}, torch::kDouble).clone();
}

}  // namespace

BaselineFit fit_gaussian(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test) {
  check_rows(train, val, test);
  const torch::Tensor x = train.to(torch::kDouble);
  const int64_t d = x.size(1);
  const torch::Tensor mean = x.mean(0);
  const torch::Tensor centred = x - mean;
  torch::Tensor cov = centred.t().mm(centred) / static_cast<double>(x.size(0));
  std::string choice = "maximum likelihood";
  // Not a structured binding: C++17 lambdas cannot capture one (clang refuses it).
  torch::Tensor chol, info;
  std::tie(chol, info) = torch::linalg_cholesky_ex(cov);
  if (info.item<int64_t>() != 0) {
    cov = cov + 1e-9 * torch::eye(d, torch::kDouble);
    std::tie(chol, info) = torch::linalg_cholesky_ex(cov);
    SDEGEN_CHECK(info.item<int64_t>() == 0, "gaussian baseline: the training covariance is not positive definite");
    choice = "maximum likelihood + 1e-9 ridge";
  }
  const double log_det = 2.0 * chol.diagonal().log().sum().item<double>();
  auto log_prob = [&](const torch::Tensor& y) {
    const torch::Tensor r = (y.to(torch::kDouble) - mean).t();  // [d, m]
    const torch::Tensor z = torch::linalg_solve_triangular(chol, r, /*upper=*/false);
    return -0.5 * (z.square().sum(0) + log_det + static_cast<double>(d) * std::log(2.0 * M_PI));
  };
  return {"gaussian", choice, mean_of(log_prob(val)), log_prob(test)};
}

BaselineFit fit_mixture(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test,
                        const std::vector<int64_t>& components, uint64_t seed) {
  check_rows(train, val, test);
  SDEGEN_CHECK(!components.empty(), "mixture baseline: no component counts to try");
  const arma::mat x = to_columns(train), v = to_columns(val), t = to_columns(test);
  const int64_t n = train.size(0), d = train.size(1);
  BaselineFit best{"mixture", "", -std::numeric_limits<double>::infinity(), {}};
  for (int64_t k : components) {
    // Each component's covariance needs d + 1 rows to be estimated at all.
    if (k > 1 && n / k < d + 1) continue;
    for (double floor : {1e-3, 1e-2, 1e-1}) {
      arma::gmm_full model;
      arma::arma_rng::set_seed(seed);
      if (!model.learn(x, static_cast<arma::uword>(k), arma::maha_dist, arma::random_subset, 10, 100, floor, false))
        continue;
      const double val_ll = arma::mean(model.log_p(v));
      if (std::isfinite(val_ll) && val_ll > best.val_log_lik) {
        best.val_log_lik = val_ll;
        best.choice = fmt::format("K = {}, variance floor {}", k, floor);
        best.test_log_prob = from_row(model.log_p(t));
      }
    }
  }
  SDEGEN_CHECK(best.test_log_prob.defined(), "mixture baseline: no mixture could be fitted to ", n, " rows of ", d,
               " columns");
  return best;
}

namespace {

// The kernel estimate's log density at x [m, d] for each width: [widths, m]. Blocks of x keep the
// squared distances near 32 MB whatever the number of rows (50,000 training rows against 12,500
// validation rows in one block were 5 GB per temporary, and the run was killed for memory).
torch::Tensor kde_log_probs(const torch::Tensor& rows, const torch::Tensor& x, const std::vector<double>& widths) {
  const int64_t n = rows.size(0), d = rows.size(1), m = x.size(0);
  const int64_t block = std::max<int64_t>(1, (int64_t{1} << 22) / n);
  const torch::Tensor r = rows.to(torch::kDouble), y = x.to(torch::kDouble);
  torch::Tensor out = torch::empty({static_cast<int64_t>(widths.size()), m}, torch::kDouble);
  for (int64_t i = 0; i < m; i += block) {
    const int64_t len = std::min(block, m - i);
    const torch::Tensor sq = torch::cdist(y.narrow(0, i, len), r).square();  // [len, n]
    for (size_t w = 0; w < widths.size(); ++w) {
      const double h = widths[w];
      out[static_cast<int64_t>(w)].narrow(0, i, len).copy_(
          torch::logsumexp(sq * (-0.5 / (h * h)), 1) - std::log(static_cast<double>(n)) -
          0.5 * static_cast<double>(d) * std::log(2.0 * M_PI * h * h));
    }
  }
  return out;
}

}  // namespace

torch::Tensor kde_log_prob(const torch::Tensor& rows, const torch::Tensor& x, double h) {
  SDEGEN_CHECK(h > 0 && std::isfinite(h), "kde: the bandwidth must be positive, got ", h);
  return kde_log_probs(rows, x, {h})[0];
}

BaselineFit fit_kde(const torch::Tensor& train, const torch::Tensor& val, const torch::Tensor& test) {
  check_rows(train, val, test);
  // Written here: Debian has no C++ kernel density library, and this is a log-sum-exp over
  // pairwise distances (computed once per block of rows, then rescaled for every width).
  std::vector<double> widths;
  for (int i = 0; i < 40; ++i) widths.push_back(0.01 * std::pow(300.0, i / 39.0));
  const torch::Tensor lp = kde_log_probs(train, val, widths);
  BaselineFit best{"kde", "", -std::numeric_limits<double>::infinity(), {}};
  double best_h = 0;
  for (size_t w = 0; w < widths.size(); ++w) {
    const double ll = mean_of(lp[static_cast<int64_t>(w)]);
    if (std::isfinite(ll) && ll > best.val_log_lik) best.val_log_lik = ll, best_h = widths[w];
  }
  SDEGEN_CHECK(best_h > 0, "kde baseline: no bandwidth gave a finite validation log-likelihood");
  best.choice = fmt::format("h = {:.3g}", best_h);
  best.test_log_prob = kde_log_prob(train, test, best_h);
  return best;
}

}  // namespace sdegen
