// Dormand-Prince on raw buffers: the same steps, states and failures as the tensor solver on the
// same field, and, when asked, rows that defeat the step-size control set aside while the others
// finish.
#include <cmath>
#include <limits>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

// The tensor field on raw buffers, so that both solvers see the very same function.
RawVectorField on_raw(const VectorField& f, int64_t d) {
  return [f, d](double t, const double* x, int64_t n, double* dx) {
    const torch::Tensor in = torch::from_blob(const_cast<double*>(x), {n, d}, torch::kDouble);
    const torch::Tensor out = f(t, in).contiguous();
    std::copy(out.data_ptr<double>(), out.data_ptr<double>() + n * d, dx);
  };
}

torch::Tensor oscillator(double, const torch::Tensor& x) { return torch::stack({x.select(1, 1), -x.select(1, 0)}, 1); }
// x' = -2 t x + sin(3 t): time-dependent, so a wrong stage time shows.
torch::Tensor forced(double t, const torch::Tensor& x) { return -2.0 * t * x + std::sin(3.0 * t); }
torch::Tensor square(double, const torch::Tensor& x) { return x * x; }

torch::Tensor initial() { return torch::tensor({{1.0, 0.0}, {0.0, 2.0}, {-0.5, 0.7}}, torch::kDouble); }

AdaptiveOptions tolerance(double tol) {
  AdaptiveOptions o;
  o.rtol = o.atol = tol;
  return o;
}

struct Case {
  const char* name;
  VectorField f;
  torch::Tensor x0;
  double t0, t1;
  AdaptiveOptions options;
};

// The same accepted and rejected steps, evaluations, observed times and states, to rounding.
// The error estimate is a small difference of stages of order 1, so a rounding difference in the
// stages (the tensor library orders its arithmetic differently) moves it by ~1e-10 relative, and
// the step sizes follow: the observed times agree to ~1e-11, the states to ~1e-13.
TEST(Dopri5Raw, TakesTheTensorSolversSteps) {
  AdaptiveOptions given = tolerance(1e-6);
  given.first_step = 0.05;
  const std::vector<Case> cases = {
      {"oscillator", oscillator, initial(), 0.0, 10.0, tolerance(1e-6)},
      {"oscillator backwards", oscillator, initial(), 10.0, 0.0, tolerance(1e-9)},
      {"forced", forced, torch::linspace(-2, 2, 7, torch::kDouble).unsqueeze(1), 0.0, 3.0, tolerance(1e-5)},
      {"forced, first step given", forced, torch::linspace(-2, 2, 7, torch::kDouble).unsqueeze(1), 0.0, 3.0, given},
      {"loose", oscillator, initial(), 0.0, 10.0, tolerance(1e-2)}};
  for (const Case& c : cases) {
    std::vector<double> t_ref, t_raw;
    const Solution ref =
        solve_ode_adaptive(c.f, c.x0, c.t0, c.t1, c.options, [&](double t, const torch::Tensor&) { t_ref.push_back(t); });
    const Solution raw = solve_ode_adaptive_raw(on_raw(c.f, c.x0.size(1)), c.x0, c.t0, c.t1, c.options,
                                                [&](double t, const torch::Tensor&) { t_raw.push_back(t); });
    ASSERT_TRUE(ref.ok() && raw.ok()) << c.name << ": " << raw.message;
    EXPECT_EQ(raw.steps, ref.steps) << c.name;
    EXPECT_EQ(raw.rejected, ref.rejected) << c.name;
    EXPECT_EQ(raw.nfe, ref.nfe) << c.name;
    EXPECT_EQ(raw.t, c.t1) << c.name;
    ASSERT_EQ(t_raw.size(), t_ref.size()) << c.name;
    for (size_t i = 0; i < t_raw.size(); ++i) EXPECT_NEAR(t_raw[i], t_ref[i], 1e-9) << c.name << " step " << i;
    EXPECT_LT(max_abs_diff(raw.x, ref.x), 1e-12) << c.name;
    EXPECT_GT(ref.rejected + ref.steps, 5) << c.name;
  }
}

// Against the known solution: the oscillator rotates its rows.
TEST(Dopri5Raw, SolvesTheOscillator) {
  const torch::Tensor x0 = initial();
  const Solution sol = solve_ode_adaptive_raw(on_raw(oscillator, 2), x0, 0.0, 10.0, tolerance(1e-8));
  ASSERT_TRUE(sol.ok()) << sol.message;
  const torch::Tensor q = x0.select(1, 0), p = x0.select(1, 1);
  const torch::Tensor exact =
      torch::stack({q * std::cos(10.0) + p * std::sin(10.0), -q * std::sin(10.0) + p * std::cos(10.0)}, 1);
  EXPECT_LT(max_abs_diff(sol.x, exact), 1e-6);
}

