// Time stepping of the 1-D Fokker-Planck solver (eval/fokker_planck.h): Strang splitting of
// Crank-Nicolson diffusion half steps around a MUSCL / SSP-RK2 advection step.
#include "sdegen/eval/fokker_planck.h"

#include <algorithm>
#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

using Vec = std::vector<double>;

// The coefficients at one time: the drift at the interior faces (cells - 1) and
// D = sigma^2 / 2 at the cell centres (cells).
struct Coefficients {
  double t = 0.0;
  Vec f_faces, d_centres;
  double f_max = 0.0, d_max = 0.0;
};

// The values of a GridField at the points x ([n, 1]), broadcasting a 0-dim result.
Vec values_at(const GridField& field, const torch::Tensor& x, double t, const char* what) {
  const int64_t n = x.size(0);
  torch::Tensor v = field(x, t);
  SDEGEN_CHECK(v.defined(), "Fokker-Planck: the ", what,
               " returned an undefined tensor at t = ", t);
  SDEGEN_CHECK(v.numel() == n || v.numel() == 1, "Fokker-Planck: the ", what, " returned shape ",
               v.sizes(), " at t = ", t, " for ", n, " points; expected ", n, " values or one");
  v = v.to(torch::kCPU, torch::kDouble).contiguous().reshape({-1});
  if (v.numel() == 1 && n != 1) v = v.expand({n}).contiguous();
  Vec out(v.data_ptr<double>(), v.data_ptr<double>() + n);
  for (double value : out)
    if (!std::isfinite(value))
      throw NumericError(detail::concat("Fokker-Planck: the ", what, " is not finite at t = ", t,
                                        "; shrink the grid or the time interval"));
  return out;
}

class Stepper {
 public:
  Stepper(const GridField& drift, const GridField& diffusion, const FokkerPlanckOptions& options)
      : drift_(drift), diffusion_(diffusion), options_(options), dx_(options.grid.dx()) {
    const Vec centres = options.grid.centres(), faces = options.grid.faces();
    // Interior faces only: the walls carry no flux, so the drift there is never needed.
    const Vec inner(faces.begin() + 1, faces.end() - 1);
    centres_ = torch::tensor(centres, torch::kDouble).reshape({-1, 1});
    faces_ = torch::tensor(inner, torch::kDouble).reshape({-1, 1});
  }

  Coefficients evaluate(double t) {
    ++evaluations;
    Coefficients c;
    c.t = t;
    if (faces_.size(0) > 0) c.f_faces = values_at(drift_, faces_, t, "drift");
    const Vec sigma = values_at(diffusion_, centres_, t, "diffusion");
    c.d_centres.resize(sigma.size());
    for (size_t i = 0; i < sigma.size(); ++i) c.d_centres[i] = 0.5 * sigma[i] * sigma[i];
    for (double f : c.f_faces) c.f_max = std::max(c.f_max, std::abs(f));
    for (double d : c.d_centres) c.d_max = std::max(c.d_max, d);
    if (!std::isfinite(c.d_max))
      throw NumericError(detail::concat("Fokker-Planck: sigma^2 / 2 overflows at t = ", t));
    return c;
  }

  // One Strang step of length dt from a to b (b.t = a.t + dt).
  void step(Vec& p, const Coefficients& a, const Coefficients& b, double dt) {
    diffuse(p, a, 0.5 * dt);
    advect(p, a, b, dt);
    diffuse(p, b, 0.5 * dt);
  }

  int64_t evaluations = 0;
  int64_t diffusion_substeps = 0;

 private:
  // Limited slope of cell i (zero in the end cells, which see only one neighbour).
  double slope(const Vec& p, size_t i) const {
    if (i == 0 || i + 1 == p.size()) return 0.0;
    const double l = p[i] - p[i - 1], r = p[i + 1] - p[i];
    if (l * r <= 0.0) return 0.0;
    if (options_.limiter == SlopeLimiter::Minmod) return l > 0 ? std::min(l, r) : std::max(l, r);
    return 2.0 * l * r / (l + r);  // van Leer: the harmonic mean
  }

