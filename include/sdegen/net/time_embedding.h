#pragma once
// Time embeddings: t of shape [batch] (t in [0, 1]) -> features of shape [batch, dim()].
//   raw         t itself, one feature (the paper's reference nets: [x, t] -> 64 -> 64 -> 1)
//   sinusoidal  [sin(f_k t), cos(f_k t)], f_k geometric from 1 to max_frequency (transformer)
//   fourier     [sin(2 pi B_k t), cos(2 pi B_k t)], B_k ~ N(0, scale^2) drawn once at
//               construction and kept as a registered buffer, so torch::save records it
// Every embedding derives from TimeEmbeddingImpl, so a network holds any of them as a
// TimeEmbedding and calls it without type erasure beyond one virtual call.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sdegen {

class TimeEmbeddingImpl : public torch::nn::Module {
 public:
  // t: [batch] -> [batch, dim()], in t's dtype and on t's device.
  virtual torch::Tensor forward(const torch::Tensor& t) = 0;
  // d forward / dt: [batch, dim()], in closed form (for networks' time derivatives).
  virtual torch::Tensor derivative(const torch::Tensor& t) = 0;
  virtual int64_t dim() const = 0;
};
TORCH_MODULE(TimeEmbedding);

class RawTimeEmbeddingImpl : public TimeEmbeddingImpl {
 public:
  torch::Tensor forward(const torch::Tensor& t) override;
  torch::Tensor derivative(const torch::Tensor& t) override;
  int64_t dim() const override { return 1; }
  void pretty_print(std::ostream& stream) const override;
};
TORCH_MODULE(RawTimeEmbedding);

struct SinusoidalTimeEmbeddingOptions {
  /* implicit */ SinusoidalTimeEmbeddingOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);                    // even, >= 2: dim / 2 frequencies
  TORCH_ARG(double, max_frequency) = 1000.0;  // >= 1; t in [0, 1] sees 1 ... 1000 rad per unit
};

class SinusoidalTimeEmbeddingImpl : public TimeEmbeddingImpl {
 public:
  explicit SinusoidalTimeEmbeddingImpl(const SinusoidalTimeEmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& t) override;
  torch::Tensor derivative(const torch::Tensor& t) override;
  int64_t dim() const override { return options.dim(); }
  void pretty_print(std::ostream& stream) const override;

  SinusoidalTimeEmbeddingOptions options;
  torch::Tensor frequencies;  // [dim / 2] buffer, f_k = max_frequency^(k / (dim/2 - 1))
};
TORCH_MODULE(SinusoidalTimeEmbedding);

struct FourierTimeEmbeddingOptions {
  /* implicit */ FourierTimeEmbeddingOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);        // even, >= 2: dim / 2 random frequencies
  TORCH_ARG(double, scale) = 16.0;  // > 0: standard deviation of B (score-SDE's default)
};

class FourierTimeEmbeddingImpl : public TimeEmbeddingImpl {
 public:
  explicit FourierTimeEmbeddingImpl(const FourierTimeEmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& t) override;
  torch::Tensor derivative(const torch::Tensor& t) override;
  int64_t dim() const override { return options.dim(); }
  void pretty_print(std::ostream& stream) const override;

  FourierTimeEmbeddingOptions options;
  torch::Tensor B;  // [dim / 2] buffer "B", drawn from N(0, scale^2) with the global generator
};
TORCH_MODULE(FourierTimeEmbedding);

// Settings for the factory; a field the named embedding does not use is ignored
// (raw uses none of them).
struct TimeEmbeddingOptions {
  TORCH_ARG(int64_t, dim) = 16;
  TORCH_ARG(double, max_frequency) = 1000.0;  // sinusoidal
  TORCH_ARG(double, fourier_scale) = 16.0;    // fourier
};

std::vector<std::string> time_embedding_names();  // "raw", "sinusoidal", "fourier"
// An unknown name throws InvalidArgument listing the valid ones; options out of range throw
// naming the option.
TimeEmbedding make_time_embedding(const std::string& name, const TimeEmbeddingOptions& options = {});

}  // namespace sdegen
