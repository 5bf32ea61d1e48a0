#!/usr/bin/env bash
# Runs every benchmark of bench/ side by side with its PyTorch reference (bench/python/),
# alternating the two implementations over several rounds, and prints one table of medians and
# ratios with the thread count and peak memory.
#   scripts/bench.sh [ROUNDS]        (default 3)
# Environment: SDEGEN_BENCH_THREADS (default 2) threads for both sides (torch, OpenMP, OpenBLAS);
# SDEGEN_BUILD_DIR (default build/); SDEGEN_BENCH_LOG (default $build/bench.log) keeps every
# RESULT line; SDEGEN_BENCH_ORACLE=0 skips workload 5 (C++ only, ~10 minutes); SDEGEN_BENCH_ONLY=REGEX
# runs only the cases whose arguments match (e.g. 'likelihood').
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SDEGEN_BUILD_DIR:-$root/build}"
rounds="${1:-3}"
threads="${SDEGEN_BENCH_THREADS:-2}"
log="${SDEGEN_BENCH_LOG:-$build/bench.log}"
python=/usr/bin/python3  # Debian's interpreter, the one python3-torch installs into

if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  echo "bench: installing python3-torch (the PyTorch reference)"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi
# The project's own dependencies (LibTorch, OpenBLAS, ...) come from setup.sh's list.
dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed" ||
  bash "$root/scripts/setup.sh"
cmake -S "$root" -B "$build" -DSDEGEN_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=$(cd "$root/bench" && ls *.cpp | sed 's/\.cpp$//; s/^/bench_/')
make -C "$build" -j"${SDEGEN_JOBS:-$(nproc)}" $targets >/dev/null

export OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
common=(--threads "$threads")
# Each case: the arguments shared by bench_X and bench/python/X.py.
cases=(
  "train_step --model flow"
  "train_step --model diffusion"
  "train_step --model vdm"
  "train_step --model sde"
  "train_step --model ode"
  "train_step --model flow --data moons --width 256 --depth 3 --batch 512 --activation silu --steps 200 --workload 2-flow-2d --case 3x256-b512"
  "train_step --model flow --data moons --width 64 --depth 3 --batch 256 --activation silu --steps 1000 --workload 2-flow-2d --case 3x64-b256"
  "sample --batch 1"
  "sample --batch 10000"
  "likelihood"
  "gemm --width 256 --batch 512"
  "gemm --width 64 --batch 256"
  # Workload 7, the image recipe's U-Net: a train step at batch 64, a guided sampling call on
  # 2 x 250 images (about 105 s a round at 2 threads on a shared, loaded 2-core machine).
  "unet --phase train --base 32 --steps 6"
  "unet --phase train --base 16 --steps 10"
  "unet --phase sample --base 32 --steps 2"
  "unet --phase sample --base 16 --steps 4"
  # Workload 8, the image recipe's diffusion transformer (1.26M parameters): a train step at batch
  # 64 with 2x2 patches (196 tokens) and with 4x4 (49 tokens), a guided sampling call on 2 x 250
  # images (about 170 s a round at 2 threads on a shared, loaded 2-core machine).
  "dit --phase train --patch 2 --steps 6"
  "dit --phase train --patch 4 --steps 10"
  "dit --phase sample --patch 2 --steps 2"
  # Workload 9, the image recipe's KL autoencoder (0.36M parameters, 1x28x28 to 4x7x7): encoding
  # and decoding 256 images, a train step at batch 64 (about 15 s a round).
  "autoencoder --phase encode --steps 10"
  "autoencoder --phase decode --steps 10"
  "autoencoder --phase train --steps 20"
)

: >"$log"
run_cpp() { local name=$1; shift; "$build/bench_$name" "$@" "${common[@]}" | tee -a "$log"; }
run_py() { local name=$1; shift; (cd "$root/bench/python" && "$python" "$name.py" "$@" "${common[@]}") | tee -a "$log"; }
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds"
  for c in "${cases[@]}"; do
    [[ -z "${SDEGEN_BENCH_ONLY:-}" || "$c" =~ ${SDEGEN_BENCH_ONLY:-} ]] || continue
    # Alternate which side goes first, so neither always runs on a warmer machine.
    if ((r % 2)); then run_cpp $c; run_py $c; else run_py $c; run_cpp $c; fi
  done
done
if [ "${SDEGEN_BENCH_ORACLE:-1}" != 0 ]; then
  echo "== workload 5 (C++ only: the exact oracle)"
  run_cpp oracle
fi
echo
"$python" "$root/bench/python/table.py" "$log"
