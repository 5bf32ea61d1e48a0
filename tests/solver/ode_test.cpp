// Fixed-step ODE solvers: each stepper's measured convergence order against the order it
// claims, both grid directions, observation, evaluation counts, and the error paths.
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

// x' = -2 t x^2 has x(t) = 1 / (t^2 + 1 / x0): nonlinear and time-dependent, so a stepper that
// evaluates a stage at the wrong time or state loses its order.
torch::Tensor field(double t, const torch::Tensor& x) { return -2 * t * x * x; }
torch::Tensor exact(double t, const torch::Tensor& x0) { return 1 / (t * t + 1 / x0); }
torch::Tensor initial() {
  return torch::tensor({{0.5, 1.0}, {1.5, 2.0}, {0.8, 3.0}}, torch::kDouble);
}

using test::log_log_slope;
TimeGrid uniform(int n, double t0 = 0.0, double t1 = 1.0) { return test::uniform_grid(n, t0, t1); }

class EveryStepper : public ::testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<OdeStepper> stepper = make_ode_stepper(GetParam());
};

// Step counts 10..80: past the pre-asymptotic regime for euler, while rk4's error at 80 steps
// (~1e-9) stays far above round-off.
TEST_P(EveryStepper, MeasuredOrderMatchesClaimedOrder) {
  const torch::Tensor x0 = initial(), x1 = exact(1.0, x0);
  std::vector<double> h, err;
  for (int n : {10, 20, 40, 80}) {
    const Solution sol = solve_ode(field, x0, uniform(n), *stepper);
    ASSERT_TRUE(sol.ok()) << sol.message;
    h.push_back(1.0 / n);
    err.push_back(max_abs_diff(sol.x, x1));
  }
  const double slope = log_log_slope(h, err);
  std::cout << "[ order ] " << GetParam() << ": measured " << slope << ", claimed "
            << stepper->order() << " (errors " << err.front() << " .. " << err.back() << ")\n";
  EXPECT_NEAR(slope, stepper->order(), 0.2);
}

TEST_P(EveryStepper, CountsEvaluationsAndObservesEveryGridPoint) {
  int calls = 0;
  const VectorField counted = [&](double t, const torch::Tensor& x) { ++calls; return field(t, x); };
  std::vector<double> seen;
  const TimeGrid grid = uniform(7);
  const Solution sol = solve_ode(counted, initial(), grid, *stepper,
                                 [&](double t, const torch::Tensor&) { seen.push_back(t); });
  EXPECT_EQ(sol.nfe, calls);
  EXPECT_EQ(sol.nfe, 7 * stepper->stages());
  EXPECT_EQ(sol.steps, 7);
  EXPECT_EQ(sol.rejected, 0);
  EXPECT_EQ(sol.t, 1.0);
  EXPECT_EQ(seen, grid);
  EXPECT_TRUE(sol.message.empty());
}

// Likelihoods integrate from t = 1 back to t = 0: the error shrinks like h^order there too
// (the constants on this problem are below 12).
TEST_P(EveryStepper, DecreasingGridRunsBackwards) {
  const torch::Tensor x0 = initial();
  const int n = 100;
  const Solution sol = solve_ode(field, exact(1.0, x0), uniform(n, 1.0, 0.0), *stepper);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.t, 0.0);
  const double err = max_abs_diff(sol.x, x0);
  std::cout << "[ backward ] " << GetParam() << ": error " << err << " = "
            << err * std::pow(n, stepper->order()) << " h^" << stepper->order() << "\n";
  EXPECT_LT(err, 20 * std::pow(1.0 / n, stepper->order()));
}

// A field that breaks down past t = 0.5: the solve stops, keeps the last finite state and says
// where.
TEST_P(EveryStepper, NonFiniteFieldStopsWithTheTime) {
  const VectorField broken = [](double t, const torch::Tensor& x) {
    return t > 0.5 ? torch::full_like(x, std::numeric_limits<double>::quiet_NaN()) : -x;
  };
  const Solution sol = solve_ode(broken, initial(), uniform(10), *stepper);
  EXPECT_EQ(sol.status, SolveStatus::NonFinite);
  EXPECT_GE(sol.t, 0.4);
  EXPECT_LE(sol.t, 0.6 + 1e-12);
  EXPECT_TRUE(all_finite(sol.x));
  EXPECT_EQ(sol.x.sizes(), initial().sizes());
  EXPECT_NE(sol.message.find("non-finite state"), std::string::npos) << sol.message;
  std::ostringstream when;
  when << "t = " << sol.t;
  EXPECT_NE(sol.message.find(when.str()), std::string::npos) << sol.message;
  EXPECT_THROW_WITH(sol.check(), NumericError, "non-finite state");
}

void raw_field(double t, const double* x, int64_t n, double* dx) {
  for (int64_t e = 0; e < n * 2; ++e) dx[e] = -2 * t * x[e] * x[e];
}

