#pragma once
// Mini-batches of row indices without replacement within an epoch: each epoch is a fresh random
// permutation of the n rows from a generator seeded once, and a batch that runs past the end of
// an epoch is completed from the next one. Every row is seen once per epoch (lower variance than
// sampling with replacement), and the state (generator, permutation, position) is small enough to
// store in a checkpoint, so a resumed run draws exactly the batches an uninterrupted run would.
#include <torch/torch.h>

#include <cstdint>

namespace sdegen {

class BatchSampler {
 public:
  // n >= 1 rows, batch >= 1 rows per draw (batch > n is allowed: rows then repeat across epochs).
  BatchSampler(int64_t n, int64_t batch, uint64_t seed);
  // Copies are independent: the generator is cloned (a snapshot to roll back to).
  BatchSampler(const BatchSampler& other);
  BatchSampler& operator=(const BatchSampler& other);

  int64_t rows() const { return n_; }
  int64_t batch() const { return batch_; }
  int64_t epoch() const { return epoch_; }  // completed permutations drawn so far, minus one

  // The next `batch` row indices, int64 [batch].
  torch::Tensor next();

  void save(torch::serialize::OutputArchive& archive) const;
  // Refuses a state written for a different number of rows (InvalidArgument); batch may differ.
  void load(torch::serialize::InputArchive& archive);

 private:
  void new_epoch();

  int64_t n_, batch_;
  at::Generator generator_;
  torch::Tensor permutation_;  // int64 [n]
  int64_t position_ = 0;       // next unused entry of permutation_
  int64_t epoch_ = -1;
};

}  // namespace sdegen
