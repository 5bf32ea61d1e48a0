#include "apps/commands.h"

#include <torch/torch.h>

#include <algorithm>

#include "sdegen/core/check.h"
#include "sdegen/core/device.h"
#include "sdegen/core/limits.h"
#include "sdegen/data/csv_data.h"
#include "sdegen/data/density.h"
#include "sdegen/core/vmath.h"
#include "sdegen/model/consistency_model.h"

namespace sdegen::app {

void register_commands(CLI::App& app) {
  register_train(app);
  register_sample(app);
  register_fokker_planck(app);
  register_eval(app);
  register_plot(app);
  register_compare(app);
  register_train_classifier(app);
  register_reflow(app);
  register_distill(app);
}

std::vector<std::string> solver_names_with_consistency() {
  std::vector<std::string> names = sampler_names();
  names.push_back(consistency_solver_name());
  return names;
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

void add_stochastic_sampler_options(CLI::App* cmd, EdmOptions& edm, PcOptions& pc) {
  cmd->add_option("--churn", edm.churn,
                  "edm: S_churn, noise added per step (gamma = min(churn / steps, sqrt 2 - 1); 0: EDM's "
                  "deterministic Heun sampler)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--s-tmin", edm.s_tmin, "edm: S_tmin, churn only where sigma = b / a >= s-tmin")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--s-tmax", edm.s_tmax, "edm: S_tmax, churn only where sigma = b / a <= s-tmax");
  cmd->add_option("--s-noise", edm.s_noise, "edm: S_noise, scale of the churn noise")->check(positive());
  cmd->add_option("--pc-predictor", pc.predictor, "pc: the predictor step (the Langevin corrector follows it)")
      ->check(one_of(pc_predictor_names(), "pc predictor"));
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

CLI::Validator thread_count() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const int bound = max_threads();
        try {
          size_t used = 0;
          const long long v = std::stoll(value, &used);
          if (used == value.size() && v >= 1 && v <= bound) return {};
        } catch (const std::exception&) {
        }
        return "must be a whole number of threads in [1, " + std::to_string(bound) +
               "] (4 per CPU of this machine), got '" + value + "'";
      },
      "1.." + std::to_string(max_threads()));
}

CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const bool digits = !value.empty() && value.size() <= 20 &&
                            value.find_first_not_of("0123456789") == std::string::npos;
        // 2^64 - 1 has 20 digits: compare as text at that length.
        if (digits && (value.size() < 20 || value <= "18446744073709551615")) return {};
        return "must be a whole number in [0, 18446744073709551615], got '" + value + "'";
      },
      "SEED");
}

void check_data_spec(const std::string& spec, bool csv_ok) {
  auto ends_with = [&](const std::string& ext) {
    return spec.size() > ext.size() && spec.compare(spec.size() - ext.size(), ext.size(), ext) == 0;
  };
  const auto names = density_names();
  if (std::find(names.begin(), names.end(), spec) != names.end() || ends_with(".json") ||
      (csv_ok && is_csv_name(spec)))
    return;
  throw InvalidArgument("unknown data '" + spec + "'; valid: " + join(names) + ", a mixture JSON file (*.json)" +
                        (csv_ok ? " or a numeric CSV file (*.csv)" : ""));
}

torch::Device apply_runtime(int threads, uint64_t seed, const std::string& device) {
  SDEGEN_CHECK(threads > 0 && threads <= max_threads(), "--threads must be in [1, ", max_threads(), "], got ",
               threads);
  torch::set_num_threads(threads);
  vmath::set_blas_threads(threads);
  torch::manual_seed(seed);
  return parse_device(device);
}

}  // namespace sdegen::app
