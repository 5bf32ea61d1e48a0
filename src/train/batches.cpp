#include "sdegen/train/batches.h"

#include <ATen/CPUGeneratorImpl.h>

#include "sdegen/core/check.h"

namespace sdegen {

BatchSampler::BatchSampler(int64_t n, int64_t batch, uint64_t seed)
    : n_(n), batch_(batch), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  SDEGEN_CHECK(n >= 1, "BatchSampler needs at least one row, got ", n);
  SDEGEN_CHECK(batch >= 1, "BatchSampler: batch must be >= 1, got ", batch);
  new_epoch();
}

BatchSampler::BatchSampler(const BatchSampler& other)
    : n_(other.n_),
      batch_(other.batch_),
      generator_(other.generator_.clone()),
      permutation_(other.permutation_),  // never modified in place
      position_(other.position_),
      epoch_(other.epoch_) {}

BatchSampler& BatchSampler::operator=(const BatchSampler& other) {
  if (this != &other) {
    n_ = other.n_;
    batch_ = other.batch_;
    generator_ = other.generator_.clone();
    permutation_ = other.permutation_;
    position_ = other.position_;
    epoch_ = other.epoch_;
  }
  return *this;
}

void BatchSampler::new_epoch() {
  permutation_ = torch::randperm(n_, generator_, torch::kLong);
  position_ = 0;
  ++epoch_;
}

torch::Tensor BatchSampler::next() {
  std::vector<torch::Tensor> parts;
  int64_t needed = batch_;
  while (needed > 0) {
    if (position_ == n_) new_epoch();
    const int64_t take = std::min(needed, n_ - position_);
    parts.push_back(permutation_.slice(0, position_, position_ + take));
    position_ += take;
    needed -= take;
  }
  return parts.size() == 1 ? parts[0].clone() : torch::cat(parts);
}

void BatchSampler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("rows", c10::IValue(n_));
  archive.write("position", c10::IValue(position_));
  archive.write("epoch", c10::IValue(epoch_));
  archive.write("permutation", permutation_, /*is_buffer=*/true);
  archive.write("generator", generator_.get_state(), /*is_buffer=*/true);
}

void BatchSampler::load(torch::serialize::InputArchive& archive) {
  c10::IValue rows, position, epoch;
  archive.read("rows", rows);
  archive.read("position", position);
  archive.read("epoch", epoch);
  SDEGEN_CHECK(rows.isInt() && position.isInt() && epoch.isInt(),
               "batch sampler state: an entry has the wrong type");
  SDEGEN_CHECK(rows.toInt() == n_, "batch sampler state is for ", rows.toInt(),
               " training rows, this run has ", n_);
  torch::Tensor permutation, state;
  archive.read("permutation", permutation, /*is_buffer=*/true);
  archive.read("generator", state, /*is_buffer=*/true);
  SDEGEN_CHECK(permutation.scalar_type() == torch::kLong && permutation.dim() == 1 &&
                   permutation.size(0) == n_ && position.toInt() >= 0 && position.toInt() <= n_,
               "batch sampler state: permutation or position out of range");
  generator_.set_state(state);
  permutation_ = permutation;
  position_ = position.toInt();
  epoch_ = epoch.toInt();
}

}  // namespace sdegen
