#include "apps/commands.h"

namespace sdegen::app {

void register_commands(CLI::App& app) { (void)app; }

}  // namespace sdegen::app
