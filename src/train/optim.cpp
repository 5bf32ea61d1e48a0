#include "sdegen/train/optim.h"

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "sdegen/core/tensor.h"

namespace sdegen {
namespace {

// torch::optim keys its state by the parameter's TensorImpl: as its printed address in
// LibTorch 1.x, as the pointer itself in 2.x.
template <class Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

struct Hyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;  // AdamW
};

template <class Options>
Hyper hyper(const torch::optim::OptimizerOptions& base, bool decoupled) {
  const auto& o = static_cast<const Options&>(base);
  return {o.lr(), std::get<0>(o.betas()), std::get<1>(o.betas()), o.eps(), o.weight_decay(), decoupled};
}

// The state torch would create at a parameter's first step.
template <class State>
State& state_of(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  auto& states = optimizer.state();
  const auto key = state_key(states, p);
  auto it = states.find(key);
  if (it == states.end()) {
    auto fresh = std::make_unique<State>();
    fresh->step(0);
    fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    it = states.emplace(key, std::move(fresh)).first;
  }
  return static_cast<State&>(*it->second);
}

template <class State>
bool state_usable(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  auto& states = optimizer.state();
  const auto it = states.find(state_key(states, p));
  if (it == states.end()) return true;
  const auto& s = static_cast<const State&>(*it->second);
  return is_raw_double(s.exp_avg()) && is_raw_double(s.exp_avg_sq());
}

template <class State>
void update(State& s, const torch::Tensor& p, const Hyper& h) {
  s.step(s.step() + 1);
  const double bc1 = 1.0 - std::pow(h.beta1, static_cast<double>(s.step()));
  const double bc2 = 1.0 - std::pow(h.beta2, static_cast<double>(s.step()));
  const double step_size = h.lr / bc1, root_bc2 = std::sqrt(bc2);
  double* P = p.data_ptr<double>();
  const double* G = p.grad().data_ptr<double>();
  double* M = s.exp_avg().template data_ptr<double>();
  double* V = s.exp_avg_sq().template data_ptr<double>();
  const int64_t n = p.numel();
  const double shrink = h.decoupled ? 1.0 - h.lr * h.weight_decay : 1.0;
  const double l2 = h.decoupled ? 0.0 : h.weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    if (h.decoupled && h.weight_decay != 0.0) P[i] *= shrink;
    const double g = l2 != 0.0 ? G[i] + l2 * P[i] : G[i];
    M[i] = M[i] * h.beta1 + (1.0 - h.beta1) * g;
    V[i] = V[i] * h.beta2 + (1.0 - h.beta2) * g * g;
    P[i] += -step_size * M[i] / (std::sqrt(V[i]) / root_bc2 + h.eps);
  }
}

template <class Options, class State>
bool fused_step(torch::optim::Optimizer& optimizer, bool decoupled) {
  for (auto& group : optimizer.param_groups()) {
    if (static_cast<const Options&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params())
      if (p.grad().defined() && (!is_raw_double(p) || !is_raw_double(p.grad()) || !state_usable<State>(optimizer, p))) return false;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    const Hyper h = hyper<Options>(group.options(), decoupled);
    for (const auto& p : group.params())
      if (p.grad().defined()) update(state_of<State>(optimizer, p), p, h);
  }
  return true;
}

template <class State>
std::string state_problem(torch::optim::Optimizer& optimizer) {
  auto& states = optimizer.state();
  int64_t index = 0;
  for (auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      const auto it = states.find(state_key(states, p));
      const std::string which = "the optimiser state of parameter " + std::to_string(index++);
      if (it == states.end()) continue;  // no step taken yet for this one
      const auto* s = dynamic_cast<const State*>(it->second.get());
      if (s == nullptr) return which + " is not an Adam state";
      if (s->step() < 0) return which + " has a negative step count";
      for (const torch::Tensor& m : {s->exp_avg(), s->exp_avg_sq(), s->max_exp_avg_sq()}) {
        if (!m.defined()) continue;
        std::ostringstream shape;
        if (m.sizes() != p.sizes() || m.scalar_type() != p.scalar_type()) {
          shape << which << " has a moment of " << m.scalar_type() << m.sizes() << " for a parameter of "
                << p.scalar_type() << p.sizes();
          return shape.str();
        }
        if (!all_finite(m)) return which + " holds NaN or infinite moments";
      }
    }
  }
  return "";
}

}  // namespace

std::string optimizer_state_problem(torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<torch::optim::AdamW*>(&optimizer)) return state_problem<torch::optim::AdamWParamState>(optimizer);
  if (dynamic_cast<torch::optim::Adam*>(&optimizer)) return state_problem<torch::optim::AdamParamState>(optimizer);
  return "";
}

void optimizer_step(torch::optim::Optimizer& optimizer) {
  bool done = false;
  if (dynamic_cast<torch::optim::AdamW*>(&optimizer))
    done = fused_step<torch::optim::AdamWOptions, torch::optim::AdamWParamState>(optimizer, true);
  else if (dynamic_cast<torch::optim::Adam*>(&optimizer))
    done = fused_step<torch::optim::AdamOptions, torch::optim::AdamParamState>(optimizer, false);
  if (!done) optimizer.step();
}

double clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  bool all_raw = true, any = false;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    any = true;
    all_raw = all_raw && is_raw_double(p.grad());
  }
  if (!any) return 0.0;
  double norm = 0.0;
  if (all_raw) {
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      const double* g = p.grad().data_ptr<double>();
      for (int64_t i = 0, n = p.grad().numel(); i < n; ++i) norm += g[i] * g[i];
    }
    norm = std::sqrt(norm);
  } else {
    std::vector<torch::Tensor> norms;
    for (const auto& p : params)
      if (p.grad().defined()) norms.push_back(p.grad().norm());
    norm = torch::stack(norms).norm().item<double>();
  }
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

}  // namespace sdegen
