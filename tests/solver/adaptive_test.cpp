// Adaptive Dormand-Prince 5(4): the global error follows the tolerance, work grows as the
// tolerance tightens, both directions, evaluation counting, and every failure status with its
// message.
#include <cmath>
#include <iostream>
#include <limits>
#include <sstream>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"
#include "support/support.h"

namespace sdegen {
namespace {

using test::max_abs_diff;

// The harmonic oscillator q' = p, p' = -q over several periods, rows (q, p) rotating with
// known phase: long enough for local errors to accumulate.
torch::Tensor oscillator(double, const torch::Tensor& x) {
  return torch::stack({x.select(1, 1), -x.select(1, 0)}, 1);
}
torch::Tensor rotated(double t, const torch::Tensor& x0) {
  const torch::Tensor q = x0.select(1, 0), p = x0.select(1, 1);
  return torch::stack({q * std::cos(t) + p * std::sin(t), -q * std::sin(t) + p * std::cos(t)}, 1);
}
torch::Tensor initial() {
  return torch::tensor({{1.0, 0.0}, {0.0, 2.0}, {-0.5, 0.7}}, torch::kDouble);
}
constexpr double kEnd = 10.0;

AdaptiveOptions tolerance(double tol) {
  AdaptiveOptions o;
  o.rtol = o.atol = tol;
  return o;
}

// The global error over ~1.6 periods, in the units the solver controls (atol + rtol |x|),
// stays below 10 for every tolerance (it is 2.4-5.2 here, largest at the loosest tolerance where
// the few steps are coarsest), and the evaluations needed grow as the tolerance tightens.
TEST(Dopri5, GlobalErrorFollowsTolerance) {
  const torch::Tensor x0 = initial(), x1 = rotated(kEnd, x0);
  int64_t previous_nfe = 0;
  for (double tol : {1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8}) {
    const Solution sol = solve_ode_adaptive(oscillator, x0, 0.0, kEnd, tolerance(tol));
    ASSERT_TRUE(sol.ok()) << sol.message;
    EXPECT_EQ(sol.t, kEnd);
    const double err = ((sol.x - x1).abs() / (tol + tol * x1.abs())).max().item<double>();
    std::cout << "[ dopri5 ] tol " << tol << ": error " << err << " x (atol + rtol |x|), "
              << "max abs error " << max_abs_diff(sol.x, x1) << ", nfe " << sol.nfe
              << ", steps " << sol.steps << ", rejected " << sol.rejected << "\n";
    EXPECT_LT(err, 10.0);
    EXPECT_GT(sol.nfe, previous_nfe);
    previous_nfe = sol.nfe;
  }
}

// Likelihoods integrate from t1 < t0: running back from the end recovers the start, landing
// exactly on t1.
TEST(Dopri5, IntegratesBackwards) {
  const torch::Tensor x0 = initial();
  const Solution sol = solve_ode_adaptive(oscillator, rotated(kEnd, x0), kEnd, 0.0, tolerance(1e-7));
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.t, 0.0);
  EXPECT_LT(max_abs_diff(sol.x, x0), 1e-6);
}

// A non-autonomous, nonlinear field: x' = -2 t x^2, x(t) = 1 / (t^2 + 1 / x0).
TEST(Dopri5, SolvesTimeDependentField) {
  const torch::Tensor x0 = torch::tensor({{0.5}, {2.0}}, torch::kDouble);
  const VectorField f = [](double t, const torch::Tensor& x) { return -2 * t * x * x; };
  const Solution sol = solve_ode_adaptive(f, x0, 0.0, 3.0, tolerance(1e-8));
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_LT(max_abs_diff(sol.x, 1 / (9.0 + 1 / x0)), 1e-7);
}

// FSAL: one evaluation at t0, one for the automatic first step, six per attempted step.
TEST(Dopri5, CountsEvaluationsAndObservesAcceptedSteps) {
  int calls = 0;
  const VectorField counted = [&](double t, const torch::Tensor& x) { ++calls; return oscillator(t, x); };
  std::vector<double> seen;
  const Solution sol = solve_ode_adaptive(counted, initial(), 0.0, kEnd, tolerance(1e-6),
                                          [&](double t, const torch::Tensor&) { seen.push_back(t); });
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.nfe, calls);
  EXPECT_EQ(sol.nfe, 2 + 6 * (sol.steps + sol.rejected));
  ASSERT_EQ(static_cast<int64_t>(seen.size()), sol.steps + 1);
  EXPECT_EQ(seen.front(), 0.0);
  EXPECT_EQ(seen.back(), kEnd);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);

  AdaptiveOptions given = tolerance(1e-6);
  given.first_step = 0.01;
  const Solution fixed_start = solve_ode_adaptive(oscillator, initial(), 0.0, kEnd, given);
  EXPECT_EQ(fixed_start.nfe, 1 + 6 * (fixed_start.steps + fixed_start.rejected));
}

