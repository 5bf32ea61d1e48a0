#pragma once
// Each sdegen command registers its options and callback on the CLI11 app.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "sdegen/sample/sampler.h"

namespace sdegen::app {

void register_commands(CLI::App& app);

void register_sample(CLI::App& app);
void register_train(CLI::App& app);
void register_fokker_planck(CLI::App& app);
void register_eval(CLI::App& app);
void register_plot(CLI::App& app);
void register_compare(CLI::App& app);
void register_train_classifier(CLI::App& app);
void register_reflow(CLI::App& app);
void register_distill(CLI::App& app);

// The solvers sample and eval take: sampler_names() and "consistency" (consistency models).
std::vector<std::string> solver_names_with_consistency();

// Validators shared by the commands: the message names the valid choices.
CLI::Validator one_of(const std::vector<std::string>& names, const std::string& what);

// Accepts numbers > 0: "--steps must be positive, got 0".
CLI::Validator positive();

// Accepts a whole number of threads in [1, max_threads()] (4 per CPU), naming the bound.
CLI::Validator thread_count();

// Accepts a seed that fits: a whole number in [0, 2^64 - 1], written in decimal digits. Without
// it a negative seed would wrap and a huge one saturate, silently giving another run's seed.
CLI::Validator seed_value();

// The options of the stochastic samplers, each with its default in --help: --churn, --s-tmin,
// --s-tmax, --s-noise (edm) and --pc-predictor (pc).
void add_stochastic_sampler_options(CLI::App* cmd, EdmOptions& edm, PcOptions& pc);

// Refuses a --data value that is neither a built-in density, a mixture JSON file (*.json) nor,
// where csv_ok, a numeric CSV file (*.csv); the message lists all that is accepted.
void check_data_spec(const std::string& spec, bool csv_ok);

// Applies --threads and --seed, and returns --device (cpu, or cuda[:N] where LibTorch has CUDA and a
// GPU is visible; anything else refused by name: core/device.h).
torch::Device apply_runtime(int threads, uint64_t seed, const std::string& device);

}  // namespace sdegen::app
