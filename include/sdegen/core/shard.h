#pragma once
// The random draws of a training batch when the batch is split across processes (data-parallel
// training, train/distributed.h). Every rank draws the noise of the whole global batch, from the
// same generator state, and keeps its own rows: so the union of the shards sees exactly the
// numbers one process would draw for the whole batch, every rank's generator stays in step with
// the others, and N processes give the losses of one. Drawing the global batch's noise costs
// a few microseconds per row against the network's milliseconds.
//
// Outside a ShardScope (one process, evaluation, sampling) these are the plain draws.
#include <torch/torch.h>

#include <cstdint>
#include <functional>

namespace sdegen {

// This process's rows [offset, offset + rows) of a global batch of `total` rows.
struct BatchShard {
  int64_t offset = 0, rows = 0, total = 0;
};

// Makes `shard` the current thread's shard until it leaves (scopes nest; the inner one wins).
class ShardScope {
 public:
  explicit ShardScope(const BatchShard& shard);
  ~ShardScope();
  ShardScope(const ShardScope&) = delete;
  ShardScope& operator=(const ShardScope&) = delete;

 private:
  BatchShard previous_;
  bool had_previous_;
};

// `draw(rows)` returns a tensor whose dimension `dim` has `rows` entries, one per batch row.
// With a current shard, draw(total) narrowed to the shard's rows (refused unless `rows` is the
// shard's row count); without one, draw(rows).
torch::Tensor shard_draw(int64_t rows, const std::function<torch::Tensor(int64_t)>& draw, int64_t dim = 0);

// The common draws through shard_draw: standard normal noise shaped like y [rows, ...], uniform
// and standard normal [rows], and stratified uniforms (one uniform offset u, then
// (u + i / rows) mod 1 for the batch's rows i: the low-discrepancy times of VDM). Each is drawn
// from LibTorch's CPU generator and moved to y's (or options') device, so that a seed gives the
// same draws on the CPU and on a GPU, and a checkpoint's CPU generator state resumes them.
torch::Tensor batch_randn_like(const torch::Tensor& y);
torch::Tensor batch_rand(int64_t rows, const torch::TensorOptions& options);
torch::Tensor batch_randn(int64_t rows, const torch::TensorOptions& options);
torch::Tensor batch_stratified(int64_t rows, const torch::TensorOptions& options);

}  // namespace sdegen
