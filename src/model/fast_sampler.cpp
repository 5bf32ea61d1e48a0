#include "sdegen/model/fast_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

// The model's MLP, once the model is one the fast sampler can run.
MlpImpl& checked_mlp(const AffineModel& model, const FastSamplerOptions& o) {
  SDEGEN_CHECK(model.options().prediction == Prediction::Velocity, "FastSampler: the '", model.kind(),
               "' model predicts ", prediction_name(model.options().prediction),
               "; the fast sampler integrates a velocity (train --model flow)");
  SDEGEN_CHECK(!model.options().precondition, "FastSampler: EDM's preconditioning is not supported");
  auto* mlp = dynamic_cast<MlpImpl*>(&model.net());
  SDEGEN_CHECK(mlp != nullptr, "FastSampler: the model's network is not an MLP");
  std::string why;
  SDEGEN_CHECK(MlpKernel::supports(*mlp, &why, /*condition_inputs=*/true), "FastSampler: ", why);
  SDEGEN_CHECK(o.solver == "euler" || o.solver == "heun", "FastSampler: solver must be euler or heun, got '",
               o.solver, "'");
  SDEGEN_CHECK(o.steps >= 1, "FastSampler: steps must be >= 1, got ", o.steps);
  SDEGEN_CHECK(o.max_batch >= 1, "FastSampler: max_batch must be >= 1, got ", o.max_batch);
  SDEGEN_CHECK(std::isfinite(o.guidance), "FastSampler: the guidance weight must be finite, got ", o.guidance);
  SDEGEN_CHECK(o.guidance == 1.0 || mlp->condition_dim() > 0, "FastSampler: guidance needs a model with a ",
               "condition vector; use guidance 1");
  SDEGEN_CHECK(o.guidance == 1.0 || model.options().p_uncond > 0, "FastSampler: the model was trained without ",
               "condition dropout (p_uncond 0), so it has no unconditional map to guide by; use guidance 1");
  return *mlp;
}

}  // namespace

FastSampler::FastSampler(const AffineModel& model, FastSamplerOptions options)
    : options_(std::move(options)), kernel_(checked_mlp(model, options_), /*condition_inputs=*/true) {
  dim_ = kernel_.in_dim();
  condition_dim_ = model.condition_dim();
  prior_std_ = model.sde(DiffusionSpec{})->prior_std();
  heun_ = options_.solver == "heun";
  guided_ = options_.guidance != 1.0;
  const int64_t rows = options_.max_batch * (guided_ ? 2 : 1), width = kernel_.condition_width();
  features_.assign(static_cast<size_t>(rows * width), 0.0);  // the null rows stay zero
  input_.assign(static_cast<size_t>(rows * dim_), 0.0);
  times_.assign(static_cast<size_t>(rows), 0.0);
  for (auto* v : {&k1_, &k2_, &stage_}) v->assign(static_cast<size_t>(options_.max_batch * dim_), 0.0);
  // One pass at full size, so the tape's buffers are allocated here rather than in the first call.
  kernel_.forward(input_.data(), times_.data(), rows, {}, tape_, width > 0 ? features_.data() : nullptr);
}

int64_t FastSampler::evaluations() const { return options_.steps * (heun_ ? 2 : 1); }

void FastSampler::velocity(const double* x, double t, int64_t n, double* v) {
  const int64_t rows = guided_ ? 2 * n : n, nd = n * dim_;
  std::fill(times_.begin(), times_.begin() + rows, t);
  const double* in = x;
  if (guided_) {  // the same points twice: with the condition, then with the null condition
    std::memcpy(input_.data(), x, sizeof(double) * static_cast<size_t>(nd));
    std::memcpy(input_.data() + nd, x, sizeof(double) * static_cast<size_t>(nd));
    in = input_.data();
  }
  kernel_.forward(in, times_.data(), rows, {}, tape_, kernel_.condition_width() > 0 ? features_.data() : nullptr);
  const double* out = tape_.output();
  if (!guided_) {
    std::memcpy(v, out, sizeof(double) * static_cast<size_t>(nd));
    return;
  }
  const double w = options_.guidance;
  for (int64_t e = 0; e < nd; ++e) v[e] = out[nd + e] + w * (out[e] - out[nd + e]);
}

void FastSampler::sample(const double* x0, const double* condition, int64_t n, double* out) {
  SDEGEN_CHECK(n >= 1 && n <= options_.max_batch, "FastSampler: n must be in [1, ", options_.max_batch, "], got ", n);
  const int64_t width = kernel_.condition_width(), nd = n * dim_;
  if (width > 0) {
    // [c * p, p] with p = 1 for an observed condition and 0 (all zeros) for none.
    for (int64_t i = 0; i < n; ++i) {
      double* f = features_.data() + i * width;
      if (condition == nullptr) {
        std::fill(f, f + width, 0.0);
        continue;
      }
      std::memcpy(f, condition + i * condition_dim_, sizeof(double) * static_cast<size_t>(condition_dim_));
      f[condition_dim_] = 1.0;
    }
  }
  if (out != x0) std::memmove(out, x0, sizeof(double) * static_cast<size_t>(nd));
  const double h = 1.0 / static_cast<double>(options_.steps);
  double* k1 = k1_.data();
  double* k2 = k2_.data();
  double* stage = stage_.data();
  for (int64_t s = 0; s < options_.steps; ++s) {
    // t = s / steps as the time grid computes it (a product, not a running sum).
    const double t = static_cast<double>(s) * h, t_next = static_cast<double>(s + 1) * h;
    velocity(out, t, n, k1);
    if (!heun_) {
      for (int64_t e = 0; e < nd; ++e) out[e] += (t_next - t) * k1[e];
      continue;
    }
    for (int64_t e = 0; e < nd; ++e) stage[e] = out[e] + (t_next - t) * k1[e];
    velocity(stage, t + (t_next - t), n, k2);  // as the Heun stepper (solver/ode.cpp) places it
    for (int64_t e = 0; e < nd; ++e) out[e] += 0.5 * (t_next - t) * (k1[e] + k2[e]);
  }
}

}  // namespace sdegen
