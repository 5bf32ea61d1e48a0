#include "sdegen/core/shard.h"

#include "sdegen/core/check.h"

namespace sdegen {
namespace {

thread_local BatchShard current_shard;
thread_local bool shard_active = false;

}  // namespace

ShardScope::ShardScope(const BatchShard& shard) : previous_(current_shard), had_previous_(shard_active) {
  SDEGEN_CHECK(shard.rows >= 1 && shard.offset >= 0 && shard.offset + shard.rows <= shard.total,
               "ShardScope: rows [", shard.offset, ", ", shard.offset + shard.rows, ") do not lie in a batch of ",
               shard.total);
  current_shard = shard;
  shard_active = true;
}

ShardScope::~ShardScope() {
  current_shard = previous_;
  shard_active = had_previous_;
}

torch::Tensor shard_draw(int64_t rows, const std::function<torch::Tensor(int64_t)>& draw, int64_t dim) {
  if (!shard_active) return draw(rows);
  const BatchShard s = current_shard;
  SDEGEN_CHECK(rows == s.rows, "a draw for ", rows, " rows inside a shard of ", s.rows, " rows (of ", s.total,
               "): only the batch's own draws may be sharded");
  const torch::Tensor all = draw(s.total);
  SDEGEN_CHECK(all.dim() > dim && all.size(dim) == s.total, "shard_draw: the draw for ", s.total,
               " rows has shape ", all.sizes(), " (expected ", s.total, " along dimension ", dim, ")");
  return all.narrow(dim, s.offset, s.rows).contiguous();
}

namespace {

// Drawn from the CPU generator and moved: one seed gives the same draws on every device, and a
// checkpoint's CPU generator state resumes them exactly wherever the run goes on.
torch::TensorOptions on_cpu(const torch::TensorOptions& options) { return options.device(torch::kCPU); }

}  // namespace

torch::Tensor batch_randn_like(const torch::Tensor& y) {
  std::vector<int64_t> sizes = y.sizes().vec();
  return shard_draw(y.size(0), [&](int64_t n) {
    sizes[0] = n;
    return torch::randn(sizes, on_cpu(y.options())).to(y.device());
  });
}

torch::Tensor batch_rand(int64_t rows, const torch::TensorOptions& options) {
  return shard_draw(rows, [&](int64_t n) { return torch::rand({n}, on_cpu(options)).to(options.device()); });
}

torch::Tensor batch_randn(int64_t rows, const torch::TensorOptions& options) {
  return shard_draw(rows, [&](int64_t n) { return torch::randn({n}, on_cpu(options)).to(options.device()); });
}

torch::Tensor batch_stratified(int64_t rows, const torch::TensorOptions& options) {
  return shard_draw(rows, [&](int64_t n) {
    const torch::TensorOptions cpu = on_cpu(options);
    return torch::remainder(torch::rand({1}, cpu) + torch::arange(n, cpu) / static_cast<double>(n), 1.0)
        .to(options.device());
  });
}

}  // namespace sdegen
