// The classical baselines: each against a density it can represent exactly, and the kernel
// estimate against its formula written out.
#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/data/mixture.h"
#include "sdegen/eval/baselines.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(Baselines, GaussianMatchesTheTrueDensityOfGaussianData) {
  torch::manual_seed(0);
  const torch::Tensor a = torch::tensor({{1.0, 0.0, 0.0}, {0.8, 0.6, 0.0}, {-0.3, 0.2, 0.5}}, torch::kDouble);
  auto draw = [&](int64_t n) { return torch::randn({n, 3}, torch::kDouble).mm(a.t()) + 2.0; };
  const torch::Tensor train = draw(20000), val = draw(500), test = draw(4000);
  const BaselineFit g = fit_gaussian(train, val, test);
  // The true log density: N(2, A A^T).
  const torch::Tensor z = torch::linalg_solve_triangular(torch::linalg_cholesky(a.mm(a.t())), (test - 2.0).t(), false);
  const double log_det = std::log(std::pow(torch::det(a).item<double>(), 2));
  const torch::Tensor truth = -0.5 * (z.square().sum(0) + log_det + 3 * std::log(2 * M_PI));
  // 20000 rows pin the mean log density to ~0.01 (d(d+3)/2 = 9 parameters: 9 / (2 n) nats of bias);
  // single points in the tails move more.
  EXPECT_NEAR(g.test_log_prob.mean().item<double>(), truth.mean().item<double>(), 0.01);
  EXPECT_LT((g.test_log_prob - truth).abs().max().item<double>(), 0.5);
  EXPECT_EQ(g.choice, "maximum likelihood");
}

TEST(Baselines, KdeIsItsFormula) {
  torch::manual_seed(1);
  const torch::Tensor rows = torch::randn({7, 2}, torch::kDouble), x = torch::randn({3, 2}, torch::kDouble);
  const double h = 0.7;
  const torch::Tensor lp = kde_log_prob(rows, x, h);
  for (int64_t i = 0; i < 3; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < 7; ++j)
      sum += std::exp(-(x[i] - rows[j]).square().sum().item<double>() / (2 * h * h)) / (2 * M_PI * h * h);
    EXPECT_NEAR(lp[i].item<double>(), std::log(sum / 7), 1e-12);
  }
}

// Many training rows are evaluated a block of points at a time (memory): with 2^21 + 1 rows each
// point is its own block, and every point's figure is still the formula's.
TEST(Baselines, KdeInBlocksIsItsFormula) {
  torch::manual_seed(3);
  const int64_t n = (int64_t{1} << 21) + 1;
  const torch::Tensor rows = torch::randn({n, 1}, torch::kDouble), x = torch::randn({4, 1}, torch::kDouble);
  const double h = 0.3;
  const torch::Tensor lp = kde_log_prob(rows, x, h);
  const torch::Tensor sq = (x - rows.t()).square();  // [4, n]
  const torch::Tensor want = torch::logsumexp(-sq / (2 * h * h), 1) - std::log(static_cast<double>(n)) -
                             0.5 * std::log(2 * M_PI * h * h);
  EXPECT_LT((lp - want).abs().max().item<double>(), 1e-10) << lp << want;
}

TEST(Baselines, KdeChoosesAWidthThatFitsAndTheTestFigureIsNearTheTruth) {
  torch::manual_seed(2);
  const torch::Tensor train = torch::randn({2000, 1}, torch::kDouble), val = torch::randn({1000, 1}, torch::kDouble),
                      test = torch::randn({4000, 1}, torch::kDouble);
  const BaselineFit k = fit_kde(train, val, test);
  const double truth = (-0.5 * test.square() - 0.5 * std::log(2 * M_PI)).mean().item<double>();
  EXPECT_NEAR(k.test_log_prob.mean().item<double>(), truth, 0.03);
  // Silverman's rule gives 1.06 n^(-1/5) = 0.23 here; validation lands in that region.
  const double h = std::stod(k.choice.substr(4));
  EXPECT_GT(h, 0.1);
  EXPECT_LT(h, 0.5);
}

TEST(Baselines, MixtureFindsTheComponentsOfMixtureData) {
  torch::manual_seed(3);
  const GaussianMixture m = make_mixture({0.3, 0.5, 0.2}, {{-4.0, 0.0}, {0.0, 3.0}, {4.0, -1.0}},
                                         {{0.5, 0.8}, {0.7, 0.4}, {0.6, 0.6}});
  const torch::Tensor train = m.sample(3000), val = m.sample(1000), test = m.sample(3000);
  const BaselineFit fit = fit_mixture(train, val, test);
  const double truth = m.log_prob(test).mean().item<double>();
  EXPECT_NEAR(fit.test_log_prob.mean().item<double>(), truth, 0.05) << fit.choice;
  // One component (a Gaussian) is far worse: validation had something to choose.
  const BaselineFit one = fit_mixture(train, val, test, {1});
  EXPECT_LT(one.test_log_prob.mean().item<double>(), truth - 0.5);
  EXPECT_NEAR(one.test_log_prob.mean().item<double>(), fit_gaussian(train, val, test).test_log_prob.mean().item<double>(),
              0.01);
}

TEST(Baselines, BadRowsAreRefused) {
  const torch::Tensor ok = torch::randn({10, 2}, torch::kDouble);
  EXPECT_THROW_WITH(fit_gaussian(ok, torch::randn({5, 3}, torch::kDouble), ok), InvalidArgument, "of one d");
  torch::Tensor bad = ok.clone();
  bad[0][0] = std::nan("");
  EXPECT_THROW_WITH(fit_kde(ok, ok, bad), InvalidArgument, "finite rows");
  EXPECT_THROW_WITH(kde_log_prob(ok, ok, 0.0), InvalidArgument, "bandwidth must be positive");
}

}  // namespace
}  // namespace sdegen
