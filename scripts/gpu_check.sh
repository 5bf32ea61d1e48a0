#!/usr/bin/env bash
# The GPU check, one script for a machine with an NVIDIA GPU and PyTorch 2.x (time on one is
# short). It builds sdegen against the LibTorch inside that PyTorch installation, runs the
# device-agnostic tests on the GPU, and measures the Fashion-MNIST U-Net's training step and
# guided sampling call against the same network in PyTorch on the same GPU, side by side.
#   bash scripts/gpu_check.sh                 (writes $OUT/gpu_check.log, else <build>/gpu_check.log)
# Environment:
#   SDEGEN_GPU_DEVICE   the device to test and measure on (default cuda; cpu rehearses the script
#                       on a machine without a GPU)
#   SDEGEN_GPU_BUILD    build directory (default build-gpu)
#   SDEGEN_GPU_ROUNDS   benchmark rounds, alternating the two sides (default 3)
#   SDEGEN_GPU_SUITE=1  also run the whole suite in that build (on the CPU, as CI does)
#   SDEGEN_GPU_REHEARSE=1  2 timed steps per case instead of 20-30: a rehearsal of the script
#                       itself (with SDEGEN_GPU_DEVICE=cpu), not a measurement
# Needs: cmake, a C++17 compiler, python3 with torch 2.x (CUDA), and the headers and libraries
# scripts/setup.sh installs on Debian (fmt, nlohmann-json, CLI11, libpng, zlib, Armadillo, LEMON,
# BLAS, GoogleTest, Gloo). Nothing is downloaded.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device="${SDEGEN_GPU_DEVICE:-cuda}"
build="${SDEGEN_GPU_BUILD:-$root/build-gpu}"
rounds="${SDEGEN_GPU_ROUNDS:-3}"
log="${OUT:-$build}/gpu_check.log"
mkdir -p "$build" "$(dirname "$log")"
: >"$log"
say() { echo "$*" | tee -a "$log"; }
step() { say "== $* ($(date -u +%H:%M:%S))"; }

step "the machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  nproc; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
} 2>&1 | tee -a "$log"
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) || {
  say "python3 cannot import torch: no PyTorch LibTorch to build against"; exit 1; }

step "configure and build against $prefix"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSDEGEN_BUILD_BENCH=ON \
  -DCMAKE_PREFIX_PATH="$prefix" >>"$log" 2>&1 || { say "configure failed (the log's end above)"; tail -30 "$log"; exit 1; }
start=$(date +%s)
cmake --build "$build" -j "$(nproc)" >>"$log" 2>&1 || { say "build failed"; grep -m 20 -A3 "error" "$log"; exit 1; }
say "built in $(( $(date +%s) - start )) s"

step "the device-agnostic tests on $device"
# DeviceCli.*: the CLI trains on the device, resumes on the CPU and samples the same points there;
# OnTheTestDevice.*: the library's loss, gradient, guided sampling and checkpoints on the device
# against the CPU; ModelApi.LoadsOntoTheTestDevice*: the stable API loaded onto the device.
(cd "$build" && SDEGEN_TEST_DEVICE="$device" ctest --output-on-failure -R 'DeviceCli|OnTheTestDevice|LoadsOntoTheTestDevice' 2>&1) | tee -a "$log"

step "U-Net (workload 7) on $device: sdegen against PyTorch, $rounds rounds"
cases=("--phase train --base 32 --steps 30 --warmup 5"
       "--phase train --base 32 --batch 256 --steps 20 --warmup 5 --case train-b32-batch256"
       "--phase sample --base 32 --steps 30 --warmup 5")
if [ "${SDEGEN_GPU_REHEARSE:-0}" = 1 ]; then
  cases=("${cases[@]/--steps 30 --warmup 5/--steps 2 --warmup 1}")
  cases=("${cases[@]/--steps 20 --warmup 5/--steps 2 --warmup 1}")
fi
for ((r = 1; r <= rounds; r++)); do
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086  # the case's arguments are word-split on purpose
    if ((r % 2)); then
      "$build/bench_unet" $c --device "$device" 2>>"$log" | tee -a "$log"
      (cd "$root/bench/python" && python3 unet.py $c --device "$device") 2>>"$log" | tee -a "$log"
    else
      (cd "$root/bench/python" && python3 unet.py $c --device "$device") 2>>"$log" | tee -a "$log"
      "$build/bench_unet" $c --device "$device" 2>>"$log" | tee -a "$log"
    fi
  done
done
table=$(python3 "$root/bench/python/table.py" "$log" 2>&1)
say "$table"

if [ "${SDEGEN_GPU_SUITE:-0}" = 1 ]; then
  step "the whole suite in this build"
  (cd "$build" && ctest -j "$(nproc)" 2>&1 | tail -15) | tee -a "$log"
fi
step "done; the log is $log"