// Without rows set aside, a solve fails where and as the tensor solver's does.
TEST(Dopri5Raw, FailsAsTheTensorSolver) {
  AdaptiveOptions o;
  o.min_step = 1e-6;
  const torch::Tensor ones = torch::ones({2, 1}, torch::kDouble);
  const VectorField broken = [](double t, const torch::Tensor& x) {
    return t > 0.5 ? torch::full_like(x, std::numeric_limits<double>::quiet_NaN()) : oscillator(t, x);
  };
  AdaptiveOptions few;
  few.max_steps = 7;
  const std::vector<Case> cases = {{"blow-up", square, ones, 0.0, 2.0, o},
                                   {"non-finite", broken, initial(), 0.0, 1.0, AdaptiveOptions()},
                                   {"max steps", oscillator, initial(), 0.0, 10.0, few}};
  for (const Case& c : cases) {
    const Solution ref = solve_ode_adaptive(c.f, c.x0, c.t0, c.t1, c.options);
    const Solution raw = solve_ode_adaptive_raw(on_raw(c.f, c.x0.size(1)), c.x0, c.t0, c.t1, c.options);
    EXPECT_NE(ref.status, SolveStatus::Success) << c.name;
    EXPECT_EQ(raw.status, ref.status) << c.name;
    EXPECT_DOUBLE_EQ(raw.t, ref.t) << c.name;
    EXPECT_EQ(raw.message, ref.message) << c.name;
    EXPECT_LT(max_abs_diff(raw.x, ref.x), 1e-12) << c.name;
  }
}

// x' = x^2 blows up at t = 1 / x(0) (x(t) = x0 / (1 - x0 t)): of the rows 0.5, -1 and 2 on [0, 0.9]
// only the last does (at t = 0.5). It is set aside at its singularity and the others finish.
TEST(Dopri5Raw, SetsAsideARowThatBlowsUp) {
  const torch::Tensor x0 = torch::tensor({{0.5}, {-1.0}, {2.0}}, torch::kDouble);
  AdaptiveOptions o = tolerance(1e-8);
  std::vector<int64_t> isolated;
  const Solution sol = solve_ode_adaptive_raw(on_raw(square, 1), x0, 0.0, 0.9, o, {}, &isolated);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.t, 0.9);
  ASSERT_EQ(isolated, std::vector<int64_t>{2});
  EXPECT_NE(sol.message.find("1 of 3 rows set aside"), std::string::npos) << sol.message;
  const torch::Tensor exact = x0 / (1.0 - 0.9 * x0);
  EXPECT_LT(max_abs_diff(sol.x.narrow(0, 0, 2), exact.narrow(0, 0, 2)), 1e-6);
  const double frozen = sol.x[2][0].item<double>();  // its last state, close to the singularity
  EXPECT_TRUE(std::isfinite(frozen));
  EXPECT_GT(frozen, 1e3);
  // Without the list the same solve fails for every row, as the tensor solver's does.
  EXPECT_EQ(solve_ode_adaptive_raw(on_raw(square, 1), x0, 0.0, 0.9, o).status, SolveStatus::StepSizeUnderflow);
  EXPECT_EQ(solve_ode_adaptive(square, x0, 0.0, 0.9, o).status, SolveStatus::StepSizeUnderflow);
}

// A field that is NaN below x = 0, with x' = -1: the row starting at 0.3 crosses 0 at t = 0.3
// (NonFinite), the row at 2 is non-finite nowhere, and the row at -1 is non-finite at the start.
TEST(Dopri5Raw, SetsAsideRowsWithANonFiniteField) {
  const VectorField f = [](double, const torch::Tensor& x) {
    return torch::where(x < 0, torch::full_like(x, std::numeric_limits<double>::quiet_NaN()), -torch::ones_like(x));
  };
  const torch::Tensor x0 = torch::tensor({{2.0}, {0.3}, {-1.0}}, torch::kDouble);
  std::vector<int64_t> isolated;
  const Solution sol = solve_ode_adaptive_raw(on_raw(f, 1), x0, 0.0, 0.5, tolerance(1e-6), {}, &isolated);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(isolated, (std::vector<int64_t>{2, 1}));  // in the order they were set aside
  EXPECT_NEAR(sol.x[0][0].item<double>(), 1.5, 1e-12);
  EXPECT_GE(sol.x[1][0].item<double>(), 0.0);  // frozen before it crossed
  EXPECT_LT(sol.x[1][0].item<double>(), 0.3);
  EXPECT_EQ(sol.x[2][0].item<double>(), -1.0);
  EXPECT_EQ(solve_ode_adaptive_raw(on_raw(f, 1), x0, 0.0, 0.5).status, SolveStatus::NonFinite);
}

// When every row is to blame there is nothing left to solve: the solve fails as without the list.
TEST(Dopri5Raw, FailsWhenEveryRowIsToBlame) {
  AdaptiveOptions o;
  o.min_step = 1e-6;
  std::vector<int64_t> isolated;
  const Solution sol =
      solve_ode_adaptive_raw(on_raw(square, 1), torch::ones({3, 1}, torch::kDouble), 0.0, 2.0, o, {}, &isolated);
  EXPECT_EQ(sol.status, SolveStatus::StepSizeUnderflow);
  EXPECT_TRUE(isolated.empty());
  EXPECT_THROW_WITH(sol.check(), NumericError, "step size underflow");
}

TEST(Dopri5Raw, RefusesBadInput) {
  const RawVectorField f = on_raw(oscillator, 2);
  EXPECT_THROW_WITH(solve_ode_adaptive_raw(f, initial().to(torch::kFloat), 0, 1), InvalidArgument, "float64 CPU state");
  EXPECT_THROW_WITH(solve_ode_adaptive_raw(f, initial().unsqueeze(0), 0, 1), InvalidArgument, "shape [n, d]");
  EXPECT_THROW_WITH(solve_ode_adaptive_raw({}, initial(), 0, 1), InvalidArgument, "needs a vector field");
  EXPECT_THROW_WITH(solve_ode_adaptive_raw(f, initial(), 0, 1, tolerance(0.0)), InvalidArgument, "rtol must be positive");
}

}  // namespace
}  // namespace sdegen
