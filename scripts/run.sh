#!/usr/bin/env bash
# Sets up (installs what is missing, builds) and runs sdegen. With no arguments it runs the
# main job on a built-in default; otherwise the arguments go to sdegen unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bin="${SDEGEN_BUILD_DIR:-$root/build}/sdegen"
if [ "$#" -eq 0 ]; then
  # The paper's 1-D comparison: every model trained on laplace5 under one budget (runs/compare).
  set -- compare
fi
exec "$bin" "$@"
