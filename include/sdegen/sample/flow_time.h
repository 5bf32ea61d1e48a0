#pragma once
// Flow time: every affine schedule's probability flow is the linear schedule's in other
// coordinates. With r = a / (a + b) and xb = x / (a + b), x_t = a y + b eps reads
// xb = r y + (1 - r) eps, so
//   dxb/dr = E[y - eps | xb] = y_hat - eps_hat  (= [(a + b) v - (a' + b') x] / (a' b - a b'))
// is one field whatever the schedule. A fixed-grid solver run in (r, xb) meets the same
// problem under linear, vp or trig; in schedule time vp's flow is far harder to step.
// The field is formed from the v-prediction (y_hat and eps_hat are (a x - b vpred) / (a^2 + b^2)
// and (b x + a vpred) / (a^2 + b^2)), so it is finite at both ends of every named schedule,
// also at vp's t = 1 where dr/dt is infinite.
#include <functional>

#include "sdegen/process/generative.h"
#include "sdegen/solver/solution.h"

namespace sdegen {

// a / (a + b) at t: 0 where a = 0 (the prior end of linear and trig), 1 where b = 0.
double flow_time(const AffineSchedule& schedule, double t);

// A fixed-grid ODE solve: the field, the initial state, the grid and an observer.
using GridSolve = std::function<Solution(const VectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                                         const Observer& observer)>;

// Runs `solve` in flow time on the grid's points (given in t, each mapped to r) and maps the
// result back: x at the last point reached, t in schedule time; the observer sees (t, x).
// Throws InvalidArgument where r does not strictly follow t along the grid.
Solution solve_in_flow_time(const MarginalField& model, const torch::Tensor& x0, const TimeGrid& grid,
                            const GridSolve& solve, const Observer& observer = {});

}  // namespace sdegen
