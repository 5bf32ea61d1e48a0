#!/usr/bin/env bash
# The README's few-step table for images ("Few-step generation", Fashion-MNIST): from the flow
# teacher of the image recipe, a 2-rectified flow (one reflow on 3000 pairs drawn with 12 guided
# Heun steps, warm-started from the teacher) and a consistency distillation (18 levels, one guided
# Heun step of the teacher), each 2000 steps of batch 32 at lr 5e-4 with a 0.999 weight average;
# then fd against fd_floor at 1000 images for the students at 1, 2 and 4 evaluations, and for
# the teacher with Euler at 1, 2 and 4 steps and with the default 25 Heun steps (49 evaluations);
# then the distillation once more from the teacher's weights (--init teacher).
#   scripts/few_step_images.sh TEACHER [OUT]     (TEACHER: a run of `sdegen train --data fashion-mnist`)
# The first two students train side by side at one thread each (about 40 minutes on this 2-core
# machine), the third after them (about 50 more).
set -euo pipefail
teacher=${1:?usage: scripts/few_step_images.sh TEACHER [OUT]}
out=${2:-runs/few_step_images}
bin=${SDEGEN_BIN:-build/sdegen}
export OMP_WAIT_POLICY=passive
mkdir -p "$out"
common=(--steps 2000 --batch 32 --lr 5e-4 --ema 0.999 --grad-clip 1 --threads 1 --log-every 100)
"$bin" reflow --checkpoint "$teacher" --out "$out/rf" --pairs 3000 --solver heun --solver-steps 12 "${common[@]}" \
  > "$out/rf.log" 2>&1 &
"$bin" distill --checkpoint "$teacher" --out "$out/cd" "${common[@]}" > "$out/cd.log" 2>&1 &
wait
# Consistency distillation once more, from the teacher's weights (distill --init teacher).
"$bin" distill --checkpoint "$teacher" --out "$out/cdt" --init teacher "${common[@]}" > "$out/cdt.log" 2>&1
for k in 1 2 4; do
  "$bin" eval --checkpoint "$out/cdt" --n 1000 --sample-steps "$k" --threads 2 \
    --out "$out/cdt_e$k.json" --samples-out "$out/cdt_e$k.png"
  "$bin" eval --checkpoint "$out/rf" --n 1000 --sample-solver euler --sample-steps "$k" --threads 2 \
    --out "$out/rf_e$k.json" --samples-out "$out/rf_e$k.png"
  "$bin" eval --checkpoint "$out/cd" --n 1000 --sample-steps "$k" --threads 2 \
    --out "$out/cd_e$k.json" --samples-out "$out/cd_e$k.png"
  "$bin" eval --checkpoint "$teacher" --n 1000 --sample-solver euler --sample-steps "$k" --no-likelihood \
    --threads 2 --out "$out/t_e$k.json"
done
"$bin" eval --checkpoint "$teacher" --n 1000 --no-likelihood --threads 2 --out "$out/t_e50.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print('| model | evaluations | fd | fd / fd_floor | class accuracy | seconds for 1000 images |')
print('| --- | --- | --- | --- | --- | --- |')
for name, label, ks in (('t', 'teacher (flow, guidance 2)', ('1', '2', '4', '50')),
                        ('rf', '2-rectified flow', ('1', '2', '4')),
                        ('cd', 'consistency distillation', ('1', '2', '4')),
                        ('cdt', 'consistency distillation, --init teacher', ('1', '2', '4'))):
    for k in ks:
        j = json.load(open(f'{out}/{name}_e{k}.json'))
        g = j['guidance'][0]
        print(f"| {label} | {g['nfe']} | {j['fd']:.2f} | {j['fd'] / j['fd_floor']:.2f} | "
              f"{j['class_accuracy']:.3f} | {g['seconds']:.1f} |")
PY
