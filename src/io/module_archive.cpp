#include "sdegen/io/module_archive.h"

#include "sdegen/core/check.h"
#include "sdegen/core/tensor.h"

namespace sdegen {

void read_module_tensors(torch::serialize::InputArchive& archive, const torch::nn::Module& module, TensorPairs& out,
                         const StoredTensorCheck& check, const std::string& prefix) {
  auto take = [&](const std::string& name, const torch::Tensor& mine, bool is_buffer) {
    torch::Tensor stored;
    archive.read(name, stored, is_buffer);
    SDEGEN_CHECK(stored.sizes() == mine.sizes() && stored.scalar_type() == mine.scalar_type(), "'", prefix, name,
                 "' is ", stored.scalar_type(), stored.sizes(), " in ", check.stored_in, " but ", mine.scalar_type(),
                 mine.sizes(), " in ", check.expected_in);
    if (!all_finite(stored)) throw check.corrupt("'" + prefix + name + "' holds NaN or infinite values");
    out.emplace_back(mine, stored);
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) take(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) take(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    torch::serialize::InputArchive sub;
    archive.read(child.key(), sub);
    read_module_tensors(sub, *child.value(), out, check, prefix + child.key() + ".");
  }
}

void commit_tensors(const TensorPairs& pairs) {
  torch::NoGradGuard no_grad;
  for (const auto& [mine, stored] : pairs) mine.detach().copy_(stored);
}

}  // namespace sdegen
