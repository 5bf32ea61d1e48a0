#include "sdegen/sample/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"
#include "sdegen/sample/flow_time.h"
#include "sdegen/solver/multistep.h"

namespace sdegen {
namespace {

using Run = std::function<Solution(const MarginalField&, const torch::Tensor&, const SamplerOptions&,
                                   const Observer&)>;

// What noise a solver draws: none (an ODE solver), the diffusion of the options (the SDE
// solvers), or the noise its own method defines (ddpm, reverse-diffusion, edm), which takes no
// diffusion.
enum class Noise { None, Diffusion, Own };

struct Entry {
  Noise noise;
  Run run;
};

// Sampling runs forward within the model's time: t = 0 is the prior, t = 1 the data; outside it
// the schedules are undefined (and NaN compares false, so it is refused too).
void check_time_span(const SamplerOptions& o) {
  SDEGEN_CHECK(0.0 <= o.t0 && o.t0 < o.t1 && o.t1 <= 1.0,
               "sampling runs forward in time within [0, 1] (0: the prior, 1: the data): need 0 <= t0 < t1 <= 1, got t0 = ",
               o.t0, " and t1 = ", o.t1);
}

bool is_adams(const std::string& name) { return name == "abm3" || name == "abm4"; }

// pc with the reverse-diffusion predictor steps the schedule's forward chain as reverse-diffusion
// does: it draws that chain's noise and divides by a(t).
bool reverse_diffusion_pc(const SamplerOptions& o) {
  return o.solver == "pc" && o.pc.predictor == "reverse-diffusion";
}

bool is_exponential(const std::string& name) {
  return name == "ddim" || name == "dpm++2m" || name == "dpm++3m" || name == "unipc";
}

// The fixed-grid ODE solvers by name (Runge-Kutta steppers and the Adams methods), as a solve
// of any field on any grid: schedule time and flow time run the same code.
GridSolve grid_solver(const std::string& name) {
  if (is_adams(name)) {
    AdamsOptions a;
    a.order = name == "abm3" ? 3 : 4;
    return [a](const VectorField& f, const torch::Tensor& x0, const TimeGrid& g, const Observer& obs) {
      return solve_ode_adams(f, x0, g, a, obs);
    };
  }
  std::shared_ptr<const OdeStepper> stepper = make_ode_stepper(name);
  return [stepper](const VectorField& f, const torch::Tensor& x0, const TimeGrid& g, const Observer& obs) {
    return solve_ode(f, x0, g, *stepper, obs);
  };
}

Solution run_fixed_ode(const std::string& name, const MarginalField& m, const torch::Tensor& x0,
                       const SamplerOptions& o, const Observer& obs) {
  const TimeGrid grid = sampler_grid(m.schedule(), o);
  if (sampler_time(o) == "flow") return solve_in_flow_time(m, x0, grid, grid_solver(name), obs);
  // A field that runs on raw buffers skips every tensor operation of the solve (what bounds a
  // small network's latency); the same steps either way. Runge-Kutta steppers only.
  const auto rk = fixed_ode_solver_names();
  if (std::find(rk.begin(), rk.end(), name) != rk.end() && is_cpu_double(x0) && x0.dim() == 2)
    if (const RawField raw = m.raw_velocity()) return solve_ode_raw(raw, x0, grid, name, obs);
  return grid_solver(name)(probability_flow(m), x0, grid, obs);
}

std::vector<std::string> fixed_grid_ode_names() {
  std::vector<std::string> names = fixed_ode_solver_names();
  names.push_back("abm3");
  names.push_back("abm4");
  return names;
}

// The SDE family's drift and diffusion for a marginal field (MarginalSde), as solver callbacks.
struct SdeFields {
  MarginalSde sde;
  VectorField drift() const {
    return [this](double t, const torch::Tensor& x) { return sde.drift(x, t); };
  }
  DiffusionField diffusion() const {
    return [this](double t, const torch::Tensor& x) { return sde.diffusion(x, t); };
  }
};

std::shared_ptr<const MarginalField> borrow(const MarginalField& m) {
  return std::shared_ptr<const MarginalField>(&m, [](const MarginalField*) {});
}

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> r = [] {
    std::map<std::string, Entry> m;
    for (const auto& name : fixed_grid_ode_names())
      m[name] = {Noise::None, [name](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                               const Observer& obs) { return run_fixed_ode(name, f, x0, o, obs); }};
    m["dopri5"] = {Noise::None, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                             const Observer& obs) {
                     return solve_ode_adaptive(probability_flow(f), x0, o.t0, o.t1, o.adaptive, obs);
                   }};
    m["euler-maruyama"] = {Noise::Diffusion, [](const MarginalField& f, const torch::Tensor& x0,
                                    const SamplerOptions& o, const Observer& obs) {
                             const SdeFields s{MarginalSde(borrow(f), o.diffusion)};
                             return solve_sde_euler_maruyama(s.drift(), s.diffusion(), x0,
                                                             sampler_grid(f.schedule(), o), obs);
                           }};
    m["pc"] = {Noise::Diffusion, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                                    const Observer& obs) {
                 const SdeFields s{MarginalSde(borrow(f), o.diffusion)};
                 const VectorField score = [&f](double t, const torch::Tensor& x) {
                   return f.predict(x, t, Prediction::Score);
                 };
                 const TimeGrid grid = sampler_grid(f.schedule(), o);
                 if (o.pc.predictor == "reverse-diffusion")
                   return solve_pc(reverse_diffusion_predictor(f, grid), score, x0, grid, o.pc, obs);
                 return solve_sde_pc(s.drift(), s.diffusion(), score, x0, grid, o.pc, obs);
               }};
    m["ddpm"] = {Noise::Own, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                                const Observer& obs) {
                   return solve_ddpm(f, x0, sampler_grid(f.schedule(), o), obs);
                 }};
    m["reverse-diffusion"] = {Noise::Own, [](const MarginalField& f, const torch::Tensor& x0,
                                             const SamplerOptions& o, const Observer& obs) {
                                return solve_reverse_diffusion(f, x0, sampler_grid(f.schedule(), o), obs);
                              }};
    m["edm"] = {Noise::Own, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                               const Observer& obs) {
                  return solve_edm(f, x0, sampler_grid(f.schedule(), o), o.edm, obs);
                }};
    m["ddim"] = {Noise::None, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                           const Observer& obs) {
                   return solve_ddim(f, x0, sampler_grid(f.schedule(), o), obs);
                 }};
    m["dpm++2m"] = {Noise::None, [](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                              const Observer& obs) {
                      return solve_dpmpp_2m(f, x0, sampler_grid(f.schedule(), o), obs);
                    }};
    for (const std::string name : {"dpm++3m", "unipc"}) {
      MultistepOptions ms;
      ms.order = 3;
      ms.corrector = name == "unipc";
      m[name] = {Noise::None, [ms](const MarginalField& f, const torch::Tensor& x0, const SamplerOptions& o,
                             const Observer& obs) {
                   return solve_exponential_multistep(f, x0, sampler_grid(f.schedule(), o), ms, obs);
                 }};
    }
    return m;
  }();
  return r;
}

}  // namespace

