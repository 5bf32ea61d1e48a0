"""Workload 4 reference: exact log-likelihood of 10,000 2-D points (a grid over [-3, 3]^2)
through the probability-flow ODE of a flow-matching model (MLP [x, t] -> 3 x 64 (silu) -> 2,
the deterministic weights of bench/common.h), from t = 1 back to 0 with Dormand-Prince 5(4),
rtol = atol = 1e-5, and the exact divergence by one autograd.grad per dimension. The solver is
a line-by-line port of src/solver/dopri5.cpp (FSAL, Hairer's starting step, one RMS error norm
over the whole augmented state), so both take the same steps.

usage: likelihood.py [--n 10000] [--steps N] [--threads T]
"""
import math

import torch

import common
from train_step import deterministic_init, mlp

A = [[], [1 / 5], [3 / 40, 9 / 40], [44 / 45, -56 / 15, 32 / 9],
     [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
     [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]]
C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1]
B = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]
E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40]


def rms(v):
    return v.square().mean().sqrt().item()


def dopri5(f, x0, t0, t1, rtol=1e-5, atol=1e-5, safety=0.9, min_factor=0.2, max_factor=10.0):
    direction, span = (1.0 if t1 > t0 else -1.0), abs(t1 - t0)
    x, t = x0, t0
    k1 = f(t, x)
    nfe = 1
    scale = atol + rtol * x.abs()
    d0, d1 = rms(x / scale), rms(k1 / scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, span)
    f1 = f(t + direction * h0, x + k1 * (direction * h0))
    nfe += 1
    d2 = rms((f1 - k1) / scale) / h0
    d = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if d <= 1e-15 else (0.01 / d) ** 0.2
    h = min(100 * h0, h1, span)
    just_rejected = False
    while True:
        remaining = abs(t1 - t)
        h = min(h, remaining)
        last = h == remaining
        dt = direction * h
        k = [k1]
        for i in range(1, 6):
            k.append(f(t + C[i] * dt, x + sum(k[j] * A[i][j] for j in range(i)) * dt))
        x_new = x + sum(k[j] * B[j] for j in range(6) if B[j] != 0) * dt
        k7 = f(t + dt, x_new)
        nfe += 6
        err_vec = (sum(k[j] * E[j] for j in range(6) if E[j] != 0) + k7 * E[6]) * dt
        err = rms(err_vec / (atol + rtol * torch.maximum(x.abs(), x_new.abs())))
        if err > 1:
            just_rejected = True
            h *= max(min_factor, safety * err ** -0.2)
            continue
        x, t, k1 = x_new, (t1 if last else t + dt), k7
        if last:
            return x, nfe
        factor = max_factor if err == 0 else safety * err ** -0.2
        factor = min(max(factor, min_factor), max_factor)
        if just_rejected:
            factor = min(factor, 1.0)
        just_rejected = False
        h *= factor


def log_likelihood(net, x):
    n, d = x.shape

    def augmented(t, z):
        with torch.enable_grad():
            xs = z[:, :d].detach().requires_grad_()
            v = net(torch.cat([xs, torch.full((n, 1), t)], 1))
            div = torch.zeros(n)
            for i in range(d):
                div = div + torch.autograd.grad(v[:, i].sum(), xs, retain_graph=True)[0][:, i]
        return torch.cat([v.detach(), div.detach().unsqueeze(1)], 1)

    z, nfe = dopri5(augmented, torch.cat([x, torch.zeros(n, 1)], 1), 1.0, 0.0)
    x0, ell = z[:, :d], z[:, d]
    prior = -0.5 * (x0 * x0).sum(1) - 0.5 * d * math.log(2 * math.pi)
    return prior + ell, nfe


def main():
    common.setup(common.arg("threads", 2, int), seed=common.arg("seed", 0, int))
    n = common.arg("n", 10000, int)
    reps = common.arg("steps", 3, int)
    net = mlp(2, 2, width=64, depth=3, activation="silu")
    deterministic_init(net)
    side = math.ceil(math.sqrt(n))
    g = torch.linspace(-3.0, 3.0, side)
    x = torch.stack(torch.meshgrid(g, g, indexing="ij"), 2).reshape(-1, 2)[:n].contiguous()
    out = {}

    def run():
        with torch.no_grad():
            out["lp"], out["nfe"] = log_likelihood(net, x)

    times, _ = common.timed_steps(run, 1, reps)
    common.report("4-likelihood", f"dopri5-n{n}", times, metric=out["lp"].mean().item(),
                  extra={"nfe": out["nfe"]})


if __name__ == "__main__":
    main()
