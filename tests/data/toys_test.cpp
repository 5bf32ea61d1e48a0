// 2-D toys: sample shapes and ranges, log densities normalised on a grid and in agreement with
// the samplers, the quadrature against brute-force integrals, checkerboard squares, names.
#include <cmath>
#include <functional>

#include "sdegen/core/error.h"
#include "sdegen/data/density.h"
#include "sdegen/data/toys.h"
#include "support/support.h"

namespace sdegen {
namespace {

using Curve = std::function<torch::Tensor(const torch::Tensor&)>;

// Cell centres of a grid of side-h cells covering [-half, half]^2, [N*N, 2]. Cell edges fall on
// every integer when 1/h is an integer, so the checkerboard's squares are tiled exactly.
torch::Tensor cell_centres(double half, double h) {
  const auto n = static_cast<int64_t>(std::llround(2 * half / h));
  const torch::Tensor c = -half + h * (torch::arange(n, torch::kDouble) + 0.5);
  const auto g = torch::meshgrid({c, c}, "ij");
  return torch::stack({g[0].reshape(-1), g[1].reshape(-1)}, 1);
}

constexpr double kHalf = 6.0, kCell = 0.1;

// Row-major index of the unit bin of [-6, 6]^2 holding each point.
torch::Tensor unit_bin(const torch::Tensor& x) {
  const torch::Tensor b = torch::floor(x + kHalf).to(torch::kLong);
  return b.select(1, 0) * static_cast<int64_t>(2 * kHalf) + b.select(1, 1);
}

// Brute force: p(x) = mean over arms of int pdf(t) N(x; c(t), s^2 I) dt by composite Simpson
// with m (even) intervals, far finer than the noise scale.
torch::Tensor brute_log_prob(const torch::Tensor& x, const std::vector<Curve>& arms, double t0, double t1,
                             const Curve& pdf, double s, int64_t m) {
  const double h = (t1 - t0) / m;
  const torch::Tensor t = t0 + h * torch::arange(m + 1, torch::kDouble);
  torch::Tensor w = torch::where(torch::arange(m + 1) % 2 == 1, 4.0, 2.0).to(torch::kDouble);
  w[0] = 1.0;
  w[m] = 1.0;
  w = w * (h / 3) * pdf(t);
  std::vector<torch::Tensor> per_arm;
  for (const Curve& arm : arms) {
    const torch::Tensor d2 = (x.unsqueeze(1) - arm(t).unsqueeze(0)).square().sum(2);  // [n, m + 1]
    per_arm.push_back(torch::logsumexp(torch::log(w).unsqueeze(0) - d2 / (2 * s * s), 1));
  }
  return torch::logsumexp(torch::stack(per_arm, 1), 1) -
         std::log(2 * M_PI * s * s * static_cast<double>(arms.size()));
}

torch::Tensor xy(const torch::Tensor& a, const torch::Tensor& b) { return torch::stack({a, b}, 1); }

class EveryToy : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryToy, SamplesAreFiniteDoubleAndDeterministicUnderASeed) {
  const DensityPtr d = make_density(GetParam());
  EXPECT_EQ(d->name(), GetParam());
  EXPECT_EQ(d->dim(), 2);
  torch::manual_seed(11);
  const torch::Tensor x = d->sample(20000);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{20000, 2}));
  EXPECT_EQ(x.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  // Every toy lives in about [-4, 4]^2 and is spread out, not collapsed.
  EXPECT_LT(x.abs().max().item<double>(), 5.5);
  EXPECT_GT(x.std(0).min().item<double>(), 0.5);
  torch::manual_seed(11);
  EXPECT_TRUE(torch::equal(d->sample(20000), x));
  EXPECT_EQ(d->sample(0).sizes(), (std::vector<int64_t>{0, 2}));
}

// On a grid of h = 0.1 cells over [-6, 6]^2 the midpoint sum of a density smoothed by Gaussian
// noise of std s is off by about exp(-2 pi^2 s^2 / h^2) (3e-9 for the narrowest, s = 0.1), the
// checkerboard's squares are tiled exactly, and the mass outside [-6, 6]^2 is below 1e-12: so
// the sum checks the normalisation itself, to 1e-8.
class ToyWithDensity : public ::testing::TestWithParam<std::string> {};

