#pragma once
// Small tensor helpers shared by every module. All code works on states of shape [batch, ...]:
// vectors [batch, d] now, images [batch, c, h, w] later. Time is either a double (all rows at
// the same time, as in a solve) or a tensor of shape [batch] (one time per row, as in training).
#include <torch/torch.h>

#include <vector>

namespace sdegen {

// Reshapes a per-row coefficient ([batch] or a 0-dim scalar) so that it broadcasts against x
// ([batch, ...]): [batch] -> [batch, 1, ..., 1].
torch::Tensor per_row(const torch::Tensor& coef, const torch::Tensor& x);

// A [batch] tensor filled with t, on x's device and dtype.
torch::Tensor time_like(double t, const torch::Tensor& x);

// Sum over every dimension but the first: [batch, ...] -> [batch].
torch::Tensor sum_rows(const torch::Tensor& x);

// True when every element is finite.
bool all_finite(const torch::Tensor& x);

// Number of elements per row (the data dimension d for vectors, c*h*w for images).
int64_t row_numel(const torch::Tensor& x);

// A defined float64 tensor on the CPU: the raw-buffer kernels' dtype and device.
bool is_cpu_double(const torch::Tensor& t);
// And contiguous: its data_ptr<double>() can be read and written as a flat buffer.
bool is_raw_double(const torch::Tensor& t);

// Makes every parameter's .grad() a defined tensor of zeros, contiguous and of the parameter's
// dtype, for kernels that add their gradients into it.
void zero_gradients(const std::vector<torch::Tensor>& params);

// The state of torch's default CPU generator (where every noise draw without an explicit
// generator comes from), to save and restore it, and its reseeding; each under its lock.
torch::Tensor default_generator_state();
void set_default_generator_state(const torch::Tensor& state);
void seed_default_generator(uint64_t seed);
// An independent seed for stream `stream` of a run seeded with `seed` (splitmix64 of the two):
// where one seed drives several kinds of draws (data, noise, batches), each gets its own stream,
// so that no draw replays another's random numbers.
uint64_t stream_seed(uint64_t seed, uint64_t stream);

}  // namespace sdegen
