// libFuzzer target: `sdegen train --config FILE` as the command reads it (every option of the
// train command, validated as flags are), without running the command. Refusals must be
// sdegen::Error; anything else is a finding.
#include <CLI/CLI.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#include "apps/commands.h"
#include "apps/json_config.h"
#include "sdegen/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CLI::App app;
  sdegen::app::register_train(app);
  CLI::App* train = app.get_subcommand("train");
  try {
    sdegen::app::apply_json_config_text(train, std::string(reinterpret_cast<const char*>(data), size), "fuzz.json");
  } catch (const sdegen::Error&) {
  }
  return 0;
}
