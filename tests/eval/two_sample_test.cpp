// MMD and energy distance against direct O(n^2) formulas and known values.
#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/eval/metrics.h"
#include "support/support.h"

namespace sdegen {
namespace {

// The textbook formulas, pair by pair in plain loops.
double direct_mean(const torch::Tensor& a, const torch::Tensor& b, const std::function<double(double)>& f) {
  const auto pa = a.accessor<double, 2>(), pb = b.accessor<double, 2>();
  double s = 0;
  for (int64_t i = 0; i < a.size(0); ++i)
    for (int64_t j = 0; j < b.size(0); ++j) {
      double d2 = 0;
      for (int64_t k = 0; k < a.size(1); ++k) d2 += (pa[i][k] - pb[j][k]) * (pa[i][k] - pb[j][k]);
      s += f(std::sqrt(d2));
    }
  return s / (a.size(0) * b.size(0));
}

double direct_mmd(const torch::Tensor& a, const torch::Tensor& b, double h) {
  const auto k = [h](double d) { return std::exp(-d * d / (2 * h * h)); };
  return std::sqrt(direct_mean(a, a, k) + direct_mean(b, b, k) - 2 * direct_mean(a, b, k));
}

double direct_energy(const torch::Tensor& a, const torch::Tensor& b) {
  const auto id = [](double d) { return d; };
  return 2 * direct_mean(a, b, id) - direct_mean(a, a, id) - direct_mean(b, b, id);
}

TEST(TwoSample, IdenticalSamplesGiveZero) {
  torch::manual_seed(1);
  const torch::Tensor a = torch::randn({300, 3}, torch::kDouble);
  EXPECT_EQ(energy_distance(a, a), 0.0);
  EXPECT_LT(mmd_rbf(a, a), 1e-7);
}

TEST(TwoSample, AgreeWithDirectFormulasAcrossBlocks) {
  // Sizes above kPairBlock exercise the block edges; different sizes the asymmetric sums.
  torch::manual_seed(2);
  const torch::Tensor a = torch::randn({kPairBlock + 37, 2}, torch::kDouble);
  const torch::Tensor b = torch::randn({150, 2}, torch::kDouble) * 1.3 + 0.2;
  EXPECT_NEAR(mmd_rbf(a, b, 0.8), direct_mmd(a, b, 0.8), 1e-10);
  EXPECT_NEAR(energy_distance(a, b), direct_energy(a, b), 1e-10);
}

TEST(TwoSample, Symmetric) {
  torch::manual_seed(3);
  const torch::Tensor a = torch::randn({400, 2}, torch::kDouble), b = torch::randn({250, 2}, torch::kDouble) + 0.5;
  EXPECT_NEAR(mmd_rbf(a, b), mmd_rbf(b, a), 1e-12);
  EXPECT_NEAR(energy_distance(a, b), energy_distance(b, a), 1e-12);
  EXPECT_NEAR(median_bandwidth(a, b), median_bandwidth(b, a), 1e-12);
}

TEST(TwoSample, GrowWithAMeanShift) {
  torch::manual_seed(4);
  const torch::Tensor a = torch::randn({1000, 2}, torch::kDouble), b = torch::randn({1000, 2}, torch::kDouble);
  double last_mmd = 0, last_energy = 0;
  for (double shift : {0.0, 0.5, 1.0, 2.0}) {
    const double m = mmd_rbf(a, b + shift, 1.0), e = energy_distance(a, b + shift);
    EXPECT_GT(m, last_mmd);
    EXPECT_GT(e, last_energy);
    last_mmd = m, last_energy = e;
  }
}

TEST(TwoSample, PopulationValuesForGaussians) {
  // 1-D N(0,1) vs N(mu,1): energy = 2 E|X - Y| - 2 E|X - X'| with X - Y ~ N(mu, 2):
  // E|N(mu, s^2)| = s sqrt(2/pi) exp(-mu^2 / 2s^2) + mu (1 - 2 Phi(-mu/s)).
  // MMD^2 with bandwidth h: 2 h/sqrt(h^2+2) (1 - exp(-mu^2 / (2 (h^2 + 2)))).
  torch::manual_seed(5);
  const double mu = 1.0, s = std::sqrt(2.0), h = 1.0;
  const double e_xy = s * std::sqrt(2 / M_PI) * std::exp(-mu * mu / (2 * s * s)) + mu * std::erf(mu / (s * std::sqrt(2.0)));
  const double e_xx = s * std::sqrt(2 / M_PI);
  const torch::Tensor a = torch::randn({6000, 1}, torch::kDouble), b = torch::randn({6000, 1}, torch::kDouble) + mu;
  EXPECT_NEAR(energy_distance(a, b), 2 * e_xy - 2 * e_xx, 0.02);
  const double mmd2 = 2 * h / std::sqrt(h * h + 2) * (1 - std::exp(-mu * mu / (2 * (h * h + 2))));
  EXPECT_NEAR(mmd_rbf(a, b, h), std::sqrt(mmd2), 0.02);
}

TEST(TwoSample, MedianBandwidthOfKnownPoints) {
  // Pool {0, 1, 3}: distances 1, 3, 2 -> median 2.
  EXPECT_NEAR(median_bandwidth(torch::tensor({0.0, 1.0}), torch::tensor({3.0})), 2.0, 1e-15);
}

TEST(TwoSample, LargeSamplesRunInBlocks) {
  torch::manual_seed(6);
  const torch::Tensor a = torch::randn({8000, 2}, torch::kDouble), b = torch::randn({8000, 2}, torch::kDouble);
  const double m = mmd_rbf(a, b), e = energy_distance(a, b);
  EXPECT_GT(m, 0);
  EXPECT_LT(m, 0.05);
  EXPECT_LT(e, 0.01);
}

TEST(TwoSample, RefuseBadInput) {
  EXPECT_THROW_WITH(mmd_rbf(torch::zeros({3, 2}), torch::zeros({3, 3})), InvalidArgument, "same d");
  EXPECT_THROW_WITH(energy_distance(torch::zeros({0, 2}), torch::zeros({3, 2})), InvalidArgument, "empty");
  EXPECT_THROW_WITH(mmd_rbf(torch::zeros({3, 1}), torch::zeros({3, 1})), InvalidArgument, "bandwidth is 0");
  EXPECT_THROW_WITH(energy_distance(torch::tensor({NAN}), torch::zeros({3})), InvalidArgument, "non-finite");
}

}  // namespace
}  // namespace sdegen
