#pragma once
// Where tensors live. Every model, network and solver follows its inputs' device; the fused CPU
// kernels (raw float64 buffers) take the CPU path only and are skipped elsewhere, so one code path
// serves the CPU and a GPU. Random draws for training batches and priors are made on the CPU and
// moved, so a seed gives the same draws on every device.
#include <torch/torch.h>

#include <string>

namespace sdegen {

// "cpu", "cuda" or "cuda:N" -> a device this process can use. Refused with InvalidArgument naming
// the problem: an unknown name, a CUDA device in a LibTorch built without CUDA (or with no GPU
// visible), or an index beyond the visible GPUs.
torch::Device parse_device(const std::string& name);

// The device of a module's first parameter (or buffer); the CPU for one with neither.
torch::Device device_of(const torch::nn::Module& module);

}  // namespace sdegen
