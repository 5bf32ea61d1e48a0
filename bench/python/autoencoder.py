"""Workload 9: the image recipe's KL autoencoder (Fashion-MNIST, 1x28x28 to 4x7x7) in PyTorch.

The same network as sdegen::AutoencoderNet (include/sdegen/net/autoencoder.h,
src/net/autoencoder.cpp) at the recipe's options (apps/image_train.cpp, recipe_autoencoder):
channels (16, 32, 64), 4 latent channels, GroupNorm of 8 groups, float32.
  encoder: conv3x3 -> per level a residual block, then (all but the last) a stride-2 conv3x3 ->
    a residual block -> GroupNorm, SiLU, conv3x3 to 2 x 4 channels: mean and log-variance
    (clamped to [-30, 20]);
  decoder: conv3x3 from the latents -> a residual block -> per level, coarsest first, a residual
    block, then (all but the finest) nearest upsampling x2 and a conv3x3 to the finer level's
    channels -> GroupNorm, SiLU, conv3x3 to 1 channel.
  residual block: GroupNorm, SiLU, conv3x3, GroupNorm, SiLU, conv3x3, plus the input (through a
    1x1 conv where the channel count changes).
Modules are created in sdegen's order with PyTorch's default initialisation, so from the same seed
both sides hold the same weights and report the same metrics.
  --phase encode: the posterior of --batch (256) images, eval mode, no gradient; metric: mean of
    the posterior means.
  --phase decode: --batch (256) latents to images; metric: mean of the images.
  --phase train: one Adam step (lr 5e-4) of (|x - decode(z)|^2 + 1e-4 KL) / 784 averaged over a
    batch of --batch (64), z = mean + exp(logvar / 2) eps; metric: the mean loss of the last 20%.
usage: autoencoder.py --phase encode|decode|train [--batch B] [--steps N] [--warmup W] [--threads T]
"""
import torch
from torch import nn
from torch.nn import functional as F

import common


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = conv3x3(cin, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = conv3x3(cout, cout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, h):
        r = self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(h))))))
        return (self.skip(h) if self.skip is not None else h) + r


class Upsample2(nn.Module):
    def forward(self, h):
        return F.interpolate(h, scale_factor=2.0, mode="nearest")


class Autoencoder(nn.Module):
    def __init__(self, channels=(16, 32, 64), latent=4, groups=8, cin=1):
        super().__init__()
        ch = list(channels)
        enc = [conv3x3(cin, ch[0])]
        for i in range(len(ch)):
            enc.append(ResBlock(ch[0] if i == 0 else ch[i - 1], ch[i], groups))
            if i + 1 < len(ch):
                enc.append(conv3x3(ch[i], ch[i], 2))
        enc += [ResBlock(ch[-1], ch[-1], groups), nn.GroupNorm(groups, ch[-1]), nn.SiLU(), conv3x3(ch[-1], 2 * latent)]
        self.encoder = nn.Sequential(*enc)
        dec = [conv3x3(latent, ch[-1]), ResBlock(ch[-1], ch[-1], groups)]
        for i in range(len(ch) - 1, -1, -1):
            dec.append(ResBlock(ch[i], ch[i], groups))
            if i > 0:
                dec += [Upsample2(), conv3x3(ch[i], ch[i - 1])]
        dec += [nn.GroupNorm(groups, ch[0]), nn.SiLU(), conv3x3(ch[0], cin)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x):
        mean, logvar = self.encoder(x).chunk(2, 1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z):
        return self.decoder(z)

    def loss(self, x, kl_weight=1e-4):
        mean, logvar = self.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        se = (x - self.decode(z)).square().flatten(1).sum(1)
        kl = 0.5 * (mean.square() + logvar.exp() - 1 - logvar).flatten(1).sum(1)
        return ((se + kl_weight * kl) / x[0].numel()).mean()


def main():
    common.setup(common.arg("threads", 2, int), dtype=torch.float32, seed=common.arg("seed", 0, int))
    phase = common.arg("phase", "encode")
    model = Autoencoder()
    count = sum(p.numel() for p in model.parameters())
    batch = common.arg("batch", 64 if phase == "train" else 256, int)
    steps = common.arg("steps", 20 if phase == "train" else 10, int)
    warmup = common.arg("warmup", 2, int)
    if phase == "train":
        opt = torch.optim.Adam(model.parameters(), lr=5e-4)
        data = torch.randint(0, 256, (batch * (steps + warmup), 1, 28, 28)).float() / 127.5 - 1
        batches = iter(data.split(batch))

        def step():
            opt.zero_grad()
            loss = model.loss(next(batches))
            loss.backward()
            opt.step()
            return loss.item()

        times, outs = common.timed_steps(step, warmup, steps)
        tail = outs[-max(1, steps // 5):]
        metric = sum(tail) / len(tail)
    else:
        model.eval()
        encode = phase == "encode"
        x = (torch.randint(0, 256, (batch, 1, 28, 28)).float() / 127.5 - 1) if encode else torch.randn(batch, 4, 7, 7)
        out = []

        def step():
            with torch.no_grad():
                out.append(model.encode(x)[0] if encode else model.decode(x))

        times, _ = common.timed_steps(step, warmup, steps)
        metric = out[-1].mean().item()
    common.report("9-autoencoder", common.arg("case", f"{phase}-b{batch}"), times, metric=metric,
                  extra={"params": count})


if __name__ == "__main__":
    main()
