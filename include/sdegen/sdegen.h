#pragma once
// sdegen's API for programs that use a trained model: load a run directory that `sdegen train`
// wrote, draw samples, compute log-likelihoods. This header and the types it names are the
// stable surface; the rest of include/sdegen is the library's working interior and may change.
//
//   find_package(sdegen REQUIRED)                        # CMake, after cmake --install
//   target_link_libraries(app PRIVATE sdegen::sdegen)
//
//   const sdegen::Model model = sdegen::Model::load("runs/table");
//   torch::Tensor x = model.sample(100);                  // [100, d], the table's units
//   torch::Tensor logp = model.log_likelihood(x);         // [100], nats
//
// A model trained with --condition-columns generates its other columns given observed values
// (SampleOptions::condition); fast_sampler() gives the batch-1 sampler a control loop calls.
//
// Concurrency: a Model is immutable once loaded. sample() and log_likelihood() may be called from
// several threads at once on one Model (tests/api/model_api_test.cpp runs them so and compares
// with one thread). Each sample() draws its prior points from a generator of its own, seeded by
// SampleOptions::seed, so the deterministic (ODE) solvers give the same samples for the same seed
// in any thread; the stochastic solvers draw their noise from LibTorch's global generator, which
// is thread-safe but shared, so concurrent stochastic calls are not reproducible. Each call runs
// on LibTorch's intra-op threads (torch::set_num_threads); for many small concurrent calls, one
// thread each is usually fastest. All of this holds on a GPU too (Model::load's device).
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sdegen {

struct SampleOptions {
  // A solver of `sdegen sample --solver` (heun, rk4, dpm++2m, ..., euler-maruyama, ...), on
  // `steps` steps; the empty string: dopri5 for models with a probability flow, euler-maruyama
  // otherwise.
  std::string solver = "heun";
  int steps = 20;
  // Class-conditional models: the class of every sample (-1: unconditional, the null label), and
  // the classifier-free guidance weight w (0: unconditional, 1: conditional, > 1: sharper).
  int64_t label = -1;
  double guidance = 1.0;
  uint64_t seed = 0;  // of this call's prior draws
  // Tables trained with --condition-columns: the observed values, in data units and in the order
  // of Model::condition_columns(), shared by every sample (empty: the unconditional model). The
  // guidance weight applies to it as to a label.
  std::vector<double> condition;
};

struct FastSampleOptions {
  std::string solver = "euler";  // euler | heun
  int steps = 10;                // euler: one network evaluation a step; heun: two
  double guidance = 1.0;         // classifier-free guidance weight on the condition
  uint64_t seed = 0;             // of the sampler's own generator of prior draws
};

// A sampler for a control loop: a flow model trained on a table (an MLP predicting the velocity),
// one sample per call, Euler or Heun on raw buffers with nothing allocated per call. It holds the
// model and a generator of its own; use one per thread. A copy shares the original's buffers and
// generator (it is a handle, not a second sampler): call Model::fast_sampler() once per thread.
class ChunkSampler {
 public:
  int64_t dim() const;            // generated values per sample (an action chunk: H x action dim)
  int64_t condition_dim() const;  // observed values per call (0: none)
  int evaluations() const;        // network evaluations per call
  // Writes one sample [dim()] in data units, given the observation [condition_dim()] in data units
  // (nullptr: the unconditional model). InvalidArgument for a NaN or infinite observation.
  void sample(const double* observation, double* out);

 private:
  friend class Model;
  struct State;
  explicit ChunkSampler(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

class Model {
 public:
  // The weights training kept (the best validated, else the average, else the last). IoError
  // when run_dir holds no checkpoint, InvalidArgument or IoError naming what is wrong with one
  // that does not load; an autoencoder's run is refused (it samples nothing).
  //
  // device: where the weights live and the solves run: "cpu", or "cuda" / "cuda:N" where LibTorch
  // has CUDA and the GPU is visible (InvalidArgument naming why otherwise). A run trained on either
  // device loads on either. Inputs may be on any device; results come back on the CPU. The prior
  // points are drawn on the CPU and moved, so one seed starts the same solve on every device.
  static Model load(const std::string& run_dir, const std::string& device = "cpu");

  std::string kind() const;            // flow, diffusion, score, vdm, sde, ode, consistency
  std::vector<int64_t> shape() const;  // one sample: {d} for tables, {C, H, W} for images
  int64_t num_classes() const;         // 0: unconditional
  bool is_image() const;
  std::string device() const;  // where it was loaded: "cpu", "cuda:0", ...
  // Tables: the generated columns' names, and those trained with --condition-columns the
  // conditioning columns' names (empty: none).
  std::vector<std::string> columns() const;
  std::vector<std::string> condition_columns() const;

  // n samples [n, *shape()]: float64 in the training data's units for tables and vectors; float32
  // pixels in [-1, 1] for images (a latent model's decoded). NumericError when the solve failed.
  torch::Tensor sample(int64_t n, const SampleOptions& options = {}) const;

  // log p(x) in nats for each row of points [n, *shape()] (data units; images: pixels in
  // [-1, 1]) through the model's probability-flow ODE, solved adaptively. NumericError when the
  // solve failed or diverged for any row (the figure would not be trustworthy); InvalidArgument
  // for a model without a probability flow (sde, consistency) or a latent model. A model with
  // condition columns gives the density of its unconditional model (no observation).
  torch::Tensor log_likelihood(const torch::Tensor& points) const;
  // A model trained with --condition-columns: log p(y | c) in nats for each row of points [n, d]
  // given its observation, a row of observations [n, condition_columns().size()] (data units,
  // finite), through the conditional model's probability flow. InvalidArgument for a model
  // without condition columns or observations of another shape; failures as above.
  torch::Tensor log_likelihood(const torch::Tensor& points, const torch::Tensor& observations) const;

  // The fast sampler of this model (see ChunkSampler); InvalidArgument naming why when the model
  // is not a flow on a table with an MLP, is not on the CPU (the sampler reads raw host buffers),
  // or the options are out of range.
  ChunkSampler fast_sampler(const FastSampleOptions& options = {}) const;

 private:
  friend class ChunkSampler;
  struct State;
  explicit Model(std::shared_ptr<const State> state);
  std::shared_ptr<const State> state_;
};

}  // namespace sdegen