TEST_P(ToyWithDensity, LogDensityIsNormalisedAndMatchesTheSampler) {
  const DensityPtr d = make_density(GetParam());
  ASSERT_TRUE(d->has_log_prob()) << GetParam();
  const torch::Tensor grid = cell_centres(kHalf, kCell);
  const torch::Tensor p = torch::exp(d->log_prob(grid)) * kCell * kCell;
  EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-8) << GetParam();
  // Probabilities of the 144 unit bins from the density against the sampler's frequencies.
  const int64_t bins = 144, n = 50000;
  const torch::Tensor p_bin = torch::zeros({bins}, torch::kDouble).index_add_(0, unit_bin(grid), p);
  torch::manual_seed(12);
  const torch::Tensor x = d->sample(n);
  const torch::Tensor freq = torch::bincount(unit_bin(x), {}, bins).to(torch::kDouble) / n;
  const torch::Tensor tol = 5 * torch::sqrt(p_bin * (1 - p_bin) / n) + 2e-4;
  EXPECT_TRUE(((freq - p_bin).abs() <= tol).all().item<bool>())
      << GetParam() << ": worst bin off by " << ((freq - p_bin).abs() - tol).max().item<double>();
  // The density is far higher where the samples are than far away from them.
  const torch::Tensor far = torch::tensor({{10.0, 10.0}, {-9.0, 0.0}, {0.0, 12.0}}, torch::kDouble);
  EXPECT_GT(d->log_prob(x.slice(0, 0, 1000)).mean().item<double>(),
            d->log_prob(far).max().item<double>() + 20);
}

// pinwheel has no log density (see its own test below).
INSTANTIATE_TEST_SUITE_P(Toys, ToyWithDensity,
                         ::testing::Values("moons", "circles", "checkerboard", "swissroll", "spirals"));

INSTANTIATE_TEST_SUITE_P(Toys, EveryToy,
                         ::testing::Values("moons", "circles", "checkerboard", "swissroll", "pinwheel",
                                           "spirals"));

// Each noisy-curve toy against a brute-force integral of its stated definition, at samples and
// on a coarse grid over [-6, 6]^2. Near the data the quadrature is exact to rounding; far out in
// the tails, where the integrand hugs a curve's end, it degrades, but only gently.
TEST(NoisyCurve, QuadratureMatchesBruteForceIntegral) {
  const Curve uniform_on_pi = [](const torch::Tensor& t) { return torch::full_like(t, 1.0 / M_PI); };
  const Curve uniform_on_3pi = [](const torch::Tensor& t) { return torch::full_like(t, 1.0 / (3 * M_PI)); };
  const Curve spiral_pdf = [](const torch::Tensor& t) { return 2 * t / (9 * M_PI * M_PI); };
  const Curve moon_up = [](const torch::Tensor& t) {
    return xy(2 * torch::cos(t) - 1, 2 * torch::sin(t) - 0.2);
  };
  const Curve moon_down = [](const torch::Tensor& t) {
    return xy(1 - 2 * torch::cos(t), 0.8 - 2 * torch::sin(t));
  };
  const Curve roll = [](const torch::Tensor& t) { return xy(t * torch::cos(t), t * torch::sin(t)) / 5; };
  const Curve spiral = [](const torch::Tensor& t) { return xy(-t * torch::cos(t), t * torch::sin(t)) / 3; };
  const Curve spiral_back = [&](const torch::Tensor& t) { return -spiral(t); };
  struct Case {
    std::string name;
    std::vector<Curve> arms;
    double t0, t1;
    Curve pdf;
    double s;
  };
  const std::vector<Case> cases = {
      {"moons", {moon_up, moon_down}, 0, M_PI, uniform_on_pi, 0.2},
      {"swissroll", {roll}, 1.5 * M_PI, 4.5 * M_PI, uniform_on_3pi, 0.2},
      {"spirals", {spiral, spiral_back}, 0, 3 * M_PI, spiral_pdf, 0.1},
  };
  for (const Case& c : cases) {
    const DensityPtr d = make_density(c.name);
    torch::manual_seed(13);
    const torch::Tensor x = torch::cat({d->sample(20), cell_centres(kHalf, 1.5)});
    const torch::Tensor exact = brute_log_prob(x, c.arms, c.t0, c.t1, c.pdf, c.s, 20000);
    const torch::Tensor err = (d->log_prob(x) - exact).abs();
    EXPECT_LT(err.masked_select(exact > -10).max().item<double>(), 1e-8) << c.name;
    EXPECT_LT(err.masked_select(exact > -50).max().item<double>(), 1e-5) << c.name;
    EXPECT_LT(err.max().item<double>(), 0.05) << c.name;
  }
}

