"""Workload 7: the image recipe's U-Net (Fashion-MNIST, 1x28x28, 10 classes) in PyTorch.

The same network as sdegen::UNet (include/sdegen/net/unet.h, src/net/unet*.cpp) at the recipe's
options (apps/image_train.cpp): channels base x {1, 2, 2}, two residual blocks per level,
self-attention at 7x7 and in the middle, GroupNorm(8), dropout 0.1, a 4 x base time embedding
plus a class embedding of 11 rows (the last: no label), zero-initialised output conv. float32.
  --phase train: one step of the flow model: t ~ U[1e-3, 1 - 1e-3], x = t y + (1 - t) eps, the
    velocity target y - eps by plain squared error summed over pixels (the flow model's default
    native weighting), plus the ELBO's end terms in the learned delta (src/model/affine_model.cpp);
    labels dropped to the null class with probability 0.1; Adam lr 5e-4; batch 64 of random
    pixels on the 8-bit grid. `metric`: the mean loss over the last 20% of steps.
  --phase sample: one guided velocity evaluation, guidance 2: the net on [x; x] with [labels;
    null], u + 2 (c - u), batch --batch (default 250), without gradients.
  --device cpu|cuda[:N]: where the model runs; each batch is moved there inside the timed step, and a GPU
    is synchronised before a step's clock stops (as bench/image_flow.h does).
usage: unet.py --phase train|sample [--base 32] [--steps N] [--warmup W] [--batch B] [--threads T] [--device D]
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

import common

PARAMS = {32: 1_624_577, 16: 409_345}  # sdegen's count at 10 classes, 1x28x28 (bench_unet prints it)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, groups=8, dropout=0.1):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.embedding_projection = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None
        self.dropout = dropout

    def forward(self, h, emb):  # emb already through SiLU
        r = self.conv1(F.silu(self.norm1(h))) + self.embedding_projection(emb)[:, :, None, None]
        r = self.conv2(F.dropout(F.silu(self.norm2(r)), self.dropout, self.training))
        return (self.skip(h) if self.skip is not None else h) + r


class Attention(nn.Module):
    def __init__(self, c, heads=1, groups=8):
        super().__init__()
        self.norm, self.qkv, self.projection = nn.GroupNorm(groups, c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        self.heads = heads

    def forward(self, h):
        b, c = h.shape[:2]
        q, k, v = self.qkv(self.norm(h)).reshape(b, 3, self.heads, c // self.heads, -1).unbind(1)
        w = torch.softmax(q.transpose(-1, -2) @ k / math.sqrt(c // self.heads), -1)
        return h + self.projection((v @ w.transpose(-1, -2)).reshape(h.shape))


class Stage(nn.Module):
    """A residual block (cin > 0) with optional attention, then an optional resampling."""

    def __init__(self, cin, cout, emb, attention=False, resample=None, rc=0):
        super().__init__()
        self.res = ResBlock(cin, cout, emb) if cin else None
        self.attention = Attention(cout) if attention else None
        self.resample = nn.Conv2d(rc, rc, 3, stride=2 if resample == "down" else 1, padding=1) if resample else None
        self.up = resample == "up"

    def forward(self, h, emb):
        if self.res is not None:
            h = self.res(h, emb)
        if self.attention is not None:
            h = self.attention(h)
        if self.up:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        return self.resample(h) if self.resample is not None else h


class UNet(nn.Module):
    def __init__(self, cin=1, size=28, base=32, mult=(1, 2, 2), blocks=2, attn=(7,), classes=10):
        super().__init__()
        emb = 4 * base
        self.register_buffer("frequencies", 1000.0 ** torch.linspace(0, 1, base // 2))
        self.time_hidden, self.time_output = nn.Linear(base, emb), nn.Linear(emb, emb)
        self.class_embedding = nn.Embedding(classes + 1, emb)
        self.classes = classes
        self.input_conv = nn.Conv2d(cin, base, 3, padding=1)
        heights = [size >> i for i in range(len(mult))]
        self.down, self.up, skips, c = nn.ModuleList(), nn.ModuleList(), [base], base
        for i, m in enumerate(mult):
            for _ in range(blocks):
                self.down.append(Stage(c, base * m, emb, heights[i] in attn))
                c = base * m
                skips.append(c)
            if i + 1 < len(mult):
                self.down.append(Stage(0, 0, emb, resample="down", rc=c))
                skips.append(c)
        self.middle_res1, self.middle_attention, self.middle_res2 = ResBlock(c, c, emb), Attention(c), ResBlock(c, c, emb)
        for i in reversed(range(len(mult))):
            for b in range(blocks + 1):
                up = i > 0 and b == blocks
                self.up.append(Stage(c + skips.pop(), base * mult[i], emb, heights[i] in attn,
                                     "up" if up else None, base * mult[i]))
                c = base * mult[i]
        self.output_norm, self.output_conv = nn.GroupNorm(8, c), nn.Conv2d(c, cin, 3, padding=1)
        nn.init.zeros_(self.output_conv.weight)
        nn.init.zeros_(self.output_conv.bias)

    def forward(self, x, t, labels):  # labels: [B], -1 for no label
        phase = torch.outer(t, self.frequencies)
        emb = self.time_output(F.silu(self.time_hidden(torch.cat([phase.sin(), phase.cos()], 1))))
        emb = F.silu(emb + self.class_embedding(torch.where(labels < 0, self.classes, labels)))
        h = self.input_conv(x)
        skips = [h]
        for stage in self.down:
            h = stage(h, emb)
            skips.append(h)
        h = self.middle_res2(self.middle_attention(self.middle_res1(h, emb)), emb)
        for stage in self.up:
            h = stage(torch.cat([h, skips.pop()], 1), emb)
        return self.output_conv(F.silu(self.output_norm(h)))


class Flow(nn.Module):
    """sdegen's flow model around the U-Net: linear path a = t, b = 1 - t, velocity prediction."""

    def __init__(self, net, t_eps=1e-3, p_uncond=0.1):
        super().__init__()
        self.net, self.lo, self.hi, self.p_uncond = net, t_eps, 1 - t_eps, p_uncond
        self.log_delta = nn.Parameter(torch.tensor(math.log(0.01)))

    def loss(self, y, labels):
        n, d = y.shape[0], y[0].numel()
        t = self.lo + (self.hi - self.lo) * torch.rand(n, device=y.device)
        eps = torch.randn_like(y)
        labels = torch.where(torch.rand(n, dtype=torch.float64, device=y.device) < self.p_uncond, -1, labels)
        pred = self.net(t[:, None, None, None] * y + (1 - t[:, None, None, None]) * eps, t, labels)
        drift = (pred - (y - eps)).pow(2).sum((1, 2, 3)).mean()
        # End terms: reconstruction at hi (x / a = y + noise of std b / a), prior KL at lo.
        d2, beta = torch.exp(2 * self.log_delta), (1 - self.hi) / self.hi
        recon = -0.5 * d * torch.log(2 * math.pi * d2) - d * beta * beta / (2 * d2)
        s2 = (1 - self.lo) ** 2
        prior = (0.5 * (s2 + (self.lo * y) ** 2 - 1 - math.log(s2))).sum((1, 2, 3)).mean()
        return drift - recon + prior

    def guided_velocity(self, x, t, labels, w):
        n = x.shape[0]
        out = self.net(torch.cat([x, x]), torch.full((2 * n,), t, device=x.device),
                       torch.cat([labels, torch.full_like(labels, -1)]))
        c, u = out[:n], out[n:]
        return u + w * (c - u)


