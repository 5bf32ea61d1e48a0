#include "sdegen/core/tensor.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <mutex>

#include "sdegen/core/check.h"

namespace sdegen {

torch::Tensor per_row(const torch::Tensor& coef, const torch::Tensor& x) {
  if (coef.dim() == 0) return coef;
  SDEGEN_CHECK(coef.dim() == 1 && coef.size(0) == x.size(0), "per_row: coefficient of shape ",
               coef.sizes(), " does not match a batch of ", x.size(0));
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return coef.reshape(shape);
}

torch::Tensor time_like(double t, const torch::Tensor& x) {
  return torch::full({x.size(0)}, t, x.options());
}

torch::Tensor sum_rows(const torch::Tensor& x) {
  if (x.dim() <= 1) return x;
  return x.flatten(1).sum(1);
}

bool all_finite(const torch::Tensor& x) { return torch::isfinite(x).all().item<bool>(); }

bool is_cpu_double(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kDouble;
}

bool is_raw_double(const torch::Tensor& t) { return is_cpu_double(t) && t.is_contiguous(); }

void zero_gradients(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    torch::Tensor& g = p.mutable_grad();
    if (!g.defined() || !g.is_contiguous() || g.sizes() != p.sizes() || g.scalar_type() != p.scalar_type()) {
      g = torch::zeros_like(p, torch::MemoryFormat::Contiguous);
    } else if (is_cpu_double(g)) {
      std::memset(g.data_ptr<double>(), 0, sizeof(double) * static_cast<size_t>(g.numel()));
    } else {
      g.zero_();
    }
  }
}

int64_t row_numel(const torch::Tensor& x) { return x.dim() == 0 ? 1 : x.numel() / x.size(0); }

torch::Tensor default_generator_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_default_generator_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

void seed_default_generator(uint64_t seed) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(seed);
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + stream * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace sdegen
