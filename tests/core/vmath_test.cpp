// The raw-buffer math of the fused kernels against the scalar library functions and torch::mm.
#include "sdegen/core/vmath.h"

#include <array>
#include <cmath>
#include <limits>
#include <functional>

#include "support/support.h"

namespace sdegen {
namespace {

struct Case {
  const char* name;
  void (*vector)(const double*, double*, int64_t);
  std::function<double(double)> scalar;
};

// Values across the range the activations see, the remainder lengths of the 4- and 2-lane loops
// included, and the extremes where naive formulas overflow.
std::vector<double> inputs(int64_t n) {
  std::vector<double> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[i] = -30.0 + 60.0 * static_cast<double>(i) / std::max<int64_t>(n - 1, 1) + 1e-3;
  if (n > 3) x[1] = 0.0, x[2] = 1e-12, x[3] = -700.0;
  return x;
}

TEST(Vmath, MatchesTheScalarFunctionsForEveryLength) {
  const std::vector<Case> cases = {
      {"tanh", vmath::tanh, [](double v) { return std::tanh(v); }},
      {"exp", vmath::exp, [](double v) { return std::exp(v); }},
      {"sin", vmath::sin, [](double v) { return std::sin(v); }},
      {"cos", vmath::cos, [](double v) { return std::cos(v); }},
      {"erf", vmath::erf, [](double v) { return std::erf(v); }},
      {"sigmoid", vmath::sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
  };
  for (const Case& c : cases) {
    for (int64_t n : {0, 1, 2, 3, 5, 7, 8, 9, 1001}) {
      const std::vector<double> x = inputs(n);
      std::vector<double> y(x.size(), -1.0), in_place = x;
      c.vector(x.data(), y.data(), n);
      c.vector(in_place.data(), in_place.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double expected = c.scalar(x[i]);
        EXPECT_NEAR(y[i], expected, 4e-16 * std::max(1.0, std::fabs(expected))) << c.name << " at " << x[i];
        EXPECT_EQ(y[i], in_place[i]) << c.name << ": in place differs at " << x[i];
      }
    }
  }
}

TEST(Vmath, Log1pIsAccurateNearZeroAndLarge) {
  const std::vector<double> x = {0.0, 1e-300, 1e-17, 1e-8, 0.5, 1.0, 3.0, 1e5, 1e300, -0.5, -1e-10};
  std::vector<double> y(x.size());
  vmath::log1p(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::log1p(x[i]);
    EXPECT_NEAR(y[i], e, 4e-16 * std::max(std::fabs(e), 1e-300)) << x[i];
  }
}

TEST(Vmath, SigmoidSaturatesWithoutNaN) {
  const std::vector<double> x = {-1e308, -800.0, 800.0, 1e308};
  std::vector<double> y(x.size());
  vmath::sigmoid(x.data(), y.data(), 4);
  EXPECT_EQ(y[0], 0.0);
  EXPECT_EQ(y[1], 0.0);
  EXPECT_EQ(y[2], 1.0);
  EXPECT_EQ(y[3], 1.0);
}

// Shapes: general, one row of C (a batch of 1), one column (a 1-D output), 1 x 1; the
// matrix-vector shapes take dgemv, with strided vectors where an operand is transposed.
TEST(Vmath, GemmMatchesTorchForEveryTranspositionAndShape) {
  torch::manual_seed(0);
  for (const auto& [m, n, k] : std::vector<std::array<int64_t, 3>>{{7, 5, 3}, {1, 5, 3}, {7, 1, 3}, {1, 1, 4}})
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const torch::Tensor A = ta ? torch::randn({k, m}, torch::kDouble) : torch::randn({m, k}, torch::kDouble);
      const torch::Tensor B = tb ? torch::randn({n, k}, torch::kDouble) : torch::randn({k, n}, torch::kDouble);
      torch::Tensor C = torch::randn({m, n}, torch::kDouble);
      const torch::Tensor expected = 0.5 * C + 2.0 * torch::mm(ta ? A.t() : A, tb ? B.t() : B);
      vmath::gemm(ta, tb, m, n, k, 2.0, A.data_ptr<double>(), A.size(1), B.data_ptr<double>(), B.size(1), 0.5,
                  C.data_ptr<double>(), n);
      EXPECT_LT(test::max_abs_diff(C, expected), 1e-13) << m << "x" << n << "x" << k << " transpose a " << ta
                                                        << ", b " << tb;
      // beta = 0 does not read C, NaN included.
      C.fill_(std::numeric_limits<double>::quiet_NaN());
      vmath::gemm(ta, tb, m, n, k, 2.0, A.data_ptr<double>(), A.size(1), B.data_ptr<double>(), B.size(1), 0.0,
                  C.data_ptr<double>(), n);
      EXPECT_LT(test::max_abs_diff(C, 2.0 * torch::mm(ta ? A.t() : A, tb ? B.t() : B)), 1e-13);
    }
  }
}

TEST(Vmath, GemmWithNoInnerDimensionScalesC) {
  std::vector<double> c = {1.0, 2.0, 3.0, 4.0};
  vmath::gemm(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 3.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{3.0, 6.0, 9.0, 12.0}));
  vmath::gemm(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.0, c.data(), 2);
  EXPECT_EQ(c, (std::vector<double>{0.0, 0.0, 0.0, 0.0}));
}

}  // namespace
}  // namespace sdegen
