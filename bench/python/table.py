"""Tabulates the RESULT lines of scripts/bench.sh: per workload and case, the median over
rounds of each implementation's median time, the ratio PyTorch / C++ (above 1: C++ faster),
peak resident memory, and each side's metric; then workload 5's evaluations per solver.

usage: table.py LOG [--markdown]
"""
import json
import os
import statistics
import sys
from collections import OrderedDict, defaultdict


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                rows.append(json.loads(line[len("RESULT "):]))
    return rows


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def fmt_num(v):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def main():
    rows = load(sys.argv[1])
    groups = OrderedDict()
    for r in rows:
        if r["workload"].startswith("5-"):
            continue
        key = (r["workload"], r["case"])
        groups.setdefault(key, defaultdict(list))[r["impl"]].append(r)
    header = ["workload", "case", "C++ ms", "PyTorch ms", "ratio", "C++ RSS MB", "Py RSS MB",
              "C++ metric", "Py metric", "rounds"]
    lines = []
    for (workload, case), impls in groups.items():
        cpp, py = impls.get("cpp", []), impls.get("python", [])
        if not py and " (" in case:  # a C++ variant of a case, e.g. "flow (fused prototype)"
            py = groups.get((workload, case.split(" (")[0]), {}).get("python", [])
        med = lambda rs, k: statistics.median(r[k] for r in rs) if rs and all(k in r for r in rs) else None
        c_ms, p_ms = med(cpp, "median_ms"), med(py, "median_ms")
        ratio = f"{p_ms / c_ms:.2f}x" if c_ms and p_ms else "-"
        metric_key = "gflops" if workload.startswith("6-") else "metric"
        with_rss = workload.startswith(("1-", "2-", "7-", "8-"))
        lines.append([workload, case, fmt_ms(c_ms), fmt_ms(p_ms), ratio,
                      fmt_num(med(cpp, "rss_mb")) if with_rss else "",
                      fmt_num(med(py, "rss_mb")) if with_rss else "",
                      fmt_num(med(cpp, metric_key)), fmt_num(med(py, metric_key)),
                      str(min(len(cpp), len(py)))])
    threads = sorted({r["threads"] for r in rows})
    print(f"threads: {threads} (torch intra-op; OMP/OpenBLAS set equally), machine: {os.cpu_count()} "
          f"logical CPUs, load average at the end: {os.getloadavg()[0]:.2f}")
    print("ratio = PyTorch ms / C++ ms (above 1: C++ faster); metric = mean training loss over the "
          "last 20% of steps (1, 2, 7, 8 train), mean of sample x[0] (3), mean log-likelihood (4), GFLOP/s (6)")
    print_table(header, lines)
    oracle = [r for r in rows if r["workload"].startswith("5-")]
    if oracle:
        print()
        print(f"workload 5: evaluations to reach distance < {oracle[0]['tol']} from the dopri5 "
              "(rtol 1e-10) reference (-1: not reached within 64 steps)")
        cases = OrderedDict()
        for r in oracle:
            data, schedule, solver = r["case"].split("/")
            cases.setdefault((data, schedule), {})[solver] = r["nfe"]
        solvers = list(OrderedDict.fromkeys(r["case"].split("/")[2] for r in oracle))
        print_table(["data", "schedule"] + solvers,
                    [[d, s] + [str(v.get(k, "-")) for k in solvers] for (d, s), v in cases.items()])


def print_table(header, lines):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    row = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(row(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for l in lines:
        print(row(l))


if __name__ == "__main__":
    main()
