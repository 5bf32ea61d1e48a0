#!/usr/bin/env bash
# Sets up (installs what is missing, builds) and runs sdegen. With no arguments it runs the
# main job on a built-in default; otherwise the arguments go to sdegen unchanged.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
bin="${SDEGEN_BUILD_DIR:-$root/build}/sdegen"
if [ "$#" -eq 0 ]; then
  mkdir -p runs
  set -- sample --oracle --data gmm2d --schedule linear --solver dpm++2m --steps 20 --n 5000 --out runs/samples.csv
fi
exec "$bin" "$@"
