#include "sdegen/train/recipe.h"

#include <algorithm>

#include "sdegen/core/check.h"

namespace sdegen {

int64_t validation_time_samples(int64_t validation_rows) {
  SDEGEN_CHECK(validation_rows >= 1, "validation needs at least one row, got ", validation_rows);
  return std::clamp<int64_t>((4096 + validation_rows - 1) / validation_rows, 1, 16);
}

Recipe recommended_recipe(const std::string& kind, int64_t rows, int64_t dim) {
  check_name("model", kind, {"sde", "ode", "flow", "diffusion", "score", "vdm"});
  SDEGEN_CHECK(rows >= 1 && dim >= 1, "a recipe needs rows >= 1 and dim >= 1, got ", rows, " and ", dim);
  Recipe r;
  TrainOptions& o = r.options;
  o.lr(2e-3).decay("cosine");
  // The most steps a model gets, from a minute of fused steps on 2 cores: enough for laplace5
  // (1000 rows, 5000 epochs of 8 batches); fewer rows get no more than those 5000 epochs, since
  // validation ends a run once it overfits anyway.
  int64_t most = 40000;
  if (kind == "ode") {
    // Each step backpropagates through a whole solve: 20 rk4 steps (80 evaluations) instead of
    // the reference's 100 midpoint steps (200) keep a fused step near 40 ms: ~60 s on laplace5.
    r.model = {{"steps", 20}, {"solver", "rk4"}};
    most = 1500;
  } else if (kind == "sde") {
    // ~1 ms per fused step at batch 125: about a minute.
    most = 60000;
  } else {
    // One cheap regression per step: a wider net and slower time features fit the cusps;
    // ~1 ms per fused step, under a minute.
    r.model = {{"net", {{"width", 128}, {"fourier_scale", 1.0}}}};
  }
  // The first layer's initial scale (MlpOptions::x_init_scale): the factory's 14 resolves sharp
  // low-dimensional densities and is kept up to 2-D, where it was measured no worse (moons,
  // pinwheel, 8gaussians within 0.01 nats of scale 1) or better (checkerboard -3.69 against
  // -3.78; laplace5 -3.03 against -3.08). From 3-D on it starts the net rough in every direction at
  // once and overfits a table: flow's held-out log-likelihood with scale 1 against 14 was iris
  // -1.97 / -2.00, wine -18.4 / -21.0, diabetes -26.7 / -28.0, boston -26.1 / -27.7, breast cancer
  // 37.6 / 34.0 (scripts/tables.sh data, 2026-12-04).
  if (dim >= 3) r.model["net"]["x_init_scale"] = 1.0;
  // Models with a probability flow are judged by the likelihood held-out figures report (it chose
  // better weights than the ELBO on wine: -18.4 against -21.8, and as good elsewhere); the sde
  // model has no flow, and the ode model's ELBO is its likelihood.
  r.validation = (kind == "sde" || kind == "ode") ? "nelbo" : "nll";
  const int64_t batches_per_epoch = (rows + o.batch() - 1) / o.batch();
  const int64_t epochs = kind == "ode" ? 190 : 5000;
  o.steps(std::clamp<int64_t>(epochs * batches_per_epoch, std::min<int64_t>(most, 1000), most));
  o.val_every(std::max<int64_t>(1, o.steps() / kValidationsPerRun));
  // A quarter of the run without a better validation figure: the cosine schedule's late,
  // small steps rarely recover from that.
  o.patience(kValidationsPerRun / 4);
  return r;
}

}  // namespace sdegen
