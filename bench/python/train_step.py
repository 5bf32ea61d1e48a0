"""Workload 1: one training step of each 1-D model at the reference settings, in PyTorch.

MLP [x, t] -> 64 -> tanh -> 64 -> tanh -> d (raw time concatenated), batch 125, Adam lr 1e-3,
laplace5 data, float64 (the C++ library's dtype). Each loss is the same computation as the C++
model's loss() (src/model/affine_model.cpp, src/objective/*.cpp): the same time sampling, the
same loss terms including the learned log_delta reconstruction term and the prior KL.

usage: train_step.py --model flow|vdm|diffusion|sde|ode [--steps N] [--warmup W] [--threads T]
  workload 2 (flow matching on moons): --data moons --width 256 --depth 3 --batch 512
  --activation silu --workload 2-flow-2d --case 3x256-b512
Prints RESULT lines (common.py); `metric` is the mean training loss over the last 20% of steps.
"""
import math

import torch
from torch import nn

import common


ACTIVATIONS = {"tanh": nn.Tanh, "silu": nn.SiLU, "relu": nn.ReLU}


def mlp(d_in, d_out, width=64, depth=2, activation="tanh"):
    """[x, t] -> (Linear -> act) x depth -> Linear, as sdegen::Mlp with a raw time input."""
    layers, n = [], d_in + 1
    for _ in range(depth):
        layers += [nn.Linear(n, width), ACTIVATIONS[activation]()]
        n = width
    return nn.Sequential(*layers, nn.Linear(n, d_out))


def deterministic_init(net):
    """The same weights as bench/common.h's deterministic_init: parameter k, entry j gets
    sin(0.37 j + 1.3 k) / sqrt(fan_in), so both implementations solve the same ODE."""
    with torch.no_grad():
        for k, p in enumerate(net.parameters()):
            fan_in = p.shape[1] if p.dim() == 2 else p.shape[0]
            j = torch.arange(p.numel(), dtype=p.dtype)
            p.copy_((torch.sin(0.37 * j + 1.3 * k) / math.sqrt(fan_in)).reshape(p.shape))


def net_at(net, x, t):
    return net(torch.cat([x, t.unsqueeze(1)], 1))


def kl_to_std_normal(mean, std):
    s2 = (std * std).expand_as(mean)
    return (0.5 * (s2 + mean * mean - 1.0 - torch.log(s2))).sum(1)


def reconstruction(d, beta, delta):
    """E log N(y; x, delta^2) for x ~ N(y, beta^2): -d/2 log(2 pi delta^2) - d beta^2 / (2 delta^2)."""
    d2 = delta * delta
    return -0.5 * d * torch.log(2 * math.pi * d2) - d * beta * beta / (2 * d2)


