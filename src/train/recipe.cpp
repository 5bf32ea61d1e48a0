#include "sdegen/train/recipe.h"

#include "sdegen/core/check.h"

namespace sdegen {

Recipe recommended_recipe(const std::string& kind) {
  check_name("model", kind, {"sde", "ode", "flow", "diffusion", "score", "vdm"});
  Recipe r;
  r.lr = 2e-3;
  r.decay = "cosine";
  if (kind == "ode") {
    // Each step backpropagates through a whole solve: 20 rk4 steps (80 evaluations) instead of
    // the reference's 100 midpoint steps (200) keep a fused step near 40 ms: ~60 s on laplace5.
    r.model = {{"steps", 20}, {"solver", "rk4"}};
    r.steps = 1500;
  } else if (kind == "sde") {
    // ~1 ms per fused step at batch 125: about a minute.
    r.steps = 60000;
  } else {
    // One cheap regression per step: a wider net and slower time features fit the cusps;
    // ~1 ms per fused step, under a minute.
    r.model = {{"net", {{"width", 128}, {"fourier_scale", 1.0}}}};
    r.steps = 40000;
  }
  return r;
}

}  // namespace sdegen
