"""Shared helpers of the PyTorch reference benchmarks: threads, timing, memory, reporting.

Every benchmark prints one line per measurement, `RESULT {json}`, with the same keys as the
C++ benchmarks (bench/common.h), so scripts/bench.sh can tabulate both side by side.
"""
import json
import os
import resource
import statistics
import sys
import time

import torch


def setup(threads, dtype=torch.float64, seed=0):
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
    torch.manual_seed(seed)


def timed_steps(step, warmup, steps):
    """Runs step() `warmup` times untimed, then `steps` times; returns (per-step ms, outputs)."""
    for _ in range(warmup):
        step()
    times, outs = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        out = step()
        times.append((time.perf_counter() - t0) * 1e3)
        outs.append(out)
    return times, outs


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def report(workload, case, times_ms, metric=None, extra=None):
    rec = {
        "workload": workload,
        "case": case,
        "impl": "python",
        "median_ms": statistics.median(times_ms),
        "n": len(times_ms),
        "threads": torch.get_num_threads(),
        "rss_mb": peak_rss_mb(),
    }
    if metric is not None:
        rec["metric"] = metric
    if extra:
        rec.update(extra)
    print("RESULT " + json.dumps(rec), flush=True)


def arg(name, default, cast=str):
    """--name value from argv, else the default."""
    flag = "--" + name
    if flag in sys.argv:
        return cast(sys.argv[sys.argv.index(flag) + 1])
    return default


def laplace5(n, generator=None):
    """The paper's 1-D density: five Laplace components, means -8..8, scale 1, equal weights."""
    means = torch.tensor([-8.0, -4.0, 0.0, 4.0, 8.0])
    k = torch.randint(0, 5, (n,), generator=generator)
    e = torch.distributions.Exponential(1.0).sample((n,))
    sign = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    return (means[k] + sign * e).unsqueeze(1)
