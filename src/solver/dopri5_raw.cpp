// Dormand-Prince 5(4) on raw float64 buffers: solve_ode_adaptive (dopri5.cpp) step for step, with
// the stage combinations done in place on preallocated buffers instead of a dozen tensor
// operations per stage. Every expression keeps the tensor solver's order of operations, so the
// two agree to rounding and take the same steps. What it adds is the choice to set aside the rows
// that defeat the step-size control (ode.h), which one batched error norm cannot do otherwise:
// a single blown-up point would stop every other point's solve.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "dopri5_tableau.h"
#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/solver/ode.h"

namespace sdegen {
namespace {

using detail::concat;
using namespace detail::dopri5;

class RawDopri5 {
 public:
  RawDopri5(const RawVectorField& f, const torch::Tensor& x0, const AdaptiveOptions& o)
      : f_(f), o_(o), n_(x0.size(0)), d_(x0.size(1)), nd_(n_ * d_), x_(x0.contiguous().clone()),
        xn_(torch::empty_like(x_)), stage_(size(1)), k_(size(7)), row_err_(static_cast<size_t>(n_), 0.0),
        frozen_(static_cast<size_t>(n_), 0), live_(n_) {}

  torch::Tensor& x() { return x_; }
  int64_t nfe() const { return nfe_; }
  double* k(int i) { return k_.data() + (i - 1) * nd_; }  // stages k1 ... k7

  // k = f(t, in), with the frozen rows' field set to zero.
  void eval(double t, const double* in, double* out) {
    f_(t, in, n_, out);
    ++nfe_;
    if (live_ == n_) return;
    for (int64_t i = 0; i < n_; ++i)
      if (frozen_[i]) std::fill(out + i * d_, out + (i + 1) * d_, 0.0);
  }

  // RMS over the live rows of v / (atol + rtol |x|), or of (v - w) / ... when w is given.
  double rms_scaled(const double* v, const double* w) const {
    const double* x = x_.data_ptr<double>();
    double sum = 0.0;
    for (int64_t i = 0; i < n_; ++i) {
      if (frozen_[i]) continue;
      for (int64_t e = i * d_; e < (i + 1) * d_; ++e) {
        const double r = (w ? v[e] - w[e] : v[e]) / (o_.atol + o_.rtol * std::abs(x[e]));
        sum += r * r;
      }
    }
    return std::sqrt(sum / static_cast<double>(live_ * d_));
  }

  // Hairer's starting step, as dopri5.cpp's initial_step; k1 holds f(t0, x0), with t0 the time of
  // the current state.
  double initial_step(double t0, double dir, double span) {
    const double* x = x_.data_ptr<double>();
    const double* f0 = k(1);
    const double d0 = rms_scaled(x, nullptr), d1 = rms_scaled(f0, nullptr);
    double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
    h0 = std::min(h0, span);
    double* probe = stage_.data();
    for (int64_t e = 0; e < nd_; ++e) probe[e] = x[e] + f0[e] * (dir * h0);
    eval(t0 + dir * h0, probe, k(2));
    const double d2 = rms_scaled(k(2), f0) / h0;
    if (!std::isfinite(d2)) return h0;  // the field misbehaves nearby: start cautiously
    const double d = std::max(d1, d2);
    const double h1 = d <= 1e-15 ? std::max(1e-6, h0 * 1e-3) : std::pow(0.01 / d, 1.0 / 5);
    return std::min({100 * h0, h1, span});
  }

  // The stages k2 ... k7 and the fifth-order state xn from (t, x) with k1.
  void trial(double t, double dt) {
    const double* x = x_.data_ptr<double>();
    double *X = stage_.data(), *xn = xn_.data_ptr<double>();
    const double *k1 = k(1), *k2 = k(2), *k3 = k(3), *k4 = k(4), *k5 = k(5), *k6 = k(6);
    for (int64_t e = 0; e < nd_; ++e) X[e] = x[e] + k1[e] * (dt * a21);
    eval(t + c2 * dt, X, k(2));
    for (int64_t e = 0; e < nd_; ++e) X[e] = x[e] + (k1[e] * a31 + k2[e] * a32) * dt;
    eval(t + c3 * dt, X, k(3));
    for (int64_t e = 0; e < nd_; ++e) X[e] = x[e] + (k1[e] * a41 + k2[e] * a42 + k3[e] * a43) * dt;
    eval(t + c4 * dt, X, k(4));
    for (int64_t e = 0; e < nd_; ++e)
      X[e] = x[e] + (k1[e] * a51 + k2[e] * a52 + k3[e] * a53 + k4[e] * a54) * dt;
    eval(t + c5 * dt, X, k(5));
    for (int64_t e = 0; e < nd_; ++e)
      X[e] = x[e] + (k1[e] * a61 + k2[e] * a62 + k3[e] * a63 + k4[e] * a64 + k5[e] * a65) * dt;
    eval(t + dt, X, k(6));
    for (int64_t e = 0; e < nd_; ++e)
      xn[e] = x[e] + (k1[e] * b1 + k3[e] * b3 + k4[e] * b4 + k5[e] * b5 + k6[e] * b6) * dt;
    eval(t + dt, xn, k(7));
  }