// The raw-buffer driver takes the same steps through the stepper's tableau.
TEST_P(EveryStepper, RawBuffersTakeTheSameSteps) {
  // Small states: run backwards from t = 1, x' = -2 t x^2 blows up in finite time for x(1) > 1.
  const torch::Tensor x0 = 0.2 * initial();
  for (const TimeGrid& grid : {uniform(7), uniform(5, 1.0, 0.2)}) {
    std::vector<double> seen;
    const Solution raw = solve_ode_raw(raw_field, x0, grid, GetParam(), [&](double t, const torch::Tensor& x) {
      seen.push_back(x[0][0].item<double>());
    });
    const Solution ref = solve_ode(field, x0, grid, *stepper);
    ASSERT_TRUE(raw.ok()) << raw.message;
    EXPECT_LT(max_abs_diff(raw.x, ref.x), 1e-14);
    EXPECT_EQ(raw.nfe, ref.nfe);
    EXPECT_EQ(raw.steps, ref.steps);
    EXPECT_EQ(raw.t, grid.back());
    // The observer sees every state, and keeps what it saw: each is a copy.
    ASSERT_EQ(seen.size(), grid.size());
    EXPECT_EQ(seen.front(), x0[0][0].item<double>());
    EXPECT_NEAR(seen.back(), raw.x[0][0].item<double>(), 0.0);
  }
  EXPECT_TRUE(torch::equal(x0, 0.2 * initial()));  // the initial state is not written to
}

TEST_P(EveryStepper, RawNonFiniteStopsWithTheLastFiniteState) {
  const RawVectorField blow_up = [](double t, const double* x, int64_t n, double* dx) {
    for (int64_t e = 0; e < n * 2; ++e) dx[e] = t > 0.45 ? std::numeric_limits<double>::infinity() : 1.0;
  };
  const Solution sol = solve_ode_raw(blow_up, initial(), uniform(10), GetParam());
  EXPECT_EQ(sol.status, SolveStatus::NonFinite);
  EXPECT_TRUE(all_finite(sol.x));
  // The last finite state is at a grid time whose step did not yet sample t > 0.45.
  EXPECT_GE(sol.t, 0.4 - 1e-12);
  EXPECT_LE(sol.t, 0.5 + 1e-12);
  EXPECT_NE(sol.message.find("non-finite"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Solver, EveryStepper, ::testing::ValuesIn(fixed_ode_solver_names()),
                         [](const auto& info) { return info.param; });

TEST(OdeStepper, NamesAndOrders) {
  EXPECT_EQ(fixed_ode_solver_names(), (std::vector<std::string>{"euler", "midpoint", "heun", "rk4"}));
  for (const std::string& name : fixed_ode_solver_names()) EXPECT_EQ(make_ode_stepper(name)->name(), name);
  EXPECT_EQ(make_ode_stepper("rk4")->stages(), 4);
}

TEST(OdeStepper, UnknownNameListsValidOnes) {
  EXPECT_THROW_WITH(make_ode_stepper("rk5"), InvalidArgument,
                    "unknown ODE stepper 'rk5'; valid: euler, midpoint, heun, rk4");
}

// Image-shaped states: one Euler step of x' = -x is x (1 - h) in every element.
TEST(SolveOde, WorksOnImageShapedStates) {
  const torch::Tensor x0 = torch::randn({2, 3, 4, 5}, torch::kDouble);
  const VectorField decay = [](double, const torch::Tensor& x) { return -x; };
  const Solution sol = solve_ode(decay, x0, uniform(4), *make_ode_stepper("euler"));
  EXPECT_LT(max_abs_diff(sol.x, x0 * std::pow(0.75, 4)), 1e-14);
}

TEST(SolveOdeRaw, RefusesStatesItCannotRead) {
  EXPECT_THROW_WITH(solve_ode_raw(raw_field, initial().to(torch::kFloat), uniform(2), "heun"), InvalidArgument,
                    "float64");
  EXPECT_THROW_WITH(solve_ode_raw(raw_field, initial(), uniform(2), "rk5"), InvalidArgument, "rk4");
}

TEST(SolveOde, RefusesBadInput) {
  const auto euler = make_ode_stepper("euler");
  EXPECT_THROW_WITH(solve_ode(field, initial(), {0.0}, *euler), InvalidArgument,
                    "at least two points, got 1");
  EXPECT_THROW_WITH(solve_ode(field, initial(), {0.0, 0.5, 0.4, 1.0}, *euler), InvalidArgument,
                    "strictly increasing, but point 2 is 0.4 after 0.5");
  EXPECT_THROW_WITH(solve_ode(field, initial(), {1.0, 0.5, 0.5}, *euler), InvalidArgument,
                    "strictly decreasing");
  EXPECT_THROW_WITH(solve_ode(field, torch::Tensor(), uniform(3), *euler), InvalidArgument,
                    "initial state is undefined");
  const VectorField wrong_shape = [](double, const torch::Tensor& x) { return x.sum(1); };
  EXPECT_THROW_WITH(solve_ode(wrong_shape, initial(), uniform(3), *euler), InvalidArgument,
                    "vector field returned shape [3]");
}

}  // namespace
}  // namespace sdegen
