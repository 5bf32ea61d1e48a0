// What sdegen writes, checked against the data it should describe: sampled points are back in the
// data's units (the standardisation undone: per-column means and spreads, not only the row count),
// and the fokker-planck command's density column against the exact marginals, computed here.
#include <cmath>

#include <torch/torch.h>

#include "apps/cli_support.h"

namespace sdegen::test {
namespace {

class CliOutputs : public CliTest {};

struct ColumnStats {
  std::vector<double> mean, std;
};

ColumnStats stats(const std::vector<std::vector<double>>& rows) {
  const size_t d = rows.at(0).size();
  ColumnStats s{std::vector<double>(d, 0.0), std::vector<double>(d, 0.0)};
  for (const auto& r : rows)
    for (size_t j = 0; j < d; ++j) s.mean[j] += r[j] / static_cast<double>(rows.size());
  for (const auto& r : rows)
    for (size_t j = 0; j < d; ++j) s.std[j] += std::pow(r[j] - s.mean[j], 2) / static_cast<double>(rows.size() - 1);
  for (double& v : s.std) v = std::sqrt(v);
  return s;
}

// Data far from standard scale, differently per column: N(10, 3^2) and N(-5, 0.5^2). A model
// trained on the standardised rows samples about N(0, I); sample must map that back.
TEST_F(CliOutputs, SamplesFromACheckpointAreInTheDatasUnits) {
  torch::manual_seed(8);
  const torch::Tensor x = torch::randn({600, 2}, torch::kDouble) * torch::tensor({3.0, 0.5}, torch::kDouble) +
                          torch::tensor({10.0, -5.0}, torch::kDouble);
  {
    std::ofstream out(path("d.csv"));
    out << "a,b\n";
    for (int64_t i = 0; i < x.size(0); ++i) out << x[i][0].item<double>() << "," << x[i][1].item<double>() << "\n";
  }
  const Outcome t = run_sdegen("train --data " + path("d.csv") + " --model flow --steps 150 --width 16 --depth 2 "
                               "--lr 0.01 --decay none --log-every 50 --out " + path("run"));
  ASSERT_EQ(t.code, 0) << t.output;
  const Outcome s = run_sdegen("sample --checkpoint " + path("run") + " --solver heun --steps 20 --n 3000 --out " +
                               path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  const ColumnStats got = stats(read_csv_rows(path("s.csv")));
  const std::vector<double> mean = {10.0, -5.0}, spread = {3.0, 0.5};
  for (size_t j = 0; j < 2; ++j) {
    std::cout << "  column " << j << ": mean " << got.mean[j] << ", std " << got.std[j] << "\n";
    // Loose enough for a briefly trained model, tight enough to refuse standardised units
    // (mean 0, std 1) or a half-undone map (the mean or the scale left out).
    EXPECT_NEAR(got.mean[j], mean[j], 0.25 * spread[j]) << "column " << j;
    EXPECT_NEAR(got.std[j] / spread[j], 1.0, 0.25) << "column " << j;
  }
}

// The exact model of a mixture samples that mixture: mean sum w mu, variance sum w (s^2 + mu^2) - mean^2.
TEST_F(CliOutputs, OracleSamplesHaveTheMixturesMoments) {
  std::ofstream(path("mix.json")) << R"({"weights": [0.3, 0.7], "means": [[-2.0], [4.0]], "stds": [[0.5], [1.0]]})";
  const Outcome s = run_sdegen("sample --oracle --data " + path("mix.json") + " --solver rk4 --steps 40 --n 20000 "
                               "--seed 2 --out " + path("s.csv"));
  ASSERT_EQ(s.code, 0) << s.output;
  const auto rows = read_csv_rows(path("s.csv"));
  ASSERT_EQ(rows.size(), 20000u);
  const double mean = 0.3 * -2.0 + 0.7 * 4.0, second = 0.3 * (0.25 + 4.0) + 0.7 * (1.0 + 16.0);
  const double var = second - mean * mean;
  const ColumnStats got = stats(rows);
  // Monte Carlo: sd of the mean sqrt(var / n) = 0.02; of the variance about var sqrt(1.2 / n)... 0.06.
  EXPECT_NEAR(got.mean[0], mean, 0.08);
  EXPECT_NEAR(got.std[0] * got.std[0], var, 0.3);
}

// fokker-planck writes (t, x, density, exact) per cell. The exact column is the marginal of the
// mixture under the linear schedule (a = t, b = 1 - t): components N(a mu_k, a^2 s_k^2 + b^2).
TEST_F(CliOutputs, FokkerPlanckDensityColumnIsTheExactMarginal) {
  std::ofstream(path("mix.json")) << R"({"weights": [0.3, 0.7], "means": [[-1.5], [1.0]], "stds": [[0.4], [0.6]]})";
  const Outcome r = run_sdegen("fokker-planck --data " + path("mix.json") + " --schedule linear --sigma 1 "
                               "--times 0.5,0.9 --cells 300 --out " + path("fp.csv"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto rows = read_csv_rows(path("fp.csv"));
  ASSERT_EQ(rows.size(), 600u);
  const std::vector<double> w = {0.3, 0.7}, mu = {-1.5, 1.0}, s = {0.4, 0.6};
  for (const double t : {0.5, 0.9}) {
    double l1 = 0.0, mass = 0.0, peak = 0.0, worst_exact = 0.0;
    const double dx = rows[1][1] - rows[0][1];
    int cells = 0;
    for (const auto& row : rows) {
      if (row[0] != t) continue;
      ++cells;
      double p = 0.0;
      for (size_t k = 0; k < 2; ++k) {
        const double v = t * t * s[k] * s[k] + (1 - t) * (1 - t);
        p += w[k] * std::exp(-0.5 * std::pow(row[1] - t * mu[k], 2) / v) / std::sqrt(2 * M_PI * v);
      }
      l1 += std::abs(row[2] - p) * dx;
      mass += row[2] * dx;
      peak = std::max(peak, p);
      worst_exact = std::max(worst_exact, std::abs(row[3] - p));
    }
    EXPECT_EQ(cells, 300) << "t = " << t;
    std::cout << "  t=" << t << ": L1 of the density column to the exact marginal " << l1 << "\n";
    EXPECT_LT(l1, 5e-3) << "t = " << t;
    EXPECT_NEAR(mass, 1.0, 1e-8) << "t = " << t;
    // The exact column is the same density renormalised on the grid (6 std past the marginals).
    EXPECT_LT(worst_exact, 1e-6 * peak) << "t = " << t;
  }
}

}  // namespace
}  // namespace sdegen::test
