"""Workload 3 reference: 20 Heun steps (40 evaluations) of a 2-D flow-matching model's
probability-flow ODE from t = 0 to 1, MLP [x, t] -> 3 x 128 (silu) -> 2 with the deterministic
weights of bench/common.h; latency at batch 1, throughput at batch 10,000. Under torch.no_grad(),
as a notebook would sample.

usage: sample.py --batch 1|10000 [--steps N] [--warmup W] [--threads T]
"""
import torch

import common
from train_step import deterministic_init, mlp


def heun(net, x, steps=20):
    h = 1.0 / steps
    for k in range(steps):
        t = torch.full((x.shape[0], 1), k * h)
        d1 = net(torch.cat([x, t], 1))
        d2 = net(torch.cat([x + h * d1, t + h], 1))
        x = x + (0.5 * h) * (d1 + d2)
    return x


def main():
    common.setup(common.arg("threads", 2, int), seed=common.arg("seed", 0, int))
    batch = common.arg("batch", 1, int)
    reps = common.arg("steps", 300 if batch == 1 else 5, int)
    warmup = common.arg("warmup", 30 if batch == 1 else 1, int)
    net = mlp(2, 2, width=128, depth=3, activation="silu")
    deterministic_init(net)
    i = torch.arange(batch, dtype=torch.float64).unsqueeze(1)
    x0 = 1.5 * torch.sin(1.7 * i + 0.3 * torch.arange(2, dtype=torch.float64) + 0.5)
    out = {}

    def run():
        with torch.no_grad():
            out["x"] = heun(net, x0)

    times, _ = common.timed_steps(run, warmup, reps)
    common.report("3-sample", f"heun20-b{batch}", times, metric=out["x"][:, 0].mean().item(),
                  extra={"nfe": 40})


if __name__ == "__main__":
    main()