  // rate = -d(f p)/dx by upwind fluxes of the limited reconstruction; zero flux at the walls.
  void advection_rate(const Vec& p, const Vec& f, Vec& rate) {
    const size_t n = p.size();
    slopes_.resize(n);
    for (size_t i = 0; i < n; ++i) slopes_[i] = slope(p, i);
    std::fill(rate.begin(), rate.end(), 0.0);
    for (size_t i = 0; i + 1 < n; ++i) {  // face between cells i and i + 1
      const double v = f[i];
      const double flux =
          v > 0 ? v * (p[i] + 0.5 * slopes_[i]) : v * (p[i + 1] - 0.5 * slopes_[i + 1]);
      rate[i] -= flux / dx_;
      rate[i + 1] += flux / dx_;
    }
  }

  // SSP-RK2 (Heun): a convex combination of two forward Euler steps, so it keeps p >= 0 when
  // each does (Courant number <= 1/2 for the limited reconstruction).
  void advect(Vec& p, const Coefficients& a, const Coefficients& b, double dt) {
    if (a.f_max == 0.0 && b.f_max == 0.0) return;
    const size_t n = p.size();
    rate_.resize(n);
    stage_.resize(n);
    advection_rate(p, a.f_faces, rate_);
    for (size_t i = 0; i < n; ++i) stage_[i] = p[i] + dt * rate_[i];
    advection_rate(stage_, b.f_faces, rate_);
    for (size_t i = 0; i < n; ++i) p[i] = 0.5 * p[i] + 0.5 * (stage_[i] + dt * rate_[i]);
  }

  // Crank-Nicolson for dp/dt = d^2(D p)/dx^2 with D frozen, in substeps with D h / dx^2 <= 1:
  // then both the explicit half and the inverse of the implicit half (an M-matrix) keep p >= 0,
  // and each column of the operator sums to zero, so mass is preserved.
  void diffuse(Vec& p, const Coefficients& c, double h) {
    if (c.d_max == 0.0 || h <= 0.0) return;
    const size_t n = p.size();
    const double number = c.d_max * h / (dx_ * dx_);  // the diffusion number of the half step
    if (number > 1e8)
      throw NumericError(detail::concat("Fokker-Planck: the diffusion at t = ", c.t,
                                        " (D = ", c.d_max,
                                        ") needs over 1e8 substeps; lower --max-dt or "
                                        "use fewer --cells"));
    const int64_t substeps =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(number * (1 - 1e-12))));
    const double k = h / static_cast<double>(substeps) / (2.0 * dx_ * dx_);
    const Vec& d = c.d_centres;
    // Thomas factorisation of I - k L, with L the tridiagonal operator (L q)_i =
    // D_{i+1} q_{i+1} - 2 D_i q_i + D_{i-1} q_{i-1} less the terms through the walls.
    upper_.assign(n, 0.0);
    denom_.assign(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      const double neighbours = (i > 0) + (i + 1 < n);
      const double diag = 1.0 + k * neighbours * d[i];
      const double lower = i > 0 ? -k * d[i - 1] : 0.0;
      denom_[i] = diag - (i > 0 ? lower * upper_[i - 1] : 0.0);
      upper_[i] = i + 1 < n ? -k * d[i + 1] / denom_[i] : 0.0;
    }
    rhs_.resize(n);
    for (int64_t s = 0; s < substeps; ++s) {
      for (size_t i = 0; i < n; ++i) {
        double lp = 0.0;
        if (i > 0) lp += d[i - 1] * p[i - 1] - d[i] * p[i];
        if (i + 1 < n) lp += d[i + 1] * p[i + 1] - d[i] * p[i];
        rhs_[i] = p[i] + k * lp;
      }
      for (size_t i = 0; i < n; ++i)
        rhs_[i] = (rhs_[i] + (i > 0 ? k * d[i - 1] * rhs_[i - 1] : 0.0)) / denom_[i];
      p[n - 1] = rhs_[n - 1];
      for (size_t i = n - 1; i-- > 0;) p[i] = rhs_[i] - upper_[i] * p[i + 1];
    }
    diffusion_substeps += substeps;
  }

  const GridField& drift_;
  const GridField& diffusion_;
  const FokkerPlanckOptions& options_;
  double dx_;
  torch::Tensor centres_, faces_;
  Vec slopes_, rate_, stage_, upper_, denom_, rhs_;
};

