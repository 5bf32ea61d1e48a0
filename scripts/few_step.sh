#!/usr/bin/env bash
# The README's few-step table ("Few-step generation"): on each 2-D toy, the flow teacher and the
# OT flows with the vector recipe, then 2- and 3-rectified flow (one and two reflows), consistency
# distillation and consistency training with their defaults; every model evaluated with 5000 samples at 1, 2, 4,
# 8 and 100 evaluations (and dopri5 for flows) at evaluation seeds 0, 1 and 2; the table divides
# the mean distance over the seeds by the mean two-sample floor over the same seeds.
#   scripts/few_step.sh [OUT] [DATA...]      (default runs/few_step; moons 8gaussians checkerboard)
# About 40 minutes per dataset on one thread (the 2026-12-05 table ran two datasets at a time).
# Environment: SDEGEN_BUILD_DIR; SDEGEN_FEW_STEP_QUICK=1 trains for 300 steps and evaluates 500
# points (a check that the script runs, not the table's figures).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SDEGEN_BUILD_DIR:-$root/build}"
out="${1:-$root/runs/few_step}"
shift || true
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(moons 8gaussians checkerboard)
[ -x "$build/sdegen" ] || bash "$root/scripts/setup.sh"
S="$build/sdegen"
export OMP_WAIT_POLICY=passive
quick=()
pairs=20000
n=5000
if [ "${SDEGEN_FEW_STEP_QUICK:-0}" = 1 ]; then quick=(--steps 300); pairs=1000; n=500; fi
mkdir -p "$out"

evaluate() {  # RUN SOLVER NAME [STEPS]
  for seed in 0 1 2; do
    local steps=()
    [ $# -ge 4 ] && steps=(--sample-steps "$4")
    "$S" eval --checkpoint "$1" --no-likelihood --n "$n" --seed "$seed" --sample-solver "$2" "${steps[@]}" \
      --out "$1/e_$3_s$seed.json" --threads 1 > /dev/null
  done
}

for d in "${names[@]}"; do
  echo "== $d"
  for c in independent ot ot-sinkhorn; do
    "$S" train --data "$d" --model flow --coupling "$c" "${quick[@]}" --out "$out/$d-$c" --overwrite --threads 1 \
      > "$out/$d-$c.log" 2>&1
  done
  "$S" reflow --checkpoint "$out/$d-independent" --pairs "$pairs" "${quick[@]}" --out "$out/$d-rf1" --overwrite \
    --threads 1 > "$out/$d-rf1.log" 2>&1
  "$S" reflow --checkpoint "$out/$d-rf1" --pairs "$pairs" "${quick[@]}" --out "$out/$d-rf2" --overwrite \
    --threads 1 > "$out/$d-rf2.log" 2>&1
  "$S" distill --checkpoint "$out/$d-independent" --method consistency "${quick[@]}" --out "$out/$d-cd" --overwrite \
    --threads 1 > "$out/$d-cd.log" 2>&1
  "$S" train --data "$d" --model consistency "${quick[@]}" --out "$out/$d-ct" --overwrite --threads 1 \
    > "$out/$d-ct.log" 2>&1
  for m in independent ot ot-sinkhorn rf1 rf2; do
    for k in 1 2 4 8 100; do evaluate "$out/$d-$m" euler "$k" "$k"; done
    evaluate "$out/$d-$m" dopri5 dopri5
  done
  for m in cd ct; do
    for k in 1 2 4 8 100; do evaluate "$out/$d-$m" consistency "$k" "$k"; done
  done
done

python3 - "$out" "${names[@]}" <<'EOF'
import json, os, re, sys
out, names = sys.argv[1], sys.argv[2:]
methods = [('independent', 'flow matching (teacher)'), ('ot', 'OT flow matching'),
           ('ot-sinkhorn', 'Sinkhorn OT flow matching'), ('rf1', '2-rectified'), ('rf2', '3-rectified'),
           ('cd', 'consistency distillation'), ('ct', 'consistency training')]
def load(run, name):
    return [json.load(open(f'{run}/e_{name}_s{s}.json')) for s in (0, 1, 2)]
def cell(run, name):
    if not os.path.exists(f'{run}/e_{name}_s0.json'): return '-'
    js = load(run, name)
    m = lambda k: sum(j[k] for j in js) / len(js)
    return f"{m('energy') / m('energy_reference'):.2f} / {m('sliced_w') / m('sliced_w_reference'):.2f}"
def training(log):
    text = open(log).read()
    steps = re.findall(r'(\d+) steps in ([\d.]+) s', text)
    return f'{steps[-1][0]} steps, {float(steps[-1][1]):.0f} s' if steps else '?'
print('| data | method | 1 | 2 | 4 | 8 | 100 | dopri5 | straightness | training |')
print('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for d in names:
    for m, label in methods:
        run = f'{out}/{d}-{m}'
        cells = [cell(run, str(k)) for k in (1, 2, 4, 8, 100)] + [cell(run, 'dopri5')]
        st = '-'
        if os.path.exists(f'{run}/e_dopri5_s0.json'):
            st = f"{sum(j['straightness'] for j in load(run, 'dopri5')) / 3:.5f}"
        print(f"| `{d}` | {label} | " + ' | '.join(cells) + f" | {st} | {training(f'{out}/{d}-{m}.log')} |")
EOF