class Affine(nn.Module):
    """flow (linear, velocity), diffusion (vp, noise), vdm (loglinear, noise, ELBO weighting)."""

    def __init__(self, kind, d=1, t_eps=1e-3, **net):
        super().__init__()
        self.kind, self.d = kind, d
        self.net = mlp(d, d, **net)
        self.log_delta = nn.Parameter(torch.tensor(math.log(0.01)))
        if kind == "flow":  # a = t, b = 1 - t: both ends singular
            self.lo, self.hi = t_eps, 1 - t_eps
        elif kind == "diffusion":  # vp: b(1) = 0
            self.lo, self.hi = 0.0, 1 - t_eps
        else:  # loglinear, lambda in [-10, 12]
            self.lo, self.hi = 0.0, 1.0

    def ab(self, t):
        if self.kind == "flow":
            return t, 1 - t
        if self.kind == "diffusion":  # log a = -1/4 s^2 (B1 - B0) - 1/2 s B0, s = 1 - t
            s = 1 - t
            log_a = -0.25 * s * s * (20.0 - 0.1) - 0.5 * s * 0.1
            return torch.exp(log_a), torch.sqrt(-torch.expm1(2 * log_a))
        lam = -10.0 + 22.0 * t
        return torch.sqrt(torch.sigmoid(lam)), torch.sqrt(torch.sigmoid(-lam))

    def loss(self, y):
        n = y.shape[0]
        if self.kind == "vdm":  # antithetic: one offset, evenly spaced
            u = torch.remainder(torch.rand(1) + torch.arange(n) / n, 1.0)
        else:
            u = torch.rand(n)
        t = self.lo + (self.hi - self.lo) * u
        eps = torch.randn_like(y)
        a, b = self.ab(t)
        a, b = a.unsqueeze(1), b.unsqueeze(1)
        pred = net_at(self.net, a * y + b * eps, t)
        if self.kind == "flow":  # velocity target a' y + b' eps = y - eps, plain squared error
            drift = ((pred - (y - eps)) ** 2).sum(1).mean()
        elif self.kind == "diffusion":  # noise target, plain squared error
            drift = ((pred - eps) ** 2).sum(1).mean()
        else:  # the ELBO's drift term 1/2 lambda' |eps - eps_hat|^2, lambda' = 22
            drift = (self.hi - self.lo) * (0.5 * 22.0 * ((pred - eps) ** 2).sum(1)).mean()
        lo, hi = torch.tensor(self.lo), torch.tensor(self.hi)
        a_lo, b_lo = self.ab(lo)
        a_hi, b_hi = self.ab(hi)
        delta = torch.exp(self.log_delta)
        recon = reconstruction(self.d, b_hi / a_hi, delta)
        prior = kl_to_std_normal(a_lo * y, b_lo)
        return drift - recon + prior.mean()


class Ode(nn.Module):
    """Continuous normalizing flow dx/dt = F(x, t); loss -log p(y) by 100 midpoint steps from
    t = 1 back to 0 with the exact divergence, backpropagating through every step."""

    def __init__(self, d=1, steps=100):
        super().__init__()
        self.d, self.steps = d, steps
        self.net = mlp(d, d)

    def field(self, x, t):
        if not x.requires_grad:
            x = x.requires_grad_()
        f = net_at(self.net, x, t.expand(x.shape[0]))
        div = 0.0
        for i in range(self.d):
            div = div + torch.autograd.grad(f[:, i].sum(), x, create_graph=True)[0][:, i]
        return f, div

    def loss(self, y):
        n, h = y.shape[0], -1.0 / self.steps
        x, ell = y.clone(), torch.zeros(n)
        for k in range(self.steps):
            t = torch.tensor(1.0 + k * h)
            f1, _ = self.field(x, t)
            f2, div2 = self.field(x + 0.5 * h * f1, t + 0.5 * h)
            x, ell = x + h * f2, ell + h * div2
        # ell = int_1^0 div F dt = -int_0^1 div F dt
        log_prior = -0.5 * (x * x).sum(1) - 0.5 * self.d * math.log(2 * math.pi)
        return -(log_prior + ell).mean()


