#include "sdegen/core/device.h"

#include "sdegen/core/check.h"

namespace sdegen {

torch::Device parse_device(const std::string& name) {
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(name);
  } catch (const c10::Error&) {
    throw InvalidArgument("unknown device '" + name + "'; use cpu, cuda or cuda:N");
  }
  SDEGEN_CHECK(d.is_cpu() || d.is_cuda(), "unknown device '", name, "'; use cpu, cuda or cuda:N");
  if (d.is_cpu()) {
    SDEGEN_CHECK(!d.has_index() || d.index() == 0, "device '", name, "': there is one CPU device; use cpu");
    return torch::Device(torch::kCPU);
  }
  SDEGEN_CHECK(torch::cuda::is_available(), "device '", name, "': ",
               at::hasCUDA() ? "no CUDA GPU is visible to this process"
                                : "this LibTorch was built without CUDA; use cpu, or build against a CUDA LibTorch",
               " (see the README's GPU section)");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  SDEGEN_CHECK(!d.has_index() || d.index() < count, "device '", name, "': only ", count, " CUDA GPU",
               count == 1 ? " is" : "s are", " visible (cuda:0", count > 1 ? " to cuda:" + std::to_string(count - 1) : "",
               ")");
  return d.has_index() ? d : torch::Device(torch::kCUDA, 0);
}

torch::Device device_of(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return torch::Device(torch::kCPU);
}

}  // namespace sdegen
