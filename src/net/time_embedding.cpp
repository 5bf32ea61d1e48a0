#include "sdegen/net/time_embedding.h"

#include <cmath>

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

constexpr double kTwoPi = 6.28318530717958647692;

void check_embedding_dim(const char* who, int64_t dim) {
  SDEGEN_CHECK(dim >= 2 && dim % 2 == 0, who, ": dim must be even and >= 2 (sin/cos pairs), got ",
               dim);
}

void check_times(const char* who, const torch::Tensor& t) {
  SDEGEN_CHECK(t.defined() && t.dim() == 1, who, " expects t of shape [batch], got ",
               t.defined() ? t.sizes() : torch::IntArrayRef{});
}

// [sin(t f), cos(t f)] for t [batch] and angular frequencies f [k] -> [batch, 2k].
torch::Tensor sin_cos(const torch::Tensor& t, const torch::Tensor& angular) {
  const torch::Tensor phase = torch::outer(t, angular.to(t.dtype()));
  return torch::cat({phase.sin(), phase.cos()}, 1);
}

// d/dt [sin(t f), cos(t f)] = [f cos(t f), -f sin(t f)].
torch::Tensor sin_cos_derivative(const torch::Tensor& t, const torch::Tensor& angular) {
  const torch::Tensor f = angular.to(t.dtype());
  const torch::Tensor phase = torch::outer(t, f);
  return torch::cat({phase.cos() * f, -phase.sin() * f}, 1);
}

}  // namespace

torch::Tensor RawTimeEmbeddingImpl::forward(const torch::Tensor& t) {
  check_times("RawTimeEmbedding", t);
  return t.unsqueeze(1);
}

torch::Tensor RawTimeEmbeddingImpl::derivative(const torch::Tensor& t) {
  check_times("RawTimeEmbedding", t);
  return torch::ones({t.size(0), 1}, t.options());
}

void RawTimeEmbeddingImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::RawTimeEmbedding(dim=1)";
}

SinusoidalTimeEmbeddingImpl::SinusoidalTimeEmbeddingImpl(
    const SinusoidalTimeEmbeddingOptions& options_)
    : options(options_) {
  check_embedding_dim("SinusoidalTimeEmbedding", options.dim());
  SDEGEN_CHECK(std::isfinite(options.max_frequency()) && options.max_frequency() >= 1.0,
               "SinusoidalTimeEmbedding: max_frequency must be finite and >= 1, got ",
               options.max_frequency());
  const int64_t half = options.dim() / 2;
  // Geometric from 1 to max_frequency; a single frequency is 1.
  const torch::Tensor exponents =
      half == 1 ? torch::zeros({1}) : torch::linspace(0.0, 1.0, half);
  frequencies = register_buffer("frequencies", torch::pow(options.max_frequency(), exponents));
}

torch::Tensor SinusoidalTimeEmbeddingImpl::forward(const torch::Tensor& t) {
  check_times("SinusoidalTimeEmbedding", t);
  return sin_cos(t, frequencies);
}

torch::Tensor SinusoidalTimeEmbeddingImpl::derivative(const torch::Tensor& t) {
  check_times("SinusoidalTimeEmbedding", t);
  return sin_cos_derivative(t, frequencies);
}

void SinusoidalTimeEmbeddingImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::SinusoidalTimeEmbedding(dim=" << options.dim()
         << ", max_frequency=" << options.max_frequency() << ")";
}

FourierTimeEmbeddingImpl::FourierTimeEmbeddingImpl(const FourierTimeEmbeddingOptions& options_)
    : options(options_) {
  check_embedding_dim("FourierTimeEmbedding", options.dim());
  SDEGEN_CHECK(std::isfinite(options.scale()) && options.scale() > 0.0,
               "FourierTimeEmbedding: scale must be finite and > 0, got ", options.scale());
  B = register_buffer("B", torch::randn({options.dim() / 2}) * options.scale());
}

torch::Tensor FourierTimeEmbeddingImpl::forward(const torch::Tensor& t) {
  check_times("FourierTimeEmbedding", t);
  return sin_cos(t, B * kTwoPi);
}

torch::Tensor FourierTimeEmbeddingImpl::derivative(const torch::Tensor& t) {
  check_times("FourierTimeEmbedding", t);
  return sin_cos_derivative(t, B * kTwoPi);
}

void FourierTimeEmbeddingImpl::pretty_print(std::ostream& stream) const {
  stream << "sdegen::FourierTimeEmbedding(dim=" << options.dim() << ", scale=" << options.scale()
         << ")";
}

std::vector<std::string> time_embedding_names() { return {"raw", "sinusoidal", "fourier"}; }

TimeEmbedding make_time_embedding(const std::string& name, const TimeEmbeddingOptions& options) {
  check_name("time embedding", name, time_embedding_names());
  // Through shared_ptr<TimeEmbeddingImpl>: the holder's forwarding constructor would otherwise
  // try to build the abstract base from the derived pointer.
  std::shared_ptr<TimeEmbeddingImpl> impl;
  if (name == "raw") {
    impl = std::make_shared<RawTimeEmbeddingImpl>();
  } else if (name == "sinusoidal") {
    impl = std::make_shared<SinusoidalTimeEmbeddingImpl>(
        SinusoidalTimeEmbeddingOptions(options.dim()).max_frequency(options.max_frequency()));
  } else {
    impl = std::make_shared<FourierTimeEmbeddingImpl>(
        FourierTimeEmbeddingOptions(options.dim()).scale(options.fourier_scale()));
  }
  return TimeEmbedding(std::move(impl));
}

}  // namespace sdegen
