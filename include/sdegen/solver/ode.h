#pragma once
// ODE solvers: fixed-step Runge-Kutta steppers on a time grid, and adaptive Dormand-Prince 5(4).
// Grids and intervals may run either way (t increasing for generation, decreasing for
// likelihoods, which integrate from data back to the prior).
#include <memory>
#include <string>
#include <vector>

#include "sdegen/core/time_grid.h"
#include "sdegen/solver/solution.h"

namespace sdegen {

// One explicit Runge-Kutta step of a fixed order.
class OdeStepper {
 public:
  virtual ~OdeStepper() = default;
  virtual std::string name() const = 0;
  virtual int order() const = 0;
  virtual int stages() const = 0;  // vector-field evaluations per step
  // x(t + dt) from x(t).
  virtual torch::Tensor step(const VectorField& f, double t, double dt, const torch::Tensor& x) const = 0;
};

// "euler", "midpoint", "heun", "rk4"; an unknown name lists the valid ones.
std::vector<std::string> fixed_ode_solver_names();
std::unique_ptr<OdeStepper> make_ode_stepper(const std::string& name);

// Steps through grid (monotone, at least two points). Stops early with NonFinite if a state
// stops being finite.
Solution solve_ode(const VectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                   const OdeStepper& stepper, const Observer& observer = {});

// A fixed-step stepper's Butcher tableau: stage i evaluates k_i = f(t + c_i h, x + h sum_{j<i}
// a_ij k_j) and the step is x + h sum_i b_i k_i. The named steppers above, as numbers, for
// callers that step on raw buffers (solve_ode_raw, the ode model's fused training step).
struct ButcherTableau {
  std::vector<std::vector<double>> a;  // a[i] has i entries
  std::vector<double> b, c;
  int stages() const { return static_cast<int>(b.size()); }
};
ButcherTableau butcher_tableau(const std::string& stepper);

// solve_ode with a named fixed-step stepper for a field on raw float64 buffers (solution.h's
// RawVectorField), with no tensor work per step; x0 is a float64 CPU tensor [n, d]. The same
// states as solve_ode up to rounding; NonFinite stops it the same way.
Solution solve_ode_raw(const RawVectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                       const std::string& stepper, const Observer& observer = {});

struct AdaptiveOptions {
  double rtol = 1e-5;
  double atol = 1e-5;
  double first_step = 0.0;       // 0: chosen automatically from the field at t0
  double min_step = 1e-10;       // |dt| below this is StepSizeUnderflow
  int64_t max_steps = 100000;    // accepted + rejected steps before MaxStepsReached
  double safety = 0.9;
  double min_factor = 0.2;
  double max_factor = 10.0;
};

// Dormand-Prince 5(4) with FSAL and an error norm over the whole batch (RMS of
// err / (atol + rtol max(|x|, |x_new|))); t1 may be below t0.
Solution solve_ode_adaptive(const VectorField& f, const torch::Tensor& x0, double t0, double t1,
                            const AdaptiveOptions& options = {}, const Observer& observer = {});

// solve_ode_adaptive for a field on raw float64 buffers (RawVectorField), with no tensor work per
// step: the same tableau, starting step, error norm and step-size controller, so the same steps
// and states up to rounding. x0 is a float64 CPU tensor [n, d]; a row is one point.
// Without `isolated`, a solve that goes wrong fails as solve_ode_adaptive's does. With it, the
// rows that alone defeat the step-size control are set aside instead of failing the solve: a row
// still non-finite once the step has shrunk below min_step (NonFinite), or, at a step size
// underflow, a row whose own error norm exceeds 1. Such a row is frozen at its last accepted
// state (its field is taken as zero from there on and it leaves the error norm), its index is
// appended to *isolated, and the other rows go on; sol.x keeps the frozen row as it was. The
// solve fails as without `isolated` when no row, or every remaining row, is to blame.
Solution solve_ode_adaptive_raw(const RawVectorField& f, const torch::Tensor& x0, double t0, double t1,
                                const AdaptiveOptions& options = {}, const Observer& observer = {},
                                std::vector<int64_t>* isolated = nullptr);

}  // namespace sdegen
