// The straightness of a probability flow (Liu et al.): zero for a flow whose paths are straight
// lines at constant speed, which the linear schedule's flow to a point mass is, and clearly not
// for a two-mode mixture or for a schedule that runs its paths at varying speed.
#include "sdegen/core/error.h"
#include "sdegen/eval/evaluate.h"
#include "sdegen/eval/oracle.h"
#include "sdegen/model/factory.h"
#include "support/support.h"

namespace sdegen {
namespace {

GaussianMixture mixture(const std::vector<double>& means, double std) {
  GaussianMixture m;
  const int64_t k = static_cast<int64_t>(means.size());
  m.weights = torch::full({k}, 1.0 / k, torch::kDouble);
  m.means = torch::tensor(means, torch::kDouble).reshape({k, 1});
  m.stds = torch::full({k, 1}, std, torch::kDouble);
  return m;
}

double straightness(const GaussianMixture& data, const std::string& schedule, double t1 = 1.0 - 1e-3) {
  const GmmOracle oracle(data, make_schedule(schedule));
  torch::manual_seed(1);
  const torch::Tensor x0 = torch::randn({4000, 1}, torch::kDouble);
  return flow_straightness(probability_flow(oracle), x0, 0.0, t1, 200);
}

TEST(Straightness, IsZeroForStraightPathsAndNotOtherwise) {
  // Linear schedule to a point mass at 2: x_t = t y + (1 - t) x_0, a straight line at constant
  // speed. (A mass of width s bends the paths within about s of t = 1, where they spread to it:
  // the solve stops at 1 - 1e-3, so s = 1e-6.)
  EXPECT_LT(straightness(mixture({2.0}, 1e-6), "linear"), 1e-6);
  // Two modes: the paths bend where the posterior over the modes sharpens.
  const double two_modes = straightness(mixture({-2.0, 2.0}, 0.1), "linear");
  EXPECT_GT(two_modes, 0.1);
  // The same point mass under vp: straight lines in space, but not at constant speed in t.
  EXPECT_GT(straightness(mixture({2.0}, 1e-6), "vp"), 0.1);
}

TEST(Straightness, OfAModelRefusesOneWithoutAProbabilityFlow) {
  ModelPtr sde = make_model(model_config("sde", 1, {{"net", {{"width", 8}}}}));
  EXPECT_THROW_WITH(flow_straightness(*sde, torch::randn({4, 1}, torch::kDouble)), InvalidArgument,
                    "the 'sde' model has no probability flow");
  ModelPtr flow = make_model(model_config("flow", 1, {{"net", {{"width", 8}}}}));
  EXPECT_GE(flow_straightness(*flow, torch::randn({16, 1}, torch::kDouble), 10), 0.0);
}

}  // namespace
}  // namespace sdegen
