#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (clang, AddressSanitizer, UndefinedBehaviorSanitizer) and
# runs each for a while on its seed corpus (fuzz/corpus/<reader>/, checked in; new inputs go to a
# scratch corpus under the build directory). Not part of CI: it takes minutes per reader.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 180 s, every target)
# A finding (crash, sanitizer report, an exception other than sdegen::Error) stops that target
# and leaves its input in $build/artifacts/; the summary lists the targets with findings.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SDEGEN_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-180}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(csv_fuzz mixture_fuzz config_fuzz checkpoint_config_fuzz)

command -v clang++ >/dev/null || { echo "fuzz: clang++ is needed (apt-get install clang)"; exit 1; }
cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSDEGEN_BUILD_FUZZ=ON -DSDEGEN_BUILD_TESTS=OFF -DSDEGEN_BUILD_EXAMPLES=OFF >/dev/null || exit 1
cmake --build "$build" -j "${SDEGEN_JOBS:-$(nproc)}" --target "${targets[@]}" || exit 1

mkdir -p "$build/artifacts"
found=()
for t in "${targets[@]}"; do
  reader="${t%_fuzz}"
  scratch="$build/corpus/$reader"
  mkdir -p "$scratch"
  echo "== $t: ${seconds} s"
  # LibTorch's own allocations are not leaks of ours: leak checking off.
  if ! ASAN_OPTIONS=detect_leaks=0 "$build/$t" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
      -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 "$scratch" "$root/fuzz/corpus/$reader" \
      2>"$build/$t.log"; then
    found+=("$t")
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs" "$build/$t.log" | tail -3
done
if [ "${#found[@]}" -gt 0 ]; then
  echo "fuzz: findings in ${found[*]} (inputs in $build/artifacts, logs in $build/<target>.log)"
  exit 1
fi
echo "fuzz: no findings"
