#include "sdegen/data/control_toy.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

void check_task(const ObstacleTask& t) {
  SDEGEN_CHECK(t.length >= 2 && t.horizon >= 1, "ObstacleTask: length must be >= 2 and horizon >= 1, got ",
               t.length, " and ", t.horizon);
  SDEGEN_CHECK(t.radius > 0 && t.start_spread >= 0 && t.amplitude_min > 0 && t.amplitude_max >= t.amplitude_min,
               "ObstacleTask: radius and amplitudes must be positive, with amplitude_min <= amplitude_max");
}

}  // namespace

Demonstrations obstacle_demonstrations(const ObstacleTask& task, int64_t episodes, uint64_t seed) {
  check_task(task);
  SDEGEN_CHECK(episodes >= 1, "obstacle_demonstrations: episodes must be >= 1, got ", episodes);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const int64_t T = task.length, H = task.horizon, n = episodes * T;
  Demonstrations d;
  d.observations = torch::empty({n, 2}, torch::kDouble);
  d.actions = torch::zeros({n, 2 * H}, torch::kDouble);
  d.sides = torch::empty({n}, torch::kLong);
  double* obs = d.observations.data_ptr<double>();
  double* act = d.actions.data_ptr<double>();
  int64_t* side_of = d.sides.data_ptr<int64_t>();
  std::vector<double> px(static_cast<size_t>(T + 1)), py(static_cast<size_t>(T + 1));
  for (int64_t e = 0; e < episodes; ++e) {
    const double y0 = task.start_spread * (2.0 * unit(rng) - 1.0);
    const int side = unit(rng) < 0.5 ? 1 : -1;
    const double amplitude = task.amplitude_min + (task.amplitude_max - task.amplitude_min) * unit(rng);
    for (int64_t k = 0; k <= T; ++k) {
      const double u = static_cast<double>(k) / static_cast<double>(T);
      px[static_cast<size_t>(k)] = task.goal_x * u;
      py[static_cast<size_t>(k)] = y0 * (1.0 - u) + task.goal_y * u + side * amplitude * std::sin(M_PI * u);
    }
    for (int64_t k = 0; k < T; ++k) {
      const int64_t row = e * T + k;
      obs[row * 2] = px[static_cast<size_t>(k)];
      obs[row * 2 + 1] = py[static_cast<size_t>(k)];
      side_of[row] = side;
      for (int64_t h = 0; h < H && k + h < T; ++h) {  // zeros once the goal is reached
        const size_t a = static_cast<size_t>(k + h);
        act[row * 2 * H + 2 * h] = px[a + 1] - px[a];
        act[row * 2 * H + 2 * h + 1] = py[a + 1] - py[a];
      }
    }
  }
  d.columns = {"px", "py"};
  for (int64_t h = 1; h <= H; ++h) {
    d.columns.push_back("a" + std::to_string(h) + "x");
    d.columns.push_back("a" + std::to_string(h) + "y");
  }
  return d;
}

bool inside_obstacle(const ObstacleTask& task, double x, double y) {
  return std::hypot(x - task.obstacle_x, y - task.obstacle_y) < task.radius;
}

bool SafetyLayer::apply(double* command, const double* previous) const {
  bool changed = false;
  for (int j = 0; j < 2; ++j) {
    const double lo = std::max(-max_step, previous[j] - max_change), hi = std::min(max_step, previous[j] + max_change);
    // A NaN command (a diverged policy) becomes the previous one, held within the limits.
    const double wanted = std::isfinite(command[j]) ? command[j] : previous[j];
    const double safe = std::clamp(wanted, std::min(lo, hi), std::max(lo, hi));
    changed = changed || safe != command[j];
    command[j] = safe;
  }
  return changed;
}

Rollout rollout(const ObstacleTask& task, const ChunkPolicy& policy, double y0, const RolloutOptions& o) {
  check_task(task);
  SDEGEN_CHECK(o.execute >= 1 && o.execute <= task.horizon, "rollout: execute must be in [1, horizon = ",
               task.horizon, "], got ", o.execute);
  Rollout r;
  double x = 0.0, y = y0;
  r.x.push_back(x), r.y.push_back(y);
  std::vector<double> chunk(static_cast<size_t>(2 * task.horizon));
  double previous[2] = {0.0, 0.0};
  int64_t steps = 0;
  while (steps < o.max_steps && !r.reached) {
    const double observation[2] = {x, y};
    policy(observation, chunk.data());
    ++r.chunks;
    for (int64_t h = 0; h < o.execute && steps < o.max_steps; ++h, ++steps) {
      double command[2] = {chunk[static_cast<size_t>(2 * h)], chunk[static_cast<size_t>(2 * h + 1)]};
      if (o.safety.apply(command, previous)) ++r.limited;
      previous[0] = command[0], previous[1] = command[1];
      const double nx = x + command[0], ny = y + command[1];
      // The segment, sampled finely enough for steps of at most max_step against the radius.
      for (int s = 1; s <= 8; ++s) {
        const double f = s / 8.0;
        if (inside_obstacle(task, x + f * command[0], y + f * command[1])) r.collided = true;
      }
      if (r.side == 0 && (x - task.obstacle_x) * (nx - task.obstacle_x) <= 0 && nx != x)
        r.side = (y + (ny - y) * (task.obstacle_x - x) / (nx - x)) >= task.obstacle_y ? 1 : -1;
      x = nx, y = ny;
      r.x.push_back(x), r.y.push_back(y);
      if (std::hypot(x - task.goal_x, y - task.goal_y) < 0.05) {
        r.reached = true;
        ++steps;
        break;
      }
    }
  }
  return r;
}

}  // namespace sdegen
