// The sdegen command-line program: the only code that reads argv, prints and picks exit codes.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include "apps/commands.h"
#include "sdegen/core/error.h"

namespace {

// "sdegen: error: ", naming the rank in a data-parallel worker (apps/launch.h).
std::string error_prefix() {
  const char* rank = std::getenv("RANK");
  const char* world = std::getenv("WORLD_SIZE");
  if (rank == nullptr || world == nullptr || std::string(world) == "1") return "sdegen: error: ";
  return std::string("sdegen: error (rank ") + rank + "): ";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sdegen: generative modelling with stochastic and ordinary differential equations"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every command");
  app.get_formatter()->column_width(40);
  sdegen::app::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const sdegen::Error& e) {
    std::cerr << error_prefix() << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << error_prefix() << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << error_prefix() << e.what() << "\n";
    return 1;
  }
  return 0;
}
