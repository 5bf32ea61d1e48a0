// The lower-order fixed-step solvers stepped in flow time r = a / (a + b) (flow_time_test.cpp
// measures heun, rk4, abm3 and abm4): euler and midpoint converge at their orders to a tight
// dopri5 solution from the same prior draws, on vp, where schedule time is hardest.
#include <iostream>

#include "sdegen/data/density.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/sample/sampler.h"
#include "support/support.h"

namespace sdegen {
namespace {

double flow_time_order(const std::string& solver, const std::vector<int>& step_counts) {
  const GmmOracle o(*make_density("gmm1d")->mixture(), make_schedule("vp"));
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
  std::cout << "[ order ] " << solver << " in flow time: errors " << errors.front() << " .. " << errors.back() << "\n";
  return test::log_log_slope(h, errors);
}

TEST(FlowTimeOrders, EulerIsFirstOrder) { EXPECT_NEAR(flow_time_order("euler", {40, 80, 160, 320}), 1.0, 0.15); }

TEST(FlowTimeOrders, MidpointIsSecondOrder) { EXPECT_NEAR(flow_time_order("midpoint", {20, 40, 80, 160}), 2.0, 0.2); }

}  // namespace
}  // namespace sdegen