class Sde(nn.Module):
    """The general model (src/model/sde_model.cpp): one inference MLP with 2d outputs gives A and
    B, alpha(y, t) = t y + t (1 - t) A, beta(y, t) = (1 - t + t b1) exp(t (1 - t) B); a drift
    MLP F(x, t); sigma(t) = exp(piecewise-linear log sigma on equally spaced knots); learned b1
    and delta. Loss: the negative ELBO with antithetic times, the reconstruction and prior
    terms evaluated through the network at t = 1 and t = 0. alpha' and beta' by double backward
    (autograd.grad with create_graph), as a notebook would."""

    def __init__(self, d=1, knots=16, b1=0.01):
        super().__init__()
        self.d, self.knots = d, knots
        self.inference, self.F = mlp(d, 2 * d), mlp(d, d)
        self.log_b1 = nn.Parameter(torch.tensor(math.log(b1)))
        self.log_delta = nn.Parameter(torch.tensor(math.log(0.01)))
        # sigma^2 = 2 beta |beta'| of the path beta = 1 - t (1 - b1), as the C++ model starts.
        k = torch.linspace(0.0, 1.0, knots)
        self.log_sigma_knots = nn.Parameter(0.5 * torch.log(2.0 * (1.0 - k * (1 - b1)) * (1 - b1)))

    def sigma(self, t):
        pos = t.clamp(0.0, 1.0) * (self.knots - 1)
        i = pos.floor().clamp(0, self.knots - 2).long()
        w = pos - i
        lo, hi = self.log_sigma_knots[i], self.log_sigma_knots[i + 1]
        return torch.exp(lo + w * (hi - lo))

    def alpha_beta(self, y, t):
        tt = t.unsqueeze(1)
        b1 = torch.exp(self.log_b1)
        AB = net_at(self.inference, y, t)
        A, B = AB[:, :self.d], AB[:, self.d:]
        alpha = tt * y + tt * (1 - tt) * A
        beta = (1 - tt + tt * b1) * torch.exp(tt * (1 - tt) * B)
        return alpha, beta

    def loss(self, y):
        n = y.shape[0]
        d = self.d
        t = torch.remainder(torch.rand(1) + torch.arange(n) / n, 1.0).requires_grad_()
        eps = torch.randn_like(y)
        alpha, beta = self.alpha_beta(y, t)
        # Rows are independent, so the gradient of a column's sum is each row's time derivative.
        dalpha = torch.stack([torch.autograd.grad(alpha[:, i].sum(), t, create_graph=True)[0]
                              for i in range(d)], 1)
        dbeta = torch.stack([torch.autograd.grad(beta[:, i].sum(), t, create_graph=True)[0]
                             for i in range(d)], 1)
        t = t.detach()
        sig = self.sigma(t).unsqueeze(1)
        x = alpha + beta * eps
        g = dalpha + (dbeta - sig * sig / (2 * beta)) * eps
        drift = ((net_at(self.F, x, t) - g) ** 2 / (2 * sig * sig)).sum(1)
        a1, b1 = self.alpha_beta(y, torch.ones(n))
        delta2 = torch.exp(2 * self.log_delta)
        recon = (-0.5 * d * torch.log(2 * math.pi * delta2)
                 - ((y - a1) ** 2 + b1 ** 2).sum(1) / (2 * delta2))
        a0, b0 = self.alpha_beta(y, torch.zeros(n))
        prior = kl_to_std_normal(a0, b0)
        return (drift - recon + prior).mean()


def make(kind, d=1, **net):
    if kind == "ode":
        return Ode(d)
    if kind == "sde":
        return Sde(d)
    return Affine(kind, d, **net)


def moons(n):
    """FFJORD's moons as sdegen's make_moons: two unit half circles scaled by 2, uniform angle,
    Gaussian noise 0.2."""
    t = math.pi * torch.rand(n)
    upper = torch.rand(n) < 0.5
    x = torch.where(upper, 2 * torch.cos(t) - 1, 1 - 2 * torch.cos(t))
    y = torch.where(upper, 2 * torch.sin(t) - 0.2, 0.8 - 2 * torch.sin(t))
    return torch.stack([x, y], 1) + 0.2 * torch.randn(n, 2)


def main():
    kind = common.arg("model", "flow")
    common.setup(common.arg("threads", 2, int), seed=common.arg("seed", 0, int))
    defaults = {"flow": 2000, "diffusion": 1000, "vdm": 1000, "sde": 500, "ode": 20}
    steps = common.arg("steps", defaults[kind], int)
    warmup = common.arg("warmup", max(2, steps // 10), int)
    batch = common.arg("batch", 125, int)
    data_name = common.arg("data", "laplace5")
    d = 2 if data_name == "moons" else 1
    model = make(kind, d, width=common.arg("width", 64, int), depth=common.arg("depth", 2, int),
                 activation=common.arg("activation", "tanh"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = batch * (steps + warmup)
    data = moons(n) if data_name == "moons" else common.laplace5(n)
    batches = iter(data.split(batch))

    def step():
        y = next(batches)
        opt.zero_grad()
        loss = model.loss(y)
        loss.backward()
        opt.step()
        return loss.item()

    times, losses = common.timed_steps(step, warmup, steps)
    tail = losses[-max(1, steps // 5):]
    common.report(common.arg("workload", "1-train-step"), common.arg("case", kind), times,
                  metric=sum(tail) / len(tail))


if __name__ == "__main__":
    main()
