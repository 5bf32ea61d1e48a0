#include "apps/commands.h"

#include <torch/torch.h>

#include "sdegen/core/check.h"
#include "sdegen/core/vmath.h"

namespace sdegen::app {

void register_commands(CLI::App& app) {
  register_train(app);
  register_sample(app);
  register_fokker_planck(app);
  register_eval(app);
  register_plot(app);
  register_compare(app);
}

CLI::Validator one_of(const std::vector<std::string>& names, const std::string& what) {
  return CLI::Validator(
      [names, what](std::string& value) -> std::string {
        for (const auto& n : names)
          if (n == value) return {};
        return "unknown " + what + " '" + value + "'; valid: " + join(names);
      },
      "{" + join(names, ",") + "}");
}

CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(value, &used);
          if (used == value.size() && v > 0) return {};
        } catch (const std::exception&) {
        }
        return "must be a positive number, got '" + value + "'";
      },
      "POSITIVE");
}

void apply_runtime(int threads, uint64_t seed, const std::string& device) {
  SDEGEN_CHECK(threads > 0, "--threads must be positive, got ", threads);
  torch::set_num_threads(threads);
  vmath::set_blas_threads(threads);
  torch::manual_seed(seed);
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(device);
  } catch (const c10::Error&) {
    throw InvalidArgument("unknown device '" + device + "'; use cpu or cuda[:N]");
  }
  SDEGEN_CHECK(d.is_cpu() || (d.is_cuda() && torch::cuda::is_available()), "device '", device,
               "' is not available in this build of LibTorch; use cpu");
}

}  // namespace sdegen::app
