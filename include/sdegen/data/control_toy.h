#pragma once
// A built-in control task with multimodal demonstrations, for conditional generation of action
// chunks (as in diffusion policies): a point robot in the plane starts near (0, 0) and reaches a
// goal at (1, 0) past a round obstacle centred between them. Each demonstration passes the
// obstacle above or below, at random, half and half, so the right action at the start is one of
// two; their average heads straight into the obstacle.
//
// A training row is an observation (the robot's position px, py) and the action chunk that the
// demonstration took from there: the next `horizon` displacements (a1x, a1y, ..., aHx, aHy),
// zeros once the goal is reached. A policy maps an observation to a chunk; a closed-loop rollout
// executes the first few actions of each chunk through a safety layer (clipping and rate limits),
// observes again and repeats.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sdegen {

struct ObstacleTask {
  double obstacle_x = 0.5, obstacle_y = 0.0, radius = 0.2;
  double goal_x = 1.0, goal_y = 0.0;
  int64_t length = 40;   // steps of a demonstration from the start to the goal
  int64_t horizon = 8;   // actions per chunk
  double start_spread = 0.05;  // starts at (0, y0) with y0 uniform in [-spread, spread]
  // A demonstration's detour: y(u) = y0 (1 - u) + side A sin(pi u) at x = u, with A uniform in
  // [amplitude_min, amplitude_max]; its closest approach to the obstacle's centre is A - spread/2.
  double amplitude_min = 0.3, amplitude_max = 0.4;
};

struct Demonstrations {
  torch::Tensor observations;  // [n, 2] float64: px, py
  torch::Tensor actions;       // [n, 2 * horizon] float64: a1x, a1y, ..., aHx, aHy
  torch::Tensor sides;         // [n] int64: +1 above the obstacle, -1 below (the row's demonstration)
  std::vector<std::string> columns;  // "px", "py", "a1x", "a1y", ...: a table's header, observations first
};

// `episodes` demonstrations of `task`, every step of each a row (episodes * length rows), fixed by
// seed and independent of torch's global generator.
Demonstrations obstacle_demonstrations(const ObstacleTask& task, int64_t episodes, uint64_t seed);

// Whether the point (x, y) lies inside the obstacle.
bool inside_obstacle(const ObstacleTask& task, double x, double y);

// The safety layer between a policy and the robot: every command's components are clipped to
// [-max_step, max_step], and each differs from the previous command by at most max_change per
// component (a rate limit; the first command of a rollout is measured against zero motion).
struct SafetyLayer {
  double max_step = 0.06;
  double max_change = 0.03;
  // Makes `command` [2] safe given the previous one, in place; returns whether anything changed.
  bool apply(double* command, const double* previous) const;
};

// A policy: writes the action chunk [2 * horizon] for the observation [2].
using ChunkPolicy = std::function<void(const double* observation, double* chunk)>;

struct RolloutOptions {
  int64_t execute = 4;       // actions of each chunk executed before observing again
  int64_t max_steps = 120;   // gives up (not reached) after this many actions
  SafetyLayer safety;
};

struct Rollout {
  std::vector<double> x, y;  // the positions visited, the start first
  bool collided = false;     // some position, or the segment to it, entered the obstacle
  bool reached = false;      // came within 0.05 of the goal before max_steps
  int side = 0;              // +1 above, -1 below: the sign of y where the path crosses the obstacle's x
  int64_t chunks = 0;        // policy calls
  int64_t limited = 0;       // commands the safety layer changed
};

// Runs `policy` in closed loop from (0, y0).
Rollout rollout(const ObstacleTask& task, const ChunkPolicy& policy, double y0, const RolloutOptions& options = {});

}  // namespace sdegen
