"""Workload 8: the image recipe's diffusion transformer (Fashion-MNIST, 1x28x28, 10 classes) in PyTorch.

The same network as sdegen::DiT (include/sdegen/net/dit.h, src/net/dit.cpp) at the recipe's
options (apps/image_train.cpp, recipe_dit): p x p patches by a stride-p conv plus fixed 2-D sin-cos
positions; sinusoidal time features -> Linear -> SiLU -> Linear plus a class embedding of 11 rows
(the last: no label), SiLU once; blocks with adaLN-Zero (LayerNorm without affine, eps 1e-6;
modulation Linear(hidden, 6 hidden), zero), attention by a qkv Linear, softmax(q k^T / sqrt(d)) v
and a projection, MLP fc1 -> GELU(tanh) -> fc2 (ratio 4); a final adaLN (zero) and a zero Linear
to p p C values per token, unpatchified. float32. The modules are built and initialised in
sdegen's order with the same calls (default Linear/Conv/Embedding init, then Xavier, zero or
N(0, 0.02^2) on top), so from the same seed both sides hold the same weights.
  --phase train: one step of the flow model (bench/python/unet.py's Flow: the velocity target by
    squared error summed over pixels plus the ELBO's end terms, labels dropped with probability
    0.1); Adam lr 5e-4; batch 64 of random pixels on the 8-bit grid. `metric`: the mean loss over
    the last 20% of steps.
  --phase sample: one guided velocity evaluation, guidance 2: the net on [x; x] with [labels;
    null], u + 2 (c - u), batch --batch (default 250), without gradients.
usage: dit.py --phase train|sample [--patch 2] [--hidden 128] [--depth 4] [--heads 4] [--steps N]
              [--warmup W] [--batch B] [--threads T] [--losses 1]
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

import common
from unet import Flow, run

# sdegen's count at 10 classes, 1x28x28, mlp ratio 4 (bench_dit prints it), by (patch, hidden, depth, heads).
PARAMS = {(2, 128, 4, 4): 1_255_940, (4, 128, 4, 4): 1_259_024}


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


def xavier_linear(cin, cout):
    l = nn.Linear(cin, cout)
    nn.init.xavier_uniform_(l.weight)
    nn.init.zeros_(l.bias)
    return l


def zero_linear(cin, cout):
    l = nn.Linear(cin, cout)
    nn.init.zeros_(l.weight)
    nn.init.zeros_(l.bias)
    return l


def plain_layer_norm(hidden):
    return nn.LayerNorm(hidden, eps=1e-6, elementwise_affine=False)


def sincos_1d(n, dim):  # [n, dim] for positions 0 .. n - 1, in double as sdegen computes it
    omega = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], 1)


def position_embedding(gh, gw, dim):  # token (i, j), row-major: the row's features, then the column's
    rows, cols = sincos_1d(gh, dim // 2), sincos_1d(gw, dim // 2)
    return torch.cat([rows.repeat_interleave(gw, 0), cols.repeat(gh, 1)], 1)


class Block(nn.Module):
    def __init__(self, hidden, heads, mlp_ratio):
        super().__init__()
        mlp = round(hidden * mlp_ratio)
        self.heads = heads
        self.norm1, self.qkv = plain_layer_norm(hidden), xavier_linear(hidden, 3 * hidden)
        self.projection = xavier_linear(hidden, hidden)
        self.norm2, self.fc1, self.fc2 = plain_layer_norm(hidden), xavier_linear(hidden, mlp), xavier_linear(mlp, hidden)
        self.modulation = zero_linear(hidden, 6 * hidden)

    def forward(self, h, c):
        m = self.modulation(c).chunk(6, 1)
        b, n, hidden = h.shape
        d = hidden // self.heads
        qkv = self.qkv(modulate(self.norm1(h), m[0], m[1])).reshape(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), -1)
        out = h + m[2][:, None] * self.projection((weights @ v).transpose(1, 2).reshape(b, n, hidden))
        mlp = self.fc2(F.gelu(self.fc1(modulate(self.norm2(out), m[3], m[4])), approximate="tanh"))
        return out + m[5][:, None] * mlp


class DiT(nn.Module):
    def __init__(self, cin=1, size=28, patch=2, hidden=128, depth=4, heads=4, mlp_ratio=4.0, classes=10):
        super().__init__()
        self.cin, self.size, self.patch, self.classes = cin, size, patch, classes
        self.patch_embedding = nn.Conv2d(cin, hidden, patch, stride=patch)
        grid = size // patch
        self.register_buffer("position_embedding", position_embedding(grid, grid, hidden).float()[None])
        self.register_buffer("frequencies", 1000.0 ** torch.linspace(0, 1, hidden // 2))
        self.time_hidden, self.time_output = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.class_embedding = nn.Embedding(classes + 1, hidden)
        self.blocks = nn.ModuleList(Block(hidden, heads, mlp_ratio) for _ in range(depth))
        self.final_norm = plain_layer_norm(hidden)
        self.final_modulation = zero_linear(hidden, 2 * hidden)
        self.final_linear = zero_linear(hidden, patch * patch * cin)
        with torch.no_grad():
            nn.init.xavier_uniform_(self.patch_embedding.weight.view(hidden, -1))
            nn.init.zeros_(self.patch_embedding.bias)
            for l in (self.time_hidden, self.time_output):
                nn.init.normal_(l.weight, 0.0, 0.02)
                nn.init.zeros_(l.bias)
            nn.init.normal_(self.class_embedding.weight, 0.0, 0.02)

    def forward(self, x, t, labels):  # labels: [B], -1 for no label
        phase = torch.outer(t, self.frequencies)
        c = self.time_output(F.silu(self.time_hidden(torch.cat([phase.sin(), phase.cos()], 1))))
        c = F.silu(c + self.class_embedding(torch.where(labels < 0, self.classes, labels)))
        h = self.patch_embedding(x).flatten(2).transpose(1, 2) + self.position_embedding
        for block in self.blocks:
            h = block(h, c)
        m = self.final_modulation(c).chunk(2, 1)
        h = self.final_linear(modulate(self.final_norm(h), m[0], m[1]))
        b, p, g = x.shape[0], self.patch, self.size // self.patch
        return h.reshape(b, g, g, p, p, self.cin).permute(0, 5, 1, 3, 2, 4).reshape(b, self.cin, self.size, self.size)


def main():
    common.setup(common.arg("threads", 2, int), dtype=torch.float32, seed=common.arg("seed", 0, int))
    shape = (common.arg("patch", 2, int), common.arg("hidden", 128, int), common.arg("depth", 4, int),
             common.arg("heads", 4, int))
    model = Flow(DiT(patch=shape[0], hidden=shape[1], depth=shape[2], heads=shape[3]))
    count = sum(p.numel() for p in model.net.parameters())
    assert count == PARAMS.get(shape, count), f"DiT has {count} parameters, sdegen's has {PARAMS[shape]}"
    run(model, "8-dit", f"-p{shape[0]}", {"params": count})


if __name__ == "__main__":
    main()
