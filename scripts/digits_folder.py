#!/usr/bin/env python3
"""Labelled PNG folders of the 8x8 handwritten digits that Debian's python3-sklearn ships
(sklearn/datasets/data/digits.csv.gz: 1797 rows of 64 pixel values 0..16, then the digit), for
`scripts/digits_folder.sh` and sdegen's load_image_folder.

Pixels are scaled from 0..16 to 0..255 by round(v * 255 / 16) (halves up), so 0 stays black and
16 becomes white. The rows are shuffled with a fixed seed and split 80/20 (as scripts/tables.py
splits its tables): OUT/train/<digit>/<row>.png and OUT/test/<digit>/<row>.png, where <row> is
the zero-padded row number in digits.csv.gz, so that a file can be traced back to its row.

usage: digits_folder.py DIGITS_CSV_GZ OUT_DIR [--seed 0]
Standard library only: zlib and struct write the grey 8-bit PNGs.
"""
import gzip
import os
import random
import struct
import sys
import zlib


def png_grey(width, height, pixels):
    """An 8-bit greyscale PNG of `pixels` (row-major bytes)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(pixels[y * width:(y + 1) * width]) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) +
            chunk(b"IEND", b""))


def read_digits(path):
    rows = []
    with gzip.open(path, "rt") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = [int(float(v)) for v in line.split(",")]
            if len(fields) != 65 or not all(0 <= v <= 16 for v in fields[:64]) or not 0 <= fields[64] <= 9:
                sys.exit("%s: line %d is not 64 pixels in 0..16 and a digit" % (path, n))
            rows.append(([(v * 255 + 8) // 16 for v in fields[:64]], fields[64]))
    return rows


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 0
    rows = read_digits(src)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = len(order) // 5
    counts = {}
    for k, i in enumerate(order):
        split = "test" if k < n_test else "train"
        pixels, digit = rows[i]
        folder = os.path.join(out, split, str(digit))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "%04d.png" % i), "wb") as f:
            f.write(png_grey(8, 8, pixels))
        counts[(split, digit)] = counts.get((split, digit), 0) + 1
    for split in ("train", "test"):
        per_class = [counts.get((split, d), 0) for d in range(10)]
        print("%-5s %4d images; per digit 0..9: %s" % (split, sum(per_class), " ".join(map(str, per_class))))


if __name__ == "__main__":
    main()
