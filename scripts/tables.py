#!/usr/bin/env python3
"""Real tables for `scripts/tables.sh`: the small datasets that Debian's python3-sklearn ships as
CSV files (iris, wine, breast cancer, diabetes, Boston housing, digits), turned into plain numeric
tables and split 80/20 into train.csv and test.csv with a fixed seed.

Labels and targets are dropped: the task is density estimation of the features. Every column is
dequantised: values recorded on a grid (integers, one decimal, a binary flag) are spread
uniformly over their grid cell, of the width of the column's smallest gap between distinct
values. Without it a density model, a mixture or a kernel estimate can put unbounded density on
the grid points and report a log-likelihood that says nothing about the data.

usage: tables.py SKLEARN_DATA_DIR OUT_DIR [--seed 0]
Standard library only.
"""
import csv
import gzip
import os
import random
import sys


def rows_of(path, skip, sep=",", drop_last=True):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = [line.strip() for line in f if line.strip()]
    out = []
    for line in lines[skip:]:
        fields = line.split(sep) if sep else line.split()
        if drop_last:
            fields = fields[:-1]
        out.append([float(v) for v in fields])
    return out


TABLES = {
    # name: (file, header lines to skip, separator, drop the last column (label or target))
    "iris": ("iris.csv", 1, ",", True),
    "wine": ("wine_data.csv", 1, ",", True),
    "breast_cancer": ("breast_cancer.csv", 1, ",", True),
    "diabetes": ("diabetes_data_raw.csv.gz", 0, None, False),
    "boston": ("boston_house_prices.csv", 2, ",", True),
    "digits": ("digits.csv.gz", 0, ",", True),
}


def dequantise(rows, rng):
    d = len(rows[0])
    for j in range(d):
        values = sorted(set(r[j] for r in rows))
        gaps = [b - a for a, b in zip(values, values[1:]) if b - a > 0]
        width = min(gaps) if gaps else 1.0
        for r in rows:
            r[j] += (rng.random() - 0.5) * width
    return rows


def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(v) for v in r])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    data_dir, out_dir = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    for name, (file, skip, sep, drop_last) in TABLES.items():
        rng = random.Random(seed)
        rows = dequantise(rows_of(os.path.join(data_dir, file), skip, sep, drop_last), rng)
        rng.shuffle(rows)
        n_test = len(rows) // 5
        header = ["x%d" % (j + 1) for j in range(len(rows[0]))]
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        write(os.path.join(out_dir, name, "train.csv"), header, rows[n_test:])
        write(os.path.join(out_dir, name, "test.csv"), header, rows[:n_test])
        print("%-14s %5d train, %4d test rows, %2d columns" % (name, len(rows) - n_test, n_test, len(rows[0])))


if __name__ == "__main__":
    main()
