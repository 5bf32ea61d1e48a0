// Flow time r = a / (a + b): its values, the schedule-independence of the transformed field,
// the measured order of solvers stepped in it, what the observer sees, vp's data end (where
// dr/dt is infinite) and the refusal where r does not move.
#include <cmath>
#include <iostream>
#include <vector>

#include "sdegen/core/check.h"
#include "sdegen/data/density.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/sample/flow_time.h"
#include "sdegen/sample/sampler.h"
#include "support/support.h"

namespace sdegen {
namespace {

GmmOracle oracle(const std::string& schedule) {
  return GmmOracle(*make_density("gmm1d")->mixture(), make_schedule(schedule));
}

TEST(FlowTime, IsTheLinearSchedulesTime) {
  const auto linear = make_schedule("linear"), trig = make_schedule("trig");
  for (double t : {0.0, 0.3, 0.8, 1.0}) EXPECT_NEAR(flow_time(*linear, t), t, 1e-15);
  const double t = 0.3, a = std::sin(M_PI * t / 2), b = std::cos(M_PI * t / 2);
  EXPECT_NEAR(flow_time(*trig, t), a / (a + b), 1e-15);
  EXPECT_EQ(flow_time(*trig, 0.0), 0.0);
}

// The field a solver sees in flow time at (r, xb) is E[y - eps | xb]: the same under every
// schedule. Captured through a solve that evaluates it once at an interior point.
TEST(FlowTime, FieldIsTheSameUnderEverySchedule) {
  const torch::Tensor xb = torch::linspace(-3, 3, 13, torch::kDouble).unsqueeze(1);
  const double r = 0.37;
  std::vector<torch::Tensor> fields;
  for (const std::string name : {"linear", "vp", "trig"}) {
    const GmmOracle o = oracle(name);
    const AffineSchedule& s = o.schedule();
    const TimeGrid grid = {0.1, s.inverse_lambda(2 * std::log(r / (1 - r))), 0.9};
    const GridSolve probe = [&](const VectorField& f, const torch::Tensor& x0, const TimeGrid& g,
                                const Observer&) {
      EXPECT_NEAR(g[1], r, 1e-12);
      fields.push_back(f(g[1], xb));
      Solution sol;
      sol.x = x0;
      sol.t = g.front();
      return sol;
    };
    solve_in_flow_time(o, torch::zeros({13, 1}, torch::kDouble), grid, probe);
  }
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_LT(test::max_abs_diff(fields[0], fields[1]), 1e-9);
  EXPECT_LT(test::max_abs_diff(fields[0], fields[2]), 1e-9);
}

// Every fixed-step solver stepped in flow time converges at its order to a tight dopri5 solution
// (in schedule time) from the same x0, on vp where schedule time is hardest.
double measured_order(const std::string& solver, const std::vector<int>& step_counts = {20, 40, 80, 160}) {
  const GmmOracle o = oracle("vp");
  const torch::Tensor x0 = torch::linspace(-2.5, 2.5, 64, torch::kDouble).unsqueeze(1);
  SamplerOptions ref;
  ref.solver = "dopri5";
  ref.adaptive.rtol = ref.adaptive.atol = 1e-12;
  ref.t1 = 0.99;
  const torch::Tensor exact = sample(o, x0, ref).check().x;
  std::vector<double> h, errors;
  for (int steps : step_counts) {
    SamplerOptions s;
    s.solver = solver;
    s.steps = steps;
    s.t1 = ref.t1;
    s.grid = "flow";
    s.time = "flow";
    h.push_back(1.0 / steps);
    errors.push_back(test::max_abs_diff(sample(o, x0, s).check().x, exact));
  }
  std::cout << "[ order ] " << solver << " in flow time: errors " << errors.front() << " .. " << errors.back()
            << "\n";
  return test::log_log_slope(h, errors);
}

TEST(FlowTimeOrders, EulerIsFirstOrder) { EXPECT_NEAR(measured_order("euler", {40, 80, 160, 320}), 1.0, 0.15); }

TEST(FlowTimeOrders, MidpointIsSecondOrder) { EXPECT_NEAR(measured_order("midpoint"), 2.0, 0.2); }

TEST(FlowTime, SolversKeepTheirOrders) {
  EXPECT_NEAR(measured_order("heun"), 2.0, 0.2);
  EXPECT_NEAR(measured_order("rk4"), 4.0, 0.3);
  // The Adams methods' Euler/trapezoid warm-up caps their global order at 3 on fine grids
  // (solver/multistep.h); their higher bulk order shows only on the coarse grids samplers use.
  EXPECT_NEAR(measured_order("abm3"), 3.0, 0.3);
  EXPECT_NEAR(measured_order("abm4"), 3.0, 0.3);
}

// The observer sees schedule times and states x, not r and x / (a + b); the solution's t is t1.
TEST(FlowTime, ObserverSeesScheduleTimeAndState) {
  const GmmOracle o = oracle("trig");
  SamplerOptions s;
  s.solver = "abm4";
  s.steps = 6;
  std::vector<double> times;
  torch::Tensor last;
  const Solution sol = sample(o, torch::randn({5, 1}, torch::kDouble), s, [&](double t, const torch::Tensor& x) {
    times.push_back(t);
    last = x;
  });
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(times, sampler_grid(o.schedule(), s));
  EXPECT_EQ(sol.t, 1.0);
  EXPECT_LT(test::max_abs_diff(last, sol.x), 1e-15);
  EXPECT_EQ(sol.nfe, 6);
}

// vp at t = 1: b = 0 and dr/dt is infinite, but the field y_hat - eps_hat is finite, so abm4 in
// flow time reaches the data end and agrees there with a tight dopri5 solve in schedule time.
TEST(FlowTime, ReachesVpsDataEnd) {
  const GmmOracle o = oracle("vp");
  const torch::Tensor x0 = torch::linspace(-2.5, 2.5, 64, torch::kDouble).unsqueeze(1);
  SamplerOptions s;
  s.solver = "abm4";
  s.steps = 16;
  const Solution sol = sample(o, x0, s);
  ASSERT_TRUE(sol.ok()) << sol.message;
  EXPECT_EQ(sol.t, 1.0);
  SamplerOptions ref;
  ref.solver = "dopri5";
  ref.adaptive.rtol = ref.adaptive.atol = 1e-10;
  const double err = test::max_abs_diff(sol.x, sample(o, x0, ref).check().x);
  std::cout << "[ vp end ] abm4 in flow time, 16 steps, to t = 1: max error " << err << "\n";
  EXPECT_LT(err, 1e-2);
}

// The same holds for a network's field, through PredictionField: a noise prediction (whose
// velocity at vp's t = 1 is b' eps_hat with b' = -inf, which schedule-time solvers cannot
// evaluate) and a velocity prediction. Here the network is the oracle's own prediction, so the
// solves must agree with the oracle's.
TEST(FlowTime, NetworkPredictionsReachVpsDataEndToo) {
  const GmmOracle o = oracle("vp");
  const torch::Tensor x0 = torch::linspace(-2.5, 2.5, 16, torch::kDouble).unsqueeze(1);
  SamplerOptions s;
  s.solver = "abm4";
  s.steps = 12;
  const torch::Tensor expected = sample(o, x0, s).check().x;
  for (Prediction kind : {Prediction::Noise, Prediction::Velocity}) {
    const PredictionField net([&o, kind](const torch::Tensor& x, const torch::Tensor& t) {
      return o.predict(x, t.flatten()[0].item<double>(), kind);
    }, kind, make_schedule("vp"));
    const Solution sol = sample(net, x0, s);
    ASSERT_TRUE(sol.ok()) << prediction_name(kind) << ": " << sol.message;
    EXPECT_LT(test::max_abs_diff(sol.x, expected), 1e-9) << prediction_name(kind);
  }
  const PredictionField noise([&o](const torch::Tensor& x, const torch::Tensor& t) {
    return o.predict(x, t.flatten()[0].item<double>(), Prediction::Noise);
  }, Prediction::Noise, make_schedule("vp"));
  EXPECT_FALSE(torch::isfinite(noise.predict(torch::ones({2, 1}, torch::kDouble), 1.0, Prediction::Velocity))
                   .all()
                   .item<bool>());
}

// A schedule whose flow time a / (a + b) stands still cannot be stepped in it.
TEST(FlowTime, RefusesAFlowTimeThatStandsStill) {
  struct Flat final : AffineSchedule {
    std::string name() const override { return "flat"; }
    torch::Tensor a(const torch::Tensor& t) const override { return torch::ones_like(t); }
    torch::Tensor b(const torch::Tensor& t) const override { return torch::ones_like(t); }
    torch::Tensor da(const torch::Tensor& t) const override { return torch::zeros_like(t); }
    torch::Tensor db(const torch::Tensor& t) const override { return torch::zeros_like(t); }
    torch::Tensor inverse_lambda(const torch::Tensor& l) const override { return torch::zeros_like(l); }
  };
  const GmmOracle o(*make_density("gmm1d")->mixture(), std::make_shared<Flat>());
  const GridSolve never = [](const VectorField&, const torch::Tensor&, const TimeGrid&, const Observer&) -> Solution {
    ADD_FAILURE() << "solved a flow time that does not move";
    return {};
  };
  EXPECT_THROW_WITH(solve_in_flow_time(o, torch::zeros({3, 1}, torch::kDouble), {0.0, 0.5, 1.0}, never),
                    InvalidArgument, "does not move with t");
}

}  // namespace
}  // namespace sdegen
