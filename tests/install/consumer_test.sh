#!/usr/bin/env bash
# The installed package, really used: `cmake --install` of this build into a scratch prefix, then
# examples/consumer (a separate CMake project: find_package(sdegen)) configured and built against
# it out of tree, then run on a model the installed sdegen program trains.
# Usage (CTest): consumer_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="$1"
build="$2"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/sdegen_install_XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/sdegen/sdegen.h"
test -f "$prefix/lib/cmake/sdegen/sdegenConfig.cmake"
test -f "$prefix/lib/cmake/sdegen/sdegenConfigVersion.cmake"
test -x "$prefix/bin/sdegen"

cmake -S "$src/examples/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/consumer" -j "$(nproc)" >/dev/null
# The consumer's build must use the installed headers, not the source tree's.
if grep -rq -- "$src/include" "$scratch/consumer/CMakeFiles/sdegen_consumer.dir/flags.make"; then
  echo "the consumer was compiled against the source tree's headers" >&2
  exit 1
fi

"$prefix/bin/sdegen" train --data laplace5 --model flow --steps 200 --n-val 0 --checkpoint-every 200 --threads 1 \
  --out "$scratch/run" >/dev/null 2>&1
out="$("$scratch/consumer/sdegen_consumer" "$scratch/run" 300)"
echo "$out"
grep -q "^kind flow$" <<<"$out"
grep -q "^shape 1$" <<<"$out"
grep -q "^samples 300 " <<<"$out"
grep -q "^same seed, same samples: yes$" <<<"$out"
# The samples are likelier under the model than the same points shifted by 3 standard deviations.
awk '/^mean log-likelihood/ { own = $6; shifted = $(NF); gsub(",", "", own); exit !(own > shifted + 1) }' <<<"$out"
# A directory without a checkpoint is an error with a non-zero exit, not a crash.
if "$scratch/consumer/sdegen_consumer" "$scratch/nowhere" 2>"$scratch/err"; then
  echo "loading a missing run succeeded" >&2
  exit 1
fi
grep -q "sdegen_consumer: " "$scratch/err"
echo "consumer test passed"
