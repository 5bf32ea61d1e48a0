#pragma once
// Each sdegen command registers its options and callback on the CLI11 app.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace sdegen::app {

void register_commands(CLI::App& app);

void register_sample(CLI::App& app);
void register_train(CLI::App& app);
void register_fokker_planck(CLI::App& app);
void register_eval(CLI::App& app);
void register_plot(CLI::App& app);
void register_compare(CLI::App& app);

// Validators shared by the commands: the message names the valid choices.
CLI::Validator one_of(const std::vector<std::string>& names, const std::string& what);

// Accepts numbers > 0: "--steps must be positive, got 0".
CLI::Validator positive();

// Applies --threads and --seed, and checks --device (cpu, or cuda where LibTorch has it).
void apply_runtime(int threads, uint64_t seed, const std::string& device);

}  // namespace sdegen::app
