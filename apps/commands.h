#pragma once
// Each sdegen command registers its options and callback on the CLI11 app.
#include <CLI/CLI.hpp>

namespace sdegen::app {

void register_commands(CLI::App& app);

}  // namespace sdegen::app
