"""Workload 6 reference: GEMM throughput at workload 2's sizes, [batch, width] x [width, width]
in float64, through torch.mm (reported as the time) and numpy.dot (in `numpy_gflops`), with the
GEMM-bound time of one training step (bench/gemm.cpp explains the count).

usage: gemm.py --width 256 --batch 512 [--depth 3] [--steps N] [--threads T]
"""
import os
import time

import common


def main():
    threads = common.arg("threads", 2, int)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    import numpy as np
    import torch
    common.setup(threads, seed=common.arg("seed", 0, int))
    width, batch = common.arg("width", 256, int), common.arg("batch", 512, int)
    depth, dim, reps = common.arg("depth", 3, int), 2, common.arg("steps", 2000, int)
    a, b = torch.randn(batch, width), torch.randn(width, width)
    c = torch.empty(batch, width)
    times, _ = common.timed_steps(lambda: torch.mm(a, b, out=c), 20, reps)
    an, bn = a.numpy(), b.numpy()
    cn = np.empty((batch, width))
    ntimes, _ = common.timed_steps(lambda: np.dot(an, bn, out=cn), 20, reps)
    ms, nms = sorted(times)[len(times) // 2], sorted(ntimes)[len(ntimes) // 2]
    flop = 2.0 * batch * width * width
    gflops = flop / (ms * 1e6)
    w, B, i = float(width), float(batch), float(dim + 1)
    forward = 2 * B * (i * w + (depth - 1) * w * w + w * dim)
    step_flops = 3 * forward - 2 * B * i * w
    common.report("6-gemm", f"{batch}x{width}x{width}", times,
                  extra={"gflops": gflops, "numpy_gflops": flop / (nms * 1e6),
                         "ceiling_ms": step_flops / (gflops * 1e6)})


if __name__ == "__main__":
    main()