def run(model, workload, case, extra):
    """The two phases workloads 7 and 8 share (bench/image_flow.h on the C++ side): --phase train,
    one Adam step of the flow loss on random 8-bit pixels with labels (metric: the mean loss of the
    last 20% of steps; --losses 1 also reports every loss), or --phase sample, one guided velocity
    call at guidance 2 on 2 x --batch images."""
    phase = common.arg("phase", "train")
    device = torch.device(common.arg("device", "cpu"))
    model.to(device)
    extra["device"] = str(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    losses = []
    if phase == "train":
        steps = common.arg("steps", 20, int)
        warmup = common.arg("warmup", 2, int)
        batch = common.arg("batch", 64, int)
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)
        n = batch * (steps + warmup)
        data = torch.randint(0, 256, (n, 1, 28, 28)).float() / 127.5 - 1
        labels = torch.randint(0, 10, (n,))
        batches = iter(zip(data.split(batch), labels.split(batch)))

        def step():
            y, c = next(batches)
            y, c = y.to(device), c.to(device)
            opt.zero_grad()
            loss = model.loss(y, c)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            sync()
            return losses[-1]
    else:
        steps = common.arg("steps", 10, int)
        warmup = common.arg("warmup", 1, int)
        batch = common.arg("batch", 250, int)
        model.eval()
        labels = torch.randint(0, 10, (batch,)).to(device)  # drawn in the C++ side's order
        x = torch.randn(batch, 1, 28, 28).to(device)

        def step():
            with torch.no_grad():
                model.guided_velocity(x, 0.5, labels, 2.0)
            sync()
    times, outs = common.timed_steps(step, warmup, steps)
    tail = outs[-max(1, steps // 5):]
    metric = sum(tail) / len(tail) if phase == "train" else None
    if phase == "train" and common.arg("losses", 0, int):
        extra["losses"] = losses
    common.report(workload, common.arg("case", f"{phase}{case}"), times, metric=metric, extra=extra)


def main():
    common.setup(common.arg("threads", 2, int), dtype=torch.float32, seed=common.arg("seed", 0, int))
    base = common.arg("base", 32, int)
    model = Flow(UNet(base=base))
    count = sum(p.numel() for p in model.net.parameters())
    assert count == PARAMS.get(base, count), f"U-Net has {count} parameters, sdegen's has {PARAMS[base]}"
    run(model, "7-unet", f"-b{base}", {"params": count})


if __name__ == "__main__":
    main()
