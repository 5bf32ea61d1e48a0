// Adaptive Dormand-Prince 5(4): the fifth-order solution is propagated (local extrapolation),
// the embedded fourth-order one only estimates the error, and the last stage is the first
// stage of the next step (FSAL), so an accepted step costs six evaluations.
// Reference: Hairer, Norsett & Wanner, Solving ODEs I, section II.4-5 (tableau, step control,
// starting step size).
#include <algorithm>
#include <cmath>
#include <limits>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"
#include "dopri5_tableau.h"

namespace sdegen {
namespace {

using detail::concat;
using namespace detail::dopri5;
using detail::evaluate;

struct Trial {
  torch::Tensor x;    // fifth-order state at t + dt
  torch::Tensor k7;   // f(t + dt, x): the first stage of the next step
  torch::Tensor err;  // local error estimate
};

Trial dopri_step(const VectorField& f, double t, double dt, const torch::Tensor& x,
                 const torch::Tensor& k1) {
  const auto k2 = evaluate(f, t + c2 * dt, x + k1 * (dt * a21));
  const auto k3 = evaluate(f, t + c3 * dt, x + (k1 * a31 + k2 * a32) * dt);
  const auto k4 = evaluate(f, t + c4 * dt, x + (k1 * a41 + k2 * a42 + k3 * a43) * dt);
  const auto k5 =
      evaluate(f, t + c5 * dt, x + (k1 * a51 + k2 * a52 + k3 * a53 + k4 * a54) * dt);
  const auto k6 = evaluate(
      f, t + dt, x + (k1 * a61 + k2 * a62 + k3 * a63 + k4 * a64 + k5 * a65) * dt);
  Trial trial;
  trial.x = x + (k1 * b1 + k3 * b3 + k4 * b4 + k5 * b5 + k6 * b6) * dt;
  trial.k7 = evaluate(f, t + dt, trial.x);
  trial.err = (k1 * e1 + k3 * e3 + k4 * e4 + k5 * e5 + k6 * e6 + trial.k7 * e7) * dt;
  return trial;
}

double rms(const torch::Tensor& v) { return v.square().mean().sqrt().item<double>(); }

// One number for the whole batch, so that every row shares the step sequence.
double error_norm(const Trial& trial, const torch::Tensor& x, const AdaptiveOptions& o) {
  if (!all_finite(trial.x) || !all_finite(trial.k7))
    return std::numeric_limits<double>::infinity();
  const torch::Tensor scale = o.atol + o.rtol * torch::maximum(x.abs(), trial.x.abs());
  return rms(trial.err / scale);
}

// Hairer's starting step: the step whose Euler error would be about 1% of the tolerance,
// corrected by an estimate of the second derivative from one extra evaluation.
double initial_step(const VectorField& f, double t0, const torch::Tensor& x0,
                    const torch::Tensor& f0, double dir, double span, const AdaptiveOptions& o,
                    int64_t& nfe) {
  const torch::Tensor scale = o.atol + o.rtol * x0.abs();
  const double d0 = rms(x0 / scale), d1 = rms(f0 / scale);
  double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  h0 = std::min(h0, span);
  const torch::Tensor f1 = evaluate(f, t0 + dir * h0, x0 + f0 * (dir * h0));
  ++nfe;
  const double d2 = rms((f1 - f0) / scale) / h0;
  if (!std::isfinite(d2)) return h0;  // the field misbehaves nearby: start cautiously
  const double d = std::max(d1, d2);
  const double h1 = d <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / d, 1.0 / 5);
  return std::min({100 * h0, h1, span});
}

}  // namespace

Solution solve_ode_adaptive(const VectorField& f, const torch::Tensor& x0, double t0, double t1,
                            const AdaptiveOptions& o, const Observer& observer) {
  SDEGEN_CHECK(static_cast<bool>(f), "solve_ode_adaptive: the vector field is empty");
  detail::check_initial_state(x0);
  check_options(o, t0, t1);
  Solution sol;
  sol.x = x0;
  sol.t = t0;
  if (observer) observer(t0, x0);
  if (t0 == t1) return sol;

  const double dir = t1 > t0 ? 1.0 : -1.0;
  torch::Tensor k1 = evaluate(f, t0, x0);
  sol.nfe = 1;
  if (!all_finite(k1))
    return fail(sol, SolveStatus::NonFinite,
                concat("non-finite vector field at t = ", t0, "; check the field at the start"));
  double h = o.first_step > 0 ? o.first_step
                              : initial_step(f, t0, x0, k1, dir, std::abs(t1 - t0), o, sol.nfe);
  bool just_rejected = false;

  while (true) {
    if (sol.steps + sol.rejected >= o.max_steps)
      return fail(sol, SolveStatus::MaxStepsReached,
                  concat("maximum number of steps (", o.max_steps, ") reached at t = ", sol.t,
                         "; raise max_steps or loosen rtol/atol"));
    const double remaining = std::abs(t1 - sol.t);
    h = std::min(h, remaining);  // land exactly on t1
    if (too_small(h, sol.t, o) && h < remaining)
      return fail(sol, SolveStatus::StepSizeUnderflow,
                  concat("step size underflow at t = ", sol.t, " (step ", h, ", min_step ",
                         o.min_step, "); the field may be stiff or singular here: check it, "
                         "loosen rtol/atol or lower min_step"));
    const bool last = h == remaining;

    const Trial trial = dopri_step(f, sol.t, dir * h, sol.x, k1);
    sol.nfe += 6;
    const double err = error_norm(trial, sol.x, o);

    if (!std::isfinite(err)) {
      // A step that is too long can overflow even where the solution is fine, so shrink
      // first; only a non-finite value that survives steps below min_step is reported.
      ++sol.rejected;
      just_rejected = true;
      h *= o.min_factor;
      if (too_small(h, sol.t, o))
        return fail(sol, SolveStatus::NonFinite,
                    concat("non-finite state at t = ", sol.t, ": every step from there, down to ",
                           "min_step = ", o.min_step, ", gave non-finite values; check the ",
                           "vector field just past this time"));
      continue;
    }
    if (err > 1) {
      ++sol.rejected;
      just_rejected = true;
      h *= std::max(o.min_factor, o.safety * std::pow(err, kErrorExponent));
      continue;
    }

    sol.x = trial.x;
    sol.t = last ? t1 : sol.t + dir * h;
    k1 = trial.k7;
    ++sol.steps;
    if (observer) observer(sol.t, sol.x);
    if (last) return sol;
    double factor = err == 0 ? o.max_factor : o.safety * std::pow(err, kErrorExponent);
    factor = std::clamp(factor, o.min_factor, o.max_factor);
    // Growing right after a rejection tends to be rejected again (Hairer II.4).
    if (just_rejected) factor = std::min(factor, 1.0);
    just_rejected = false;
    h *= factor;
  }
}

}  // namespace sdegen
