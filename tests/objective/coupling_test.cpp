// Minibatch couplings: the exact assignment against every permutation, the class constraint,
// Sinkhorn's marginals and its limit, and the models' training pairs.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "sdegen/core/error.h"
#include "sdegen/model/affine_model.h"
#include "sdegen/model/factory.h"
#include "sdegen/objective/coupling.h"
#include "support/support.h"

namespace sdegen {
namespace {
using test::max_abs_diff;

double assignment_cost(const torch::Tensor& cost, const std::vector<int64_t>& perm) {
  double total = 0.0;
  for (size_t i = 0; i < perm.size(); ++i) total += cost[static_cast<int64_t>(i)][perm[i]].item<double>();
  return total;
}

TEST(Coupling, TheAssignmentIsTheCheapestOfEveryPermutation) {
  for (int seed = 0; seed < 5; ++seed) {
    torch::manual_seed(seed);
    const int64_t n = 7;
    const torch::Tensor cost = torch::rand({n, n}, torch::kDouble) * 10.0;
    const std::vector<int64_t> perm = optimal_assignment(cost);
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> identity(n);
    std::iota(identity.begin(), identity.end(), 0);
    ASSERT_EQ(sorted, identity) << "not a permutation";
    double best = INFINITY;
    std::vector<int64_t> p = identity;
    do best = std::min(best, assignment_cost(cost, p));
    while (std::next_permutation(p.begin(), p.end()));
    EXPECT_NEAR(assignment_cost(cost, perm), best, 1e-9) << "seed " << seed;
  }
  EXPECT_TRUE(optimal_assignment(torch::zeros({0, 0}, torch::kDouble)).empty());
  EXPECT_THROW_WITH(optimal_assignment(torch::zeros({2, 3}, torch::kDouble)), InvalidArgument, "square");
  EXPECT_THROW_WITH(optimal_assignment(torch::full({2, 2}, NAN, torch::kDouble)), InvalidArgument,
                    "the costs must be finite");
}

// In one dimension the optimal coupling for squared distances is monotone: the k-th smallest data
// point takes the k-th smallest draw.
TEST(Coupling, OtInOneDimensionPairsInOrder) {
  torch::manual_seed(3);
  const torch::Tensor y = torch::randn({64, 1}, torch::kDouble) * 3.0 + 1.0;
  const torch::Tensor eps = torch::randn({64, 1}, torch::kDouble);
  CouplingOptions o;
  o.kind = "ot";
  const torch::Tensor paired = couple(y, eps, torch::Tensor(), o);
  const torch::Tensor y_order = std::get<1>(y.squeeze(1).sort());
  EXPECT_LT(max_abs_diff(paired.index_select(0, y_order).squeeze(1), std::get<0>(eps.squeeze(1).sort())), 1e-15);
  // Independent leaves the draws as they are.
  o.kind = "independent";
  EXPECT_TRUE(couple(y, eps, torch::Tensor(), o).equal(eps));
}

TEST(Coupling, LabelledRowsTakeTheirOwnClasssDraws) {
  torch::manual_seed(4);
  const torch::Tensor labels = torch::tensor({0, 1, 0, 2, 1, 0, 2, 1}, torch::kLong);
  const torch::Tensor y = torch::randn({8, 1, 2, 2}, torch::kDouble);
  const torch::Tensor eps = torch::randn({8, 1, 2, 2}, torch::kDouble);
  CouplingOptions o;
  o.kind = "ot";
  const torch::Tensor paired = couple(y, eps, labels, o);
  EXPECT_EQ(paired.sizes(), eps.sizes());
  for (const int64_t c : {0, 1, 2}) {
    const torch::Tensor rows = (labels == c).nonzero().squeeze(1);
    // The class's rows hold the class's draws, in some order.
    const auto key = [](const torch::Tensor& t) { return std::get<0>(t.flatten(1).select(1, 0).sort()); };
    EXPECT_LT(max_abs_diff(key(paired.index_select(0, rows)), key(eps.index_select(0, rows))), 1e-15) << c;
    // And within the class they are the optimal pairing.
    const torch::Tensor y_c = y.index_select(0, rows).flatten(1), e_c = eps.index_select(0, rows).flatten(1);
    const torch::Tensor p_c = paired.index_select(0, rows).flatten(1);
    const torch::Tensor cost = torch::cdist(y_c, e_c).pow(2);
    EXPECT_NEAR((y_c - p_c).pow(2).sum().item<double>(), assignment_cost(cost, optimal_assignment(cost)), 1e-9);
  }
}

TEST(Coupling, SinkhornHasUniformMarginalsAndTendsToTheAssignment) {
  torch::manual_seed(5);
  const int64_t n = 12;
  const torch::Tensor cost = torch::cdist(torch::randn({n, 2}, torch::kDouble), torch::randn({n, 2}, torch::kDouble)).pow(2);
  const torch::Tensor plan = sinkhorn_plan(cost, 0.05, 500);
  EXPECT_LT(max_abs_diff(plan.sum(0), torch::full({n}, 1.0 / n, torch::kDouble)), 1e-9);
  EXPECT_LT(max_abs_diff(plan.sum(1), torch::full({n}, 1.0 / n, torch::kDouble)), 1e-6);
  // A large regularisation is nearly independent; a small one is nearly the permutation.
  const torch::Tensor flat = sinkhorn_plan(cost, 1e3, 100);
  EXPECT_LT(max_abs_diff(flat, torch::full({n, n}, 1.0 / (n * n), torch::kDouble)), 1e-4);
  const torch::Tensor sharp = sinkhorn_plan(cost, 1e-3, 2000);
  const std::vector<int64_t> perm = optimal_assignment(cost);
  const torch::Tensor argmax = sharp.argmax(1);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(argmax[i].item<int64_t>(), perm[static_cast<size_t>(i)]) << i;
  // Drawing from the plan's rows: each pair costs about what the plan does.
  CouplingOptions o;
  o.kind = "ot-sinkhorn";
  o.epsilon = 1e-3;
  o.iterations = 2000;
  const torch::Tensor y = torch::randn({n, 2}, torch::kDouble), eps = torch::randn({n, 2}, torch::kDouble);
  const torch::Tensor c2 = torch::cdist(y, eps).pow(2);
  EXPECT_NEAR((y - couple(y, eps, torch::Tensor(), o)).pow(2).sum().item<double>(),
              assignment_cost(c2, optimal_assignment(c2)), 1e-6);
  o.epsilon = 0;
  EXPECT_THROW_WITH(couple(y, eps, torch::Tensor(), o), InvalidArgument, "coupling epsilon must be a positive number");
  o.kind = "nearest";
  EXPECT_THROW_WITH(couple(y, eps, torch::Tensor(), o), InvalidArgument, "coupling");
}

// A flow model whose network outputs zero regresses the velocity target y - eps itself, so its
// loss with ot pairs is lower than with the same draws unpaired. (The fused step against
// autograd with coupled pairs: tests/model/fused_step_test.cpp.)
TEST(Coupling, OtPairsLowerAZeroFlowsLoss) {
  const auto loss = [](const std::string& coupling) {
    torch::manual_seed(8);
    ModelPtr m = make_model(model_config(
        "flow", 2, {{"coupling", coupling}, {"net", {{"width", 8}, {"zero_init_output", true}}}}));
    torch::manual_seed(9);
    const torch::Tensor y = torch::randn({32, 2}, torch::kDouble) * 2.0;
    return m->loss(y).item<double>();
  };
  EXPECT_LT(loss("ot"), loss("independent") - 0.5);
  EXPECT_THROW_WITH(make_model(model_config("flow", 2, {{"coupling", "nearest"}})), InvalidArgument,
                    "unknown coupling 'nearest'");
}

}  // namespace
}  // namespace sdegen