Solution sample_sde(const GenerativeSde& sde, const torch::Tensor& x0, const SamplerOptions& o,
                    const Observer& observer) {
  check_name("solver", o.solver, sampler_names());
  SDEGEN_CHECK(o.solver != "pc" && !is_exponential(o.solver) && registry().at(o.solver).noise != Noise::Own,
               "solver '", o.solver,
               "' needs a model of predictions (score or data); this model has a free drift: use one of ",
               join(fixed_grid_ode_names()), ", dopri5 or euler-maruyama");
  SDEGEN_CHECK(o.grid.empty() || o.grid == "uniform", "a model with a free drift has no schedule to place a '",
               o.grid, "' grid on; use the uniform grid");
  SDEGEN_CHECK(o.time.empty() || o.time == "schedule", "a model with a free drift has no schedule to define '",
               o.time, "' time by; use schedule time");
  check_time_span(o);
  const VectorField drift = [&sde](double t, const torch::Tensor& x) { return sde.drift(x, t); };
  if (o.solver == "dopri5") return solve_ode_adaptive(drift, x0, o.t0, o.t1, o.adaptive, observer);
  GridOptions g;
  g.t0 = o.t0;
  g.t1 = o.t1;
  const TimeGrid grid = make_time_grid(o.steps, g);
  if (o.solver == "euler-maruyama") {
    const DiffusionField diffusion = [&sde](double t, const torch::Tensor& x) { return sde.diffusion(x, t); };
    return solve_sde_euler_maruyama(drift, diffusion, x0, grid, observer);
  }
  return grid_solver(o.solver)(drift, x0, grid, observer);
}

VectorField probability_flow(const MarginalField& model) {
  return [&model](double t, const torch::Tensor& x) { return model.predict(x, t, Prediction::Velocity); };
}

std::vector<std::string> sampler_names() {
  return {"euler", "midpoint", "heun", "rk4", "abm3", "abm4", "dopri5", "euler-maruyama", "pc",
          "ddim", "dpm++2m", "dpm++3m", "unipc", "ddpm", "reverse-diffusion", "edm"};
}

