#pragma once
// A sampler to embed in a control loop: the probability-flow ODE of a flow model (an affine model
// whose MLP predicts the velocity), integrated by Euler or Heun on a uniform time grid from the
// prior (t = 0) to the data (t = 1), on raw float64 buffers through the MLP's kernel
// (net/mlp_kernel.h), with a condition vector and classifier-free guidance. Every buffer is
// allocated at construction: a call does no tensor work, no allocation and no locking. It computes
// what generate() (model/factory.h) gives with the same solver, steps and uniform grid, which the
// tests check.
#include <cstdint>
#include <string>
#include <vector>

#include "sdegen/model/affine_model.h"
#include "sdegen/net/mlp_kernel.h"

namespace sdegen {

struct FastSamplerOptions {
  std::string solver = "euler";  // euler | heun
  int64_t steps = 10;            // steps of the uniform grid: euler evaluates the net `steps` times, heun twice that
  // Classifier-free guidance weight w (math.md): uncond + w (cond - uncond); 1 is the conditional
  // model (one evaluation per row), otherwise two rows are evaluated per row.
  double guidance = 1.0;
  int64_t max_batch = 1;         // the most rows one call samples
};

class FastSampler {
 public:
  // Refuses a model that is not a float64 CPU flow-type model with an MLP predicting the velocity,
  // an unknown solver, steps < 1, a non-finite guidance, guidance other than 1 for a model trained
  // without condition dropout, and max_batch < 1, naming the problem. The sampler reads the
  // model's weights where they are: keep the model alive and unchanged while it is used.
  FastSampler(const AffineModel& model, FastSamplerOptions options);

  int64_t dim() const { return dim_; }
  int64_t condition_dim() const { return condition_dim_; }
  // The prior's standard deviation: x0 is this times a standard normal draw.
  double prior_std() const { return prior_std_; }
  // Network evaluations per call (rows counted once; with guidance each evaluation has 2 rows per row).
  int64_t evaluations() const;

  // x0 [n, dim]: prior draws in the model's units (prior_std() times standard normal draws);
  // condition [n, condition_dim]: standardised observations, or nullptr for the null condition;
  // out [n, dim] (may alias x0): the samples in the model's (standardised) units. 1 <= n <= max_batch.
  void sample(const double* x0, const double* condition, int64_t n, double* out);

 private:
  // The guided velocity at (x [n, dim], t) into v [n, dim].
  void velocity(const double* x, double t, int64_t n, double* v);

  FastSamplerOptions options_;
  int64_t dim_ = 0, condition_dim_ = 0;
  double prior_std_ = 1.0;
  bool heun_ = false, guided_ = false;
  MlpKernel kernel_;
  MlpTape tape_;
  // The condition's network inputs [rows, condition_dim + 1] ([c * p, p]; the null rows after the
  // conditional ones when guided), the rows' inputs and times, and the solver's stages.
  std::vector<double> features_, input_, times_, k1_, k2_, stage_;
};

}  // namespace sdegen