TEST(Dopri5, EmptyIntervalReturnsTheStart) {
  const Solution sol = solve_ode_adaptive(oscillator, initial(), 0.3, 0.3);
  EXPECT_TRUE(sol.ok());
  EXPECT_EQ(sol.nfe, 0);
  EXPECT_EQ(max_abs_diff(sol.x, initial()), 0.0);
}

TEST(Dopri5, MaxStepsReachedKeepsLastStateAndSaysWhatToDo) {
  AdaptiveOptions o = tolerance(1e-8);
  o.max_steps = 3;
  const Solution sol = solve_ode_adaptive(oscillator, initial(), 0.0, kEnd, o);
  EXPECT_EQ(sol.status, SolveStatus::MaxStepsReached);
  EXPECT_EQ(sol.steps + sol.rejected, 3);
  EXPECT_GT(sol.t, 0.0);
  EXPECT_LT(sol.t, kEnd);
  EXPECT_EQ(sol.x.sizes(), initial().sizes());
  EXPECT_LT(max_abs_diff(sol.x, rotated(sol.t, initial())), 1e-7);  // a good state at sol.t
  EXPECT_NE(sol.message.find("maximum number of steps (3) reached at t = "), std::string::npos)
      << sol.message;
  EXPECT_NE(sol.message.find("raise max_steps or loosen rtol/atol"), std::string::npos);
  EXPECT_THROW_WITH(sol.check(), NumericError, "maximum number of steps (3)");
}

// x' = x^2 from 1 blows up at t = 1: steps shrink towards the singularity until min_step.
TEST(Dopri5, StepSizeUnderflowAtSingularity) {
  const VectorField blowup = [](double, const torch::Tensor& x) { return x * x; };
  AdaptiveOptions o;
  o.min_step = 1e-6;
  const Solution sol = solve_ode_adaptive(blowup, torch::ones({2, 1}, torch::kDouble), 0.0, 2.0, o);
  EXPECT_EQ(sol.status, SolveStatus::StepSizeUnderflow);
  EXPECT_GT(sol.t, 0.99);
  EXPECT_LT(sol.t, 1.0);
  EXPECT_TRUE(all_finite(sol.x));
  EXPECT_NE(sol.message.find("step size underflow at t = "), std::string::npos) << sol.message;
  EXPECT_THROW_WITH(sol.check(), NumericError, "step size underflow");
}

// A field that returns NaN past t = 0.5: shrinking the step cannot help, so the solve reports a
// non-finite state at (just before) 0.5 and keeps the last finite state.
TEST(Dopri5, NonFiniteFieldStopsWithTheTime) {
  const VectorField broken = [](double t, const torch::Tensor& x) {
    return t > 0.5 ? torch::full_like(x, std::numeric_limits<double>::quiet_NaN()) : oscillator(t, x);
  };
  const Solution sol = solve_ode_adaptive(broken, initial(), 0.0, 1.0);
  EXPECT_EQ(sol.status, SolveStatus::NonFinite);
  EXPECT_GT(sol.t, 0.49);
  EXPECT_LE(sol.t, 0.5);
  EXPECT_TRUE(all_finite(sol.x));
  std::ostringstream when;
  when << "non-finite state at t = " << sol.t;
  EXPECT_NE(sol.message.find(when.str()), std::string::npos) << sol.message;
  EXPECT_NE(sol.message.find("t = 0.5"), std::string::npos) << sol.message;
  EXPECT_THROW_WITH(sol.check(), NumericError, "non-finite state");
}

TEST(Dopri5, RefusesBadInput) {
  AdaptiveOptions o;
  o.rtol = 0;
  EXPECT_THROW_WITH(solve_ode_adaptive(oscillator, initial(), 0, 1, o), InvalidArgument,
                    "rtol must be positive, got 0");
  o = AdaptiveOptions();
  o.atol = -1e-6;
  EXPECT_THROW_WITH(solve_ode_adaptive(oscillator, initial(), 0, 1, o), InvalidArgument,
                    "atol must be positive, got -1e-06");
  EXPECT_THROW_WITH(solve_ode_adaptive(oscillator, torch::Tensor(), 0, 1), InvalidArgument,
                    "initial state is undefined");
  EXPECT_THROW_WITH(solve_ode_adaptive(oscillator, initial(), 0, std::nan("")), InvalidArgument,
                    "finite end points");
}

}  // namespace
}  // namespace sdegen
