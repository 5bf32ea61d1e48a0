#!/usr/bin/env bash
# The README's four-way table ("Latent diffusion and the DiT", Fashion-MNIST): the KL autoencoder
# (3000 steps), then four class-conditional flows at one wall-clock budget each, pixel U-Net and
# pixel DiT, latent U-Net and latent DiT, and their figures: fd against fd_floor and class
# accuracy at 1000 images (25 Heun steps, 49 evaluations, guidance 2), the sampling time of those
# 1000 images, the autoencoder's reconstruction fd and PSNR, and each run's peak memory.
#   scripts/latent_images.sh [OUT]
# The budget: the pixel U-Net's 3000 steps of the image recipe (about 15 minutes at one thread
# beside another run on this 2-core machine); the others take as many steps as fit in the same
# time at their step times measured the same way (README): pixel DiT (patch 4) 3600, latent
# U-Net (base 32) 18000 and (base 64) 7500, latent DiT (patch 1) at width 128 3600 and at width
# 64 (the latent recipe's) 11000. Runs go two at a time at one thread each, about an hour in
# all, then the evaluations (about 20 minutes more).
set -euo pipefail
out=${1:-runs/latent_images}
bin=${SDEGEN_BIN:-build/sdegen}
export OMP_WAIT_POLICY=passive
mkdir -p "$out"
run() {  # NAME ARGS...: a training run with its peak memory (KiB) and wall time in NAME.time
  local name=$1; shift
  /usr/bin/time -o "$out/$name.time" -f "%M %e" "$bin" train --data fashion-mnist --threads 1 --out "$out/$name" \
    "$@" > "$out/$name.log" 2>&1
}
run ae --model autoencoder
"$bin" eval --checkpoint "$out/ae" --threads 1 --out "$out/ae_eval.json" --samples-out "$out/ae_recon.png"
run px_unet --steps 3000 &
run px_dit --net dit --patch 4 --steps 3600 &
wait
run lat_unet32 --latent "$out/ae" --base-channels 32 --steps 18000 &
run lat_dit128 --latent "$out/ae" --net dit --width 128 --steps 3600 &
wait
run lat_unet64 --latent "$out/ae" --base-channels 64 --steps 7500 &
run lat_dit --latent "$out/ae" --net dit --steps 11000 &
wait
for name in px_unet px_dit lat_unet32 lat_unet64 lat_dit128 lat_dit; do
  "$bin" eval --checkpoint "$out/$name" --n 1000 --no-likelihood --threads 1 --out "$out/$name.json" \
    --samples-out "$out/$name.png"
done
python3 - "$out" <<'PY'
import csv, json, sys
out = sys.argv[1]
def step_time(name):  # the median seconds per step between logged rows, intervals that validated left out
    rows = [(int(r['step']), float(r['seconds']), bool(r.get('val_nelbo')))
            for r in csv.DictReader(open(f'{out}/{name}/log.csv'))]
    steps = sorted((t1 - t0) / (s1 - s0) for (s0, t0, _), (s1, t1, v1) in zip(rows, rows[1:]) if not v1)
    return steps[len(steps) // 2]
print('| model | steps | training s | s / step | peak MiB | fd | fd / fd_floor | class accuracy | s / 1000 images |')
print('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for name in ('px_unet', 'px_dit', 'lat_unet32', 'lat_unet64', 'lat_dit128', 'lat_dit'):
    j = json.load(open(f'{out}/{name}.json'))
    kib, wall = open(f'{out}/{name}.time').read().split()[-2:]
    log = list(csv.DictReader(open(f'{out}/{name}/log.csv')))
    g = j['guidance'][0]
    print(f"| {name} | {log[-1]['step']} | {float(log[-1]['seconds']):.0f} | {step_time(name):.3f} | "
          f"{int(kib) / 1024:.0f} | {j['fd']:.2f} | {j['fd'] / j['fd_floor']:.2f} | {j['class_accuracy']:.3f} | "
          f"{g['seconds']:.0f} |")
    if 'reconstruction' in j:
        r = j['reconstruction']
        print(f"|   its autoencoder | | | | | {r['fd']:.2f} (recon) | {r['fd'] / r['fd_floor']:.2f} | | PSNR {r['psnr']:.2f} dB |")
PY
