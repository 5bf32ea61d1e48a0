#!/usr/bin/env bash
# Sets up (installs what is missing, builds) and runs the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "${SDEGEN_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${SDEGEN_JOBS:-$(nproc)}" "$@"
