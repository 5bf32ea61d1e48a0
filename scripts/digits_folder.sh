#!/usr/bin/env bash
# A labelled folder of PNG images for load_image_folder (and a quick image-model check): the 8x8
# handwritten digits that Debian's python3-sklearn ships, written as OUT/train/<digit>/<row>.png
# and OUT/test/<digit>/<row>.png (80/20, seed 0; pixels 0..16 scaled to 0..255).
#   scripts/digits_folder.sh [OUT]            (default runs/digits)
# The package is downloaded (apt-get download, not installed), as scripts/tables.sh does, and
# scripts/digits_folder.py writes the PNGs with the standard library alone. A second run with
# OUT/train already there does nothing; remove OUT to rebuild it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/runs/digits}"
csv=usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz

if [ -d "$out/train" ]; then
  echo "digits_folder: $out/train exists; remove $out to rebuild it"
  exit 0
fi
mkdir -p "$out/deb"
if ! ls "$out/deb"/python3-sklearn_*.deb >/dev/null 2>&1; then
  (cd "$out/deb" && apt-get download python3-sklearn >/dev/null) ||
    { echo "digits_folder: cannot download python3-sklearn (apt-get update first?)"; exit 1; }
fi
dpkg-deb --fsys-tarfile "$out"/deb/python3-sklearn_*.deb | tar -x -C "$out/deb" "./$csv"
# Written beside OUT and moved into place, so that an interrupted run leaves no half folder.
rm -rf "$out/new"
python3 "$root/scripts/digits_folder.py" "$out/deb/$csv" "$out/new"
mv "$out/new/train" "$out/new/test" "$out/" && rmdir "$out/new"