  // dopri5.cpp's error_norm over the live rows; also each row's own norm (infinite where the row
  // is not finite), which says which rows to blame when the step cannot be controlled.
  double error_norm(double dt) {
    const double *x = x_.data_ptr<double>(), *xn = xn_.data_ptr<double>();
    const double *k1 = k(1), *k3 = k(3), *k4 = k(4), *k5 = k(5), *k6 = k(6), *k7 = k(7);
    constexpr double inf = std::numeric_limits<double>::infinity();
    double sum = 0.0;
    bool finite = true;
    for (int64_t i = 0; i < n_; ++i) {
      if (frozen_[i]) continue;
      double row = 0.0;
      bool row_finite = true;
      for (int64_t e = i * d_; e < (i + 1) * d_; ++e) {
        row_finite = row_finite && std::isfinite(xn[e]) && std::isfinite(k7[e]);
        const double err = (k1[e] * e1 + k3[e] * e3 + k4[e] * e4 + k5[e] * e5 + k6[e] * e6 + k7[e] * e7) * dt;
        const double r = err / (o_.atol + o_.rtol * std::max(std::abs(x[e]), std::abs(xn[e])));
        row += r * r;
      }
      finite = finite && row_finite;
      row_err_[i] = row_finite ? std::sqrt(row / static_cast<double>(d_)) : inf;
      sum += row;
    }
    return finite ? std::sqrt(sum / static_cast<double>(live_ * d_)) : inf;
  }

  void accept() {
    std::swap(x_, xn_);
    std::swap_ranges(k(7), k(7) + nd_, k(1));
  }

  // Blames the rows whose field is not finite at the start (k1), before any trial.
  void blame_start() {
    const double* k1 = k(1);
    for (int64_t i = 0; i < n_; ++i) {
      row_err_[i] = 0.0;
      for (int64_t e = i * d_; e < (i + 1) * d_; ++e)
        if (!std::isfinite(k1[e])) row_err_[i] = std::numeric_limits<double>::infinity();
    }
  }

  // Freezes the live rows whose last trial error norm exceeds 1 (or was not finite), unless none
  // or all of them do; appends them to `out` and returns how many.
  int64_t isolate(std::vector<int64_t>& out) {
    std::vector<int64_t> blamed;
    for (int64_t i = 0; i < n_; ++i)
      if (!frozen_[i] && !(row_err_[i] <= 1.0)) blamed.push_back(i);
    const auto count = static_cast<int64_t>(blamed.size());
    if (count == 0 || count == live_) return 0;
    for (const int64_t i : blamed) {
      frozen_[i] = 1;
      std::fill(k(1) + i * d_, k(1) + (i + 1) * d_, 0.0);
    }
    live_ -= count;
    out.insert(out.end(), blamed.begin(), blamed.end());
    return count;
  }

 private:
  std::vector<double> size(int64_t copies) const { return std::vector<double>(static_cast<size_t>(copies * nd_)); }