std::vector<std::string> sampling_time_names() { return {"schedule", "flow"}; }

std::string sampler_time(const SamplerOptions& o) {
  if (!o.time.empty()) return o.time;
  return is_adams(o.solver) ? "flow" : "schedule";
}

std::vector<std::string> ode_sampler_names() {
  std::vector<std::string> out;
  for (const auto& n : sampler_names())
    if (registry().at(n).noise == Noise::None) out.push_back(n);
  return out;
}

TimeGrid sampler_grid(const AffineSchedule& schedule, const SamplerOptions& o) {
  const std::string fallback = is_exponential(o.solver) ? "lambda"
                               : is_adams(o.solver)    ? "flow"
                               : o.solver == "edm"     ? "edm"
                                                       : "uniform";
  GridOptions g;
  g.kind = grid_kind_from_name(o.grid.empty() ? fallback : o.grid);
  g.t0 = o.t0;
  g.t1 = o.t1;
  g.rho = o.rho;
  return make_time_grid(o.steps, g, schedule);
}

Solution sample(const MarginalField& model, const torch::Tensor& x0, const SamplerOptions& o,
                const Observer& observer) {
  check_name("solver", o.solver, sampler_names());
  const Entry& e = registry().at(o.solver);
  SDEGEN_CHECK(e.noise != Noise::None || o.diffusion.is_zero(), "solver '", o.solver,
               "' is deterministic and ignores the diffusion; use euler-maruyama or pc for sigma = ",
               diffusion_name(o.diffusion));
  const bool chain = reverse_diffusion_pc(o);
  const char* with_predictor = chain ? "' with the reverse-diffusion predictor" : "'";
  SDEGEN_CHECK((e.noise != Noise::Own && !chain) || o.diffusion.is_zero(), "solver '", o.solver, with_predictor,
               " draws the noise its own method defines and takes no diffusion; use euler-maruyama or pc ",
               "(predictor euler-maruyama) for sigma = ", diffusion_name(o.diffusion));
  SDEGEN_CHECK(o.solver == "edm" || o.edm == EdmOptions(), "churn, s_tmin, s_tmax and s_noise are options of ",
               "the edm solver; solver '", o.solver, "' takes none of them");
  check_name("pc predictor", o.pc.predictor, pc_predictor_names());
  SDEGEN_CHECK(o.solver == "pc" || o.pc.predictor == PcOptions().predictor, "the predictor '", o.pc.predictor,
               "' is an option of the pc solver, not of '", o.solver, "'");
  check_time_span(o);
  if (!o.time.empty()) check_name("sampling time", o.time, sampling_time_names());
  const auto grid_solvers = fixed_grid_ode_names();
  SDEGEN_CHECK(sampler_time(o) == "schedule" ||
                   std::find(grid_solvers.begin(), grid_solvers.end(), o.solver) != grid_solvers.end(),
               "flow time is for the fixed-grid ODE solvers (", join(grid_solvers), "), not '", o.solver, "'");
  if (e.noise == Noise::Diffusion) {
    // Euler-Maruyama and pc draw sigma(t) sqrt(dt) noise at every point but the last.
    const TimeGrid grid = sampler_grid(model.schedule(), o);
    for (size_t i = 0; i + 1 < grid.size(); ++i)
      SDEGEN_CHECK(std::isfinite(diffusion_at(o.diffusion, model.schedule(), grid[i])), "the diffusion sigma = ",
                   diffusion_name(o.diffusion), " is infinite at t = ", grid[i], " under the '",
                   model.schedule().name(), "' schedule (a = 0 there, so sigma^2 = b^2 lambda' is infinite and ",
                   "its integral diverges): no step can start there; start at t0 > 0 or use a constant sigma");
  }
  // The reverse-diffusion step divides by r = a_i / a_{i+1}, edm by a (sigma = b / a): both are
  // the reverse diffusion's infinity at a = 0 in another form.
  const bool edm = o.solver == "edm";
  const bool needs_a = o.solver == "reverse-diffusion" || edm || chain;
  SDEGEN_CHECK(!needs_a || model.schedule().a(o.t0) > 0, "solver '", o.solver, with_predictor,
               edm ? " works in sigma = b / a, which is infinite" : " divides by a(t), which is 0", " at t = ", o.t0,
               " under the '", model.schedule().name(),
               "' schedule (a = 0 there): start at t0 > 0 or use the ve or edm schedule",
               edm ? "" : ", or use ddpm, which starts anywhere");
  return e.run(model, x0, o, observer);
}

}  // namespace sdegen
