#pragma once
// What the tensor and the raw-buffer Dormand-Prince solvers share (dopri5.cpp, dopri5_raw.cpp),
// so that both take the same steps: the tableau, the error exponent, the option checks and the
// smallest usable step, the way a solve ends. Private to src/solver.
// Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.4-5.
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "sdegen/core/check.h"
#include "sdegen/solver/ode.h"

namespace sdegen::detail::dopri5 {

// Butcher tableau.
constexpr double c2 = 1.0 / 5, c3 = 3.0 / 10, c4 = 4.0 / 5, c5 = 8.0 / 9;
constexpr double a21 = 1.0 / 5;
constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561,
                 a54 = -212.0 / 729;
constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247, a64 = 49.0 / 176,
                 a65 = -5103.0 / 18656;
// Fifth-order weights (also the last row of the tableau, which is what makes FSAL work).
constexpr double b1 = 35.0 / 384, b3 = 500.0 / 1113, b4 = 125.0 / 192, b5 = -2187.0 / 6784,
                 b6 = 11.0 / 84;
// Fifth- minus fourth-order weights: the local error estimate.
constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920,
                 e5 = -17253.0 / 339200, e6 = 22.0 / 525, e7 = -1.0 / 40;
// The error estimate is O(h^5): step factors scale with err^(-1/5).
constexpr double kErrorExponent = -1.0 / 5;

inline void check_options(const AdaptiveOptions& o, double t0, double t1) {
  SDEGEN_CHECK(std::isfinite(t0) && std::isfinite(t1),
               "adaptive solve needs finite end points, got t0 = ", t0, ", t1 = ", t1);
  SDEGEN_CHECK(o.rtol > 0, "rtol must be positive, got ", o.rtol);
  SDEGEN_CHECK(o.atol > 0, "atol must be positive, got ", o.atol);
  SDEGEN_CHECK(o.first_step >= 0, "first_step must be >= 0 (0: automatic), got ", o.first_step);
  SDEGEN_CHECK(o.min_step >= 0, "min_step must be >= 0, got ", o.min_step);
  SDEGEN_CHECK(o.max_steps > 0, "max_steps must be positive, got ", o.max_steps);
  SDEGEN_CHECK(o.safety > 0 && o.safety <= 1, "safety must be in (0, 1], got ", o.safety);
  SDEGEN_CHECK(o.min_factor > 0 && o.min_factor < 1, "min_factor must be in (0, 1), got ",
               o.min_factor);
  SDEGEN_CHECK(o.max_factor > 1, "max_factor must be > 1, got ", o.max_factor);
}

// Below this a step no longer moves t reliably, or at all.
inline bool too_small(double h, double t, const AdaptiveOptions& o) {
  return h <= 0 || h < o.min_step || h < 4 * std::numeric_limits<double>::epsilon() * std::abs(t);
}

// Ends a solve with a status and its reason.
inline Solution& fail(Solution& sol, SolveStatus status, std::string message) {
  sol.status = status;
  sol.message = std::move(message);
  return sol;
}

}  // namespace sdegen::detail::dopri5
