// Fixed-step explicit Runge-Kutta steppers and the driver that walks them along a time grid.
#include "sdegen/solver/ode.h"

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

using detail::evaluate;

class Euler final : public OdeStepper {
 public:
  std::string name() const override { return "euler"; }
  int order() const override { return 1; }
  int stages() const override { return 1; }
  torch::Tensor step(const VectorField& f, double t, double dt,
                     const torch::Tensor& x) const override {
    return x + evaluate(f, t, x) * dt;
  }
};

// Explicit midpoint: one Euler half step, then the full step with the slope found there.
class Midpoint final : public OdeStepper {
 public:
  std::string name() const override { return "midpoint"; }
  int order() const override { return 2; }
  int stages() const override { return 2; }
  torch::Tensor step(const VectorField& f, double t, double dt,
                     const torch::Tensor& x) const override {
    const torch::Tensor k1 = evaluate(f, t, x);
    return x + evaluate(f, t + dt / 2, x + k1 * (dt / 2)) * dt;
  }
};

// Heun (explicit trapezoid): average of the slopes at both ends of an Euler step.
class Heun final : public OdeStepper {
 public:
  std::string name() const override { return "heun"; }
  int order() const override { return 2; }
  int stages() const override { return 2; }
  torch::Tensor step(const VectorField& f, double t, double dt,
                     const torch::Tensor& x) const override {
    const torch::Tensor k1 = evaluate(f, t, x);
    const torch::Tensor k2 = evaluate(f, t + dt, x + k1 * dt);
    return x + (k1 + k2) * (dt / 2);
  }
};

// The classical fourth-order Runge-Kutta method.
class Rk4 final : public OdeStepper {
 public:
  std::string name() const override { return "rk4"; }
  int order() const override { return 4; }
  int stages() const override { return 4; }
  torch::Tensor step(const VectorField& f, double t, double dt,
                     const torch::Tensor& x) const override {
    const double h = dt / 2;
    const torch::Tensor k1 = evaluate(f, t, x);
    const torch::Tensor k2 = evaluate(f, t + h, x + k1 * h);
    const torch::Tensor k3 = evaluate(f, t + h, x + k2 * h);
    const torch::Tensor k4 = evaluate(f, t + dt, x + k3 * dt);
    return x + (k1 + 2 * k2 + 2 * k3 + k4) * (dt / 6);
  }
};

struct Entry {
  const char* name;
  std::unique_ptr<OdeStepper> (*make)();
};

template <typename T>
std::unique_ptr<OdeStepper> make() {
  return std::make_unique<T>();
}

// The one list of steppers: names and the factory both come from it.
const Entry kSteppers[] = {
    {"euler", make<Euler>}, {"midpoint", make<Midpoint>}, {"heun", make<Heun>}, {"rk4", make<Rk4>}};

}  // namespace

std::vector<std::string> fixed_ode_solver_names() {
  std::vector<std::string> names;
  for (const Entry& e : kSteppers) names.emplace_back(e.name);
  return names;
}

std::unique_ptr<OdeStepper> make_ode_stepper(const std::string& name) {
  check_name("ODE stepper", name, fixed_ode_solver_names());
  for (const Entry& e : kSteppers)
    if (name == e.name) return e.make();
  return nullptr;  // unreachable: check_name refused every other name
}

Solution solve_ode(const VectorField& f, const torch::Tensor& x0, const TimeGrid& grid,
                   const OdeStepper& stepper, const Observer& observer) {
  SDEGEN_CHECK(static_cast<bool>(f), "solve_ode: the vector field is empty");
  const auto step = [&](double t, double t_next, const torch::Tensor& x, int64_t& nfe) {
    nfe += stepper.stages();
    return stepper.step(f, t, t_next - t, x);
  };
  return detail::march(grid, x0, step, observer);
}

}  // namespace sdegen
