#!/usr/bin/env bash
# Trains each model on laplace5 (1000 seeded training points) with its recommended recipe from
# the CLI, then evaluates it on 8000 held-out points: training time, held-out log-likelihood,
# ELBO, and the 1-D Wasserstein distance of 8000 samples.
#   scripts/laplace5_models.sh [OUT_DIR] [MODELS...]     (default runs/laplace5, every model)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${SDEGEN_BIN:-$root/build/sdegen}"
out="${1:-runs/laplace5}"
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(sde ode flow diffusion score vdm)
mkdir -p "$out"
printf '%-10s %8s %10s %10s %8s\n' model train_s loglik elbo w1
for m in "${models[@]}"; do
  start=$(date +%s.%N)
  "$bin" train --data laplace5 --n-train 1000 --model "$m" --seed 0 --out "$out/$m" --overwrite >"$out/$m.train.log" 2>&1
  end=$(date +%s.%N)
  "$bin" eval --checkpoint "$out/$m" --n 8000 --out "$out/$m.json" >"$out/$m.eval.log" 2>&1
  python3 - "$out/$m.json" "$m" "$start" "$end" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
f = lambda k: "%.4f" % j[k] if isinstance(j.get(k), (int, float)) else "-"
print("%-10s %8.1f %10s %10s %8s" % (sys.argv[2], float(sys.argv[4]) - float(sys.argv[3]), f("log_likelihood"), f("elbo"), f("w1")))
PY
done