  const RawVectorField& f_;
  const AdaptiveOptions& o_;
  int64_t n_, d_, nd_;
  torch::Tensor x_, xn_;  // the state and the trial state: tensors, so the solution needs no copy
  std::vector<double> stage_, k_;
  std::vector<double> row_err_;
  std::vector<char> frozen_;
  int64_t live_;
  int64_t nfe_ = 0;
};

}  // namespace

Solution solve_ode_adaptive_raw(const RawVectorField& f, const torch::Tensor& x0, double t0, double t1,
                                const AdaptiveOptions& o, const Observer& observer, std::vector<int64_t>* isolated) {
  SDEGEN_CHECK(f != nullptr, "solve_ode_adaptive_raw needs a vector field");
  detail::check_initial_state(x0);
  SDEGEN_CHECK(is_cpu_double(x0) && x0.dim() == 2, "solve_ode_adaptive_raw needs a float64 CPU state of shape [n, d], got ",
               x0.scalar_type(), " ", x0.sizes());
  check_options(o, t0, t1);
  RawDopri5 s(f, x0, o);
  Solution sol;
  sol.t = t0;
  const auto done = [&]() -> Solution& {
    sol.x = s.x();
    sol.nfe = s.nfe();
    return sol;
  };
  // Observers may keep what they are given: a copy, since the buffers are reused.
  if (observer) observer(t0, s.x().clone());
  if (t0 == t1) return done();

  std::vector<int64_t> set_aside;
  // Sets aside the rows to blame for a failure, when the caller allows it.
  const auto rescue = [&]() { return isolated != nullptr && s.isolate(set_aside) > 0; };
  const double dir = t1 > t0 ? 1.0 : -1.0;
  s.eval(t0, s.x().data_ptr<double>(), s.k(1));
  const double* k1 = s.k(1);
  bool start_finite = std::all_of(k1, k1 + x0.numel(), [](double v) { return std::isfinite(v); });
  if (!start_finite) {
    s.blame_start();  // such a row cannot take any step
    start_finite = rescue();
  }
  if (!start_finite)
    return fail(done(), SolveStatus::NonFinite, concat("non-finite vector field at t = ", t0, "; check the field at the start"));
  double h = o.first_step > 0 ? o.first_step : s.initial_step(t0, dir, std::abs(t1 - t0));
  bool just_rejected = false;
  // After rows are set aside, the step control starts afresh on the others from where they are.
  const auto restart = [&]() {
    just_rejected = false;
    return s.initial_step(sol.t, dir, std::abs(t1 - sol.t));
  };

  while (true) {
    if (sol.steps + sol.rejected >= o.max_steps)
      return fail(done(), SolveStatus::MaxStepsReached,
                  concat("maximum number of steps (", o.max_steps, ") reached at t = ", sol.t,
                         "; raise max_steps or loosen rtol/atol"));
    const double remaining = std::abs(t1 - sol.t);
    h = std::min(h, remaining);  // land exactly on t1
    if (too_small(h, sol.t, o) && h < remaining) {
      if (rescue()) {
        h = restart();
        continue;
      }
      return fail(done(), SolveStatus::StepSizeUnderflow,
                  concat("step size underflow at t = ", sol.t, " (step ", h, ", min_step ", o.min_step,
                         "); the field may be stiff or singular here: check it, loosen rtol/atol or lower min_step"));
    }
    const bool last = h == remaining;

    s.trial(sol.t, dir * h);
    const double err = s.error_norm(dir * h);

    if (!std::isfinite(err)) {
      // A step that is too long can overflow even where the solution is fine, so shrink first.
      ++sol.rejected;
      just_rejected = true;
      h *= o.min_factor;
      if (too_small(h, sol.t, o)) {
        if (rescue()) {
          h = restart();
          continue;
        }
        return fail(done(), SolveStatus::NonFinite,
                    concat("non-finite state at t = ", sol.t, ": every step from there, down to min_step = ",
                           o.min_step, ", gave non-finite values; check the vector field just past this time"));
      }
      continue;
    }
    if (err > 1) {
      ++sol.rejected;
      just_rejected = true;
      h *= std::max(o.min_factor, o.safety * std::pow(err, kErrorExponent));
      continue;
    }

    s.accept();
    sol.t = last ? t1 : sol.t + dir * h;
    ++sol.steps;
    if (observer) observer(sol.t, s.x().clone());
    if (last) break;
    double factor = err == 0 ? o.max_factor : o.safety * std::pow(err, kErrorExponent);
    factor = std::clamp(factor, o.min_factor, o.max_factor);
    // Growing right after a rejection tends to be rejected again (Hairer II.4).
    if (just_rejected) factor = std::min(factor, 1.0);
    just_rejected = false;
    h *= factor;
  }
  if (isolated && !set_aside.empty()) {
    sol.message = concat(set_aside.size(), " of ", x0.size(0), " rows set aside: their solves could not be controlled");
    isolated->insert(isolated->end(), set_aside.begin(), set_aside.end());
  }
  return done();
}

}  // namespace sdegen
