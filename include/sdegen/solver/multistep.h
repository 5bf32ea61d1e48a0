#pragma once
// Linear multistep (Adams) methods on a grid of any spacing, and the interpolatory quadrature
// they share with the exponential integrators of sample/.
#include <vector>

#include "sdegen/solver/solution.h"

namespace sdegen {

// Adams-Bashforth of `order` on the last `order` values of the field; with the corrector, the
// Adams-Moulton step of order + 1 through the value at the predicted point (PEC: that value is
// the next step's history, so every step costs one evaluation and nfe = steps).
// Order: a step from exact history has local error h^(order + 2) with the corrector,
// h^(order + 1) without. The warm-up (step j has j values) starts with Euler, corrected by the
// trapezoid rule, whose local error h^3 caps the global order at 3 (2 without the corrector)
// once the grid is fine enough for the warm-up to dominate; on the 10 to 20 steps samplers use
// the later steps dominate. PEC is explicit: stable for h |df/dx| up to about 1 (abm4), less
// than rk4's 2.8.
struct AdamsOptions {
  int order = 3;          // 1 to 4
  bool corrector = true;  // never on the last step, where its value would not be reused
};

// Steps through grid (monotone, at least two points). Stops early with NonFinite if a state
// stops being finite.
Solution solve_ode_adams(const VectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                         const AdamsOptions& options = {}, const Observer& observer = {});

namespace detail {

// w_m = sum_j c_mj moments[j], with c_mj the coefficients of the Lagrange basis polynomial of
// node m in powers of v (nodes distinct, moments[j] = int weight(v) v^j dv, one per node):
// the weights of the quadrature that is exact for polynomials through the nodes.
std::vector<double> interpolatory_weights(const std::vector<double>& nodes,
                                          const std::vector<double>& moments);

struct FieldValue {
  double t;
  torch::Tensor f;
};
// x + int_t^{t+h} P, with P the polynomial through the values (any order, distinct times).
torch::Tensor adams_step(const torch::Tensor& x, double t, double h, const std::vector<FieldValue>& values);

}  // namespace detail
}  // namespace sdegen
