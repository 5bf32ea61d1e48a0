#!/usr/bin/env bash
# Installs the Debian packages sdegen needs (only those missing) and builds it into build/.
# Safe to run again: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SDEGEN_BUILD_DIR:-$root/build}"

packages=(
  cmake make g++ pkg-config
  libtorch-dev            # LibTorch 1.13: tensors, autograd, networks
  libopenblas0-pthread    # optimised BLAS: the reference one makes small networks ~15x slower
  libblas-dev             # CBLAS header and link library for the fused kernels (runs on OpenBLAS)
  libgtest-dev            # GoogleTest
  libcli11-dev            # argument parsing
  nlohmann-json3-dev      # JSON
  libfmt-dev              # formatting
  libpng-dev              # PNG images in and out
  zlib1g-dev              # CRC-32 checksums of checkpoint files, gzipped IDX files
  libarmadillo-dev        # Gaussian mixtures (k-means and EM) for the classical baselines
  liblemon-dev            # network simplex: exact minibatch optimal-transport couplings
  gnuplot-nox             # plots
  dataset-fashion-mnist   # real images: Fashion-MNIST's IDX files in /usr/share/datasets/fashion-mnist
  libgloo-dev             # c10d's Gloo process group headers: data-parallel training (--nproc)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "sdegen setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs="${SDEGEN_JOBS:-$(nproc)}"
# shellcheck disable=SC2086  # extra CMake flags are word-split on purpose
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release ${SDEGEN_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"