void check_input(const Vec& p0, double t0, double t1, const FokkerPlanckOptions& o,
                 const Vec& times) {
  o.grid.validate();
  SDEGEN_CHECK(std::isfinite(t0) && std::isfinite(t1) && t0 <= t1,
               "Fokker-Planck needs finite times t0 <= t1, got t0 = ", t0, ", t1 = ", t1);
  SDEGEN_CHECK(static_cast<int64_t>(p0.size()) == o.grid.cells,
               "Fokker-Planck: initial density has ", p0.size(), " values for ", o.grid.cells,
               " cells");
  for (size_t i = 0; i < p0.size(); ++i)
    SDEGEN_CHECK(std::isfinite(p0[i]) && p0[i] >= 0.0,
                 "Fokker-Planck: initial density must be finite and >= 0, got ", p0[i],
                 " in cell ", i);
  SDEGEN_CHECK(std::isfinite(o.cfl) && o.cfl > 0.0 && o.cfl <= 1.0,
               "Fokker-Planck: cfl must be in (0, 1], got ", o.cfl);
  SDEGEN_CHECK(o.max_dt > 0.0, "Fokker-Planck: max_dt must be > 0, got ", o.max_dt);
  SDEGEN_CHECK(o.max_steps > 0, "Fokker-Planck: max_steps must be > 0, got ", o.max_steps);
  for (size_t k = 0; k < times.size(); ++k) {
    SDEGEN_CHECK(times[k] >= t0 && times[k] <= t1, "Fokker-Planck: output time ", times[k],
                 " is outside [", t0, ", ", t1, "]");
    SDEGEN_CHECK(k == 0 || times[k] > times[k - 1],
                 "Fokker-Planck: output times must be strictly increasing, but ", times[k],
                 " follows ", times[k - 1]);
  }
}

}  // namespace

FokkerPlanckResult solve_fokker_planck(const GridField& drift, const GridField& diffusion,
                                       const Vec& p0, double t0, double t1,
                                       const FokkerPlanckOptions& options) {
  SDEGEN_CHECK(drift != nullptr && diffusion != nullptr,
               "Fokker-Planck needs both a drift and a diffusion function");
  const Vec times = options.times.empty() ? Vec{t1} : options.times;
  check_input(p0, t0, t1, options, times);
  const double dx = options.grid.dx();

  FokkerPlanckResult result;
  result.x = options.grid.centres();
  result.dx = dx;
  result.times = times;
  const auto record = [&](const Vec& p) {
    double mass = 0.0;
    for (double v : p) mass += v;
    result.density.push_back(p);
    result.mass.push_back(mass * dx);
  };

  Stepper stepper(drift, diffusion, options);
  Vec p = p0;
  Coefficients now = stepper.evaluate(t0);
  for (double target : times) {
    while (now.t < target) {
      if (result.steps >= options.max_steps)
        throw NumericError(
            detail::concat("Fokker-Planck: maximum number of steps (", options.max_steps,
                           ") reached at t = ", now.t, " before t = ", target,
                           "; raise --max-steps, use fewer --cells or a lower --cfl"));
      const double left = target - now.t;
      double dt = std::min(options.max_dt, options.cfl * dx / std::max(now.f_max, 1e-300));
      // Land on the output time without leaving a sliver of a step.
      if (dt >= left)
        dt = left;
      else if (dt > 0.5 * left)
        dt = 0.5 * left;
      Coefficients next;
      for (int tries = 0;; ++tries) {
        next = stepper.evaluate(dt == left ? target : now.t + dt);
        if (next.f_max * dt <= 1.25 * options.cfl * dx) break;
        if (tries >= 50)
          throw NumericError(detail::concat("Fokker-Planck: no step from t = ", now.t,
                                            " keeps the Courant number bounded; the drift grows "
                                            "without bound there"));
        ++result.rejected;
        dt = options.cfl * dx / next.f_max;
      }
      stepper.step(p, now, next, dt);
      for (double v : p)
        if (!std::isfinite(v))
          throw NumericError(detail::concat("Fokker-Planck: the density became non-finite at t = ",
                                            next.t, "; check the drift and diffusion there"));
      now = std::move(next);
      ++result.steps;
    }
    record(p);
  }
  result.evaluations = stepper.evaluations;
  result.diffusion_substeps = stepper.diffusion_substeps;
  return result;
}

FokkerPlanckResult solve_fokker_planck(const GenerativeSde& sde, const Vec& p0, double t0,
                                       double t1, const FokkerPlanckOptions& options) {
  const GridField drift = [&sde](const torch::Tensor& x, double t) { return sde.drift(x, t); };
  const GridField diffusion = [&sde](const torch::Tensor& x, double t) {
    return sde.diffusion(x, t);
  };
  return solve_fokker_planck(drift, diffusion, p0, t0, t1, options);
}

}  // namespace sdegen
