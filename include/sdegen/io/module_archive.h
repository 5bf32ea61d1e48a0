#pragma once
// Reading a module's weights from an archive that torch::nn::Module::save wrote, strictly.
// LibTorch's own Module::load replaces each tensor by the stored one whatever its shape, so a
// file for another architecture would load silently; checkpoints, classifiers and the latent
// space's autoencoder read through this instead.
#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sdegen/core/error.h"

namespace sdegen {

// Stored tensors paired with the module's own: {module's, stored}.
using TensorPairs = std::vector<std::pair<torch::Tensor, torch::Tensor>>;

struct StoredTensorCheck {
  // A mismatch reads "'<name>' is Float[2, 3] in <stored_in> but Float[3, 3] in <expected_in>".
  std::string stored_in = "the file", expected_in = "the module";
  // The error for a stored tensor holding NaN or infinite values, given "'<name>' holds NaN ...".
  std::function<IoError(const std::string& why)> corrupt;
};

// Every parameter and buffer of `module` (recursively, one sub-archive per child) read from
// `archive` by name into `out`, after checking shape, dtype (InvalidArgument) and finiteness
// (check.corrupt); nothing is copied into the module. LibTorch's c10::Error passes through for a
// missing entry.
void read_module_tensors(torch::serialize::InputArchive& archive, const torch::nn::Module& module, TensorPairs& out,
                         const StoredTensorCheck& check, const std::string& prefix = "");

// Copies each stored tensor into the module's.
void commit_tensors(const TensorPairs& pairs);

}  // namespace sdegen