// The Rice formula against a direct integral over the angle.
TEST(Circles, ClosedFormMatchesIntegralOverTheAngle) {
  const Curve uniform = [](const torch::Tensor& t) { return torch::full_like(t, 1.0 / (2 * M_PI)); };
  const Curve outer = [](const torch::Tensor& t) { return 3.0 * xy(torch::cos(t), torch::sin(t)); };
  const Curve inner = [](const torch::Tensor& t) { return 1.5 * xy(torch::cos(t), torch::sin(t)); };
  const torch::Tensor x =
      torch::tensor({{0.0, 0.0}, {3.1, 0.2}, {-1.0, 1.0}, {2.0, -2.0}, {0.1, 5.0}}, torch::kDouble);
  const torch::Tensor exact = brute_log_prob(x, {outer, inner}, 0, 2 * M_PI, uniform, 0.24, 20000);
  EXPECT_LT(test::max_abs_diff(Circles().log_prob(x), exact), 1e-10);
  // Far from both circles the closed form stays finite where exp() would underflow.
  EXPECT_TRUE(
      torch::isfinite(Circles().log_prob(torch::tensor({{40.0, 0.0}}, torch::kDouble))).all().item<bool>());
}

TEST(Checkerboard, SamplesLieOnTheBlackSquaresWhereTheDensityIsUniform) {
  const Checkerboard d;
  torch::manual_seed(14);
  const torch::Tensor x = d.sample(20000);
  EXPECT_LE(x.abs().max().item<double>(), 4.0);
  const torch::Tensor square = torch::floor(x / 2);
  EXPECT_TRUE((torch::remainder(square.sum(1), 2) == 0).all().item<bool>());
  // All 8 black squares are used, about equally.
  const torch::Tensor id = ((square.select(1, 0) + 2) * 4 + square.select(1, 1) + 2).to(torch::kLong);
  const torch::Tensor counts = torch::bincount(id, {}, 16);
  EXPECT_EQ((counts > 0).sum().item<int64_t>(), 8);
  EXPECT_NEAR(counts.max().item<double>() / 20000, 1.0 / 8, 0.01);
  EXPECT_TRUE((d.log_prob(x) == -std::log(32.0)).all().item<bool>());
  const torch::Tensor white_or_off = torch::tensor({{1.0, -1.0}, {-3.0, -1.0}, {5.0, 0.0}, {0.0, -4.5}});
  EXPECT_TRUE(torch::isinf(d.log_prob(white_or_off)).all().item<bool>());
}

TEST(Toys, PinwheelSaysItHasNoLogDensity) {
  const DensityPtr d = make_density("pinwheel");
  EXPECT_FALSE(d->has_log_prob());
  EXPECT_THROW_WITH(d->log_prob(torch::zeros({2, 2})), InvalidArgument,
                    "pinwheel has no closed-form log density");
  for (const char* name : {"moons", "circles", "checkerboard", "swissroll", "spirals", "gmm2d"})
    EXPECT_TRUE(make_density(name)->has_log_prob()) << name;
}

TEST(Toys, NamesAreListedAndBadInputIsRefused) {
  EXPECT_THROW_WITH(make_density("moonz"), InvalidArgument,
                    "valid: laplace5, gmm1d, gmm2d, 8gaussians, moons, circles, checkerboard, swissroll, "
                    "pinwheel, spirals");
  EXPECT_THROW_WITH(make_toy("gmm2d"), InvalidArgument, "unknown toy 'gmm2d'; valid: moons, circles");
  EXPECT_THROW_WITH(make_density("moons")->log_prob(torch::zeros({3, 1})), InvalidArgument,
                    "moons points must have shape [n, 2]");
  EXPECT_THROW_WITH(Circles().log_prob(torch::zeros({3})), InvalidArgument, "shape [n, 2]");
  EXPECT_THROW_WITH(Checkerboard().sample(-1), InvalidArgument, "must be >= 0");
}

}  // namespace
}  // namespace sdegen
