// Data densities: sampling against the exact log density, JSON mixtures and their errors.
#include <cstdio>
#include <fstream>

#include "sdegen/core/error.h"
#include "sdegen/data/density.h"
#include "support/support.h"

namespace sdegen {
namespace {

// The log density integrates to 1 on a grid (1-D) and matches a sample histogram.
TEST(Laplace5, LogDensityIsNormalisedAndMatchesSamples) {
  const Laplace5 d;
  const torch::Tensor x = torch::linspace(-30, 30, 60001).unsqueeze(1);
  const double dx = 60.0 / 60000;
  EXPECT_NEAR(torch::exp(d.log_prob(x)).sum().item<double>() * dx, 1.0, 1e-6);
  torch::manual_seed(1);
  const torch::Tensor s = d.sample(200000);
  // P(|x - 0| < 1) under the mixture: component 0 gives 1 - e^-1; neighbours at +-4 give
  // (e^-3 - e^-5)/2 each.
  const double p_exact = 0.2 * ((1 - std::exp(-1.0)) + (std::exp(-3.0) - std::exp(-5.0)));
  const double p_hat = (s.abs() < 1.0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(p_hat, p_exact, 4 * std::sqrt(p_exact * (1 - p_exact) / 200000));
  EXPECT_NEAR(s.mean().item<double>(), 0.0, 0.05);
  // Variance: within-component 2 (Laplace scale 1) plus the means' spread 32.
  EXPECT_NEAR(s.var().item<double>(), 34.0, 0.5);
}

TEST(Mixture, SampleMomentsMatchParameters) {
  auto d = make_density("gmm2d");
  const GaussianMixture& m = *d->mixture();
  torch::manual_seed(2);
  const torch::Tensor s = d->sample(200000);
  const torch::Tensor mean = (m.weights.unsqueeze(1) * m.means).sum(0);
  EXPECT_LT(test::max_abs_diff(s.mean(0), mean), 0.02);
}

TEST(Mixture, UnknownNameListsValidOnes) {
  EXPECT_THROW_WITH(make_density("moons3"), InvalidArgument, "valid: laplace5, gmm1d");
}

class MixtureJson : public ::testing::Test {
 protected:
  std::string path = test::temp_path("mixture_test.json");
  void write(const std::string& text) { std::ofstream(path) << text; }
  void TearDown() override { std::remove(path.c_str()); }
};

TEST_F(MixtureJson, ReadsAValidFile) {
  write(R"({"weights": [0.4, 0.6], "means": [[0, 1], [2, 3]], "stds": [[1, 1], [0.5, 2]]})");
  auto d = make_density(path);
  EXPECT_EQ(d->dim(), 2);
  EXPECT_EQ(d->mixture()->components(), 2);
  EXPECT_TRUE(torch::isfinite(d->log_prob(torch::zeros({3, 2}))).all().item<bool>());
}

TEST_F(MixtureJson, RefusesBadFiles) {
  write(R"({"weights": [0.4, 0.6], "means": [[0], [2]], "stds": [[1], [-0.5]]})");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "stds must be positive");
  write(R"({"weights": [0.4, 0.5], "means": [[0], [2]], "stds": [[1], [1]]})");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "sum to 1");
  write(R"({"weights": [0.4, 0.6], "means": [[0], [2]]})");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "no \"stds\" field");
  write(R"({"weights": [0.4, 0.6], "means": [[0], [2, 1]], "stds": [[1], [1]]})");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "means[1] has 2 entries, expected 1");
  write(R"({"weights": [0.4, 0.6], "means": [[0], ["a"]], "stds": [[1], [1]]})");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "expected numbers");
  write(R"({"weights": [0.4, 0.6 )");
  EXPECT_THROW_WITH(make_density(path), InvalidArgument, "not valid JSON");
  EXPECT_THROW_WITH(make_density("/nonexistent/m.json"), IoError, "cannot open");
}

}  // namespace
}  // namespace sdegen
