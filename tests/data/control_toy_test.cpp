// The obstacle task (data/control_toy.h): demonstrations that go both ways and never touch the
// obstacle, the safety layer's limits, and rollouts that tell a policy that follows a way round
// from one that averages the two.
#include <cmath>

#include "sdegen/core/error.h"
#include "sdegen/data/control_toy.h"
#include "support/support.h"

namespace sdegen {
namespace {

TEST(ObstacleTask, DemonstrationsGoBothWaysAndNeverTouchTheObstacle) {
  const ObstacleTask task;
  const Demonstrations d = obstacle_demonstrations(task, 100, 3);
  ASSERT_EQ(d.observations.sizes(), (std::vector<int64_t>{100 * task.length, 2}));
  ASSERT_EQ(d.actions.sizes(), (std::vector<int64_t>{100 * task.length, 2 * task.horizon}));
  ASSERT_EQ(d.columns.size(), static_cast<size_t>(2 + 2 * task.horizon));
  EXPECT_EQ(d.columns[2], "a1x");
  const double above = d.sides.eq(1).to(torch::kDouble).mean().item<double>();
  EXPECT_GT(above, 0.35);
  EXPECT_LT(above, 0.65);
  const auto obs = d.observations.accessor<double, 2>();
  const auto act = d.actions.accessor<double, 2>();
  for (int64_t i = 0; i < obs.size(0); ++i) ASSERT_FALSE(inside_obstacle(task, obs[i][0], obs[i][1])) << i;
  // An episode's first actions, chained, lead from its start to the goal; chunks past it are zero.
  for (int64_t e = 0; e < 3; ++e) {
    double x = obs[e * task.length][0], y = obs[e * task.length][1];
    for (int64_t k = 0; k < task.length; ++k) x += act[e * task.length + k][0], y += act[e * task.length + k][1];
    EXPECT_NEAR(x, task.goal_x, 1e-12);
    EXPECT_NEAR(y, task.goal_y, 1e-12);
    const int64_t last = e * task.length + task.length - 1;
    for (int64_t j = 2; j < 2 * task.horizon; ++j) EXPECT_EQ(act[last][j], 0.0);
  }
  EXPECT_TRUE(torch::equal(obstacle_demonstrations(task, 5, 9).actions, obstacle_demonstrations(task, 5, 9).actions));
}

TEST(ObstacleTask, TheSafetyLayerClipsAndLimitsTheRate) {
  const SafetyLayer s;  // max_step 0.06, max_change 0.03
  const double zero[2] = {0.0, 0.0};
  double c[2] = {0.2, -0.01};
  EXPECT_TRUE(s.apply(c, zero));
  EXPECT_DOUBLE_EQ(c[0], 0.03);  // rate limit from rest
  EXPECT_DOUBLE_EQ(c[1], -0.01);
  const double moving[2] = {0.05, 0.0};
  double fast[2] = {0.5, 0.0};
  s.apply(fast, moving);
  EXPECT_DOUBLE_EQ(fast[0], 0.06);  // the speed limit
  double bad[2] = {std::nan(""), 0.0};
  EXPECT_TRUE(s.apply(bad, moving));
  EXPECT_DOUBLE_EQ(bad[0], 0.05);  // a NaN command holds the previous one
  double fine[2] = {0.04, 0.01};
  EXPECT_FALSE(s.apply(fine, moving));
}

TEST(ObstacleTask, RolloutsTellGoingRoundFromAveraging) {
  const ObstacleTask task;
  // Follows the upper way round: the analytic detour's next steps from wherever it is.
  const ChunkPolicy round = [&](const double* o, double* chunk) {
    double x = o[0], y = o[1];
    for (int64_t h = 0; h < task.horizon; ++h) {
      const double nx = std::min(task.goal_x, x + 0.025), ny = 0.35 * std::sin(M_PI * nx);
      chunk[2 * h] = nx - x, chunk[2 * h + 1] = ny - y;
      x = nx, y = ny;
    }
  };
  // The average of the two ways: straight ahead.
  const ChunkPolicy straight = [&](const double*, double* chunk) {
    for (int64_t h = 0; h < task.horizon; ++h) chunk[2 * h] = 0.025, chunk[2 * h + 1] = 0.0;
  };
  const Rollout a = rollout(task, round, 0.0);
  EXPECT_TRUE(a.reached);
  EXPECT_FALSE(a.collided);
  EXPECT_EQ(a.side, 1);
  const Rollout b = rollout(task, straight, 0.01);
  EXPECT_TRUE(b.collided);
  RolloutOptions none;
  none.execute = 0;
  EXPECT_THROW_WITH(rollout(task, straight, 0.0, none), InvalidArgument, "execute must be in [1, horizon");
}

}  // namespace
}  // namespace sdegen
