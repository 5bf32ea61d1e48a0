#!/usr/bin/env bash
# Real tables and the 2-D toys: every model with its recipe (sdegen compare --budget 0) beside the
# classical baselines (full-covariance Gaussian, Gaussian mixture, kernel density estimate), as
# held-out log-likelihood per row. This is the README's table of "Your own data".
#   scripts/tables.sh [OUT] [TABLE...]       (default runs/tables; every table and toy)
# The tables are the CSV files Debian's python3-sklearn ships (iris, wine, breast_cancer,
# diabetes, boston, digits): the package is downloaded (apt-get download, not installed) and
# scripts/tables.py turns them into dequantised train.csv / test.csv splits (80/20, seed 0).
# Environment: SDEGEN_TABLE_MODELS (default: every model), SDEGEN_BUILD_DIR.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SDEGEN_BUILD_DIR:-$root/build}"
out="${1:-$root/runs/tables}"
shift || true
names=("$@")
[ "${#names[@]}" -gt 0 ] || names=(iris wine diabetes boston breast_cancer digits moons pinwheel checkerboard 8gaussians)
models="${SDEGEN_TABLE_MODELS:-sde ode flow diffusion score vdm}"

[ -x "$build/sdegen" ] || bash "$root/scripts/setup.sh"
data="$out/data"
if [ ! -f "$data/iris/train.csv" ]; then
  mkdir -p "$out/deb"
  if ! ls "$out/deb"/python3-sklearn_*.deb >/dev/null 2>&1; then
    (cd "$out/deb" && apt-get download python3-sklearn >/dev/null) ||
      { echo "tables: cannot download python3-sklearn (apt-get update first?)"; exit 1; }
  fi
  dpkg-deb --fsys-tarfile "$out"/deb/python3-sklearn_*.deb |
    tar -x -C "$out/deb" ./usr/lib/python3/dist-packages/sklearn/datasets/data/
  python3 "$root/scripts/tables.py" "$out/deb/usr/lib/python3/dist-packages/sklearn/datasets/data" "$data"
fi

for name in "${names[@]}"; do
  run="$out/$name"
  if [ -f "$data/$name/train.csv" ]; then
    args=(--data "$data/$name/train.csv" --test "$data/$name/test.csv")
  else
    args=(--data "$name")  # a built-in 2-D toy: 1000 training points, 8000 test points
  fi
  echo "== $name"
  # shellcheck disable=SC2086  # the model list is word-split on purpose
  "$build/sdegen" compare "${args[@]}" --models $models --budget 0 --no-plots --overwrite --out "$run" |
    tail -n +2 | grep -v "^  " || true
done

python3 - "$out" "${names[@]}" <<'PY'
import json, os, sys
out, names = sys.argv[1], sys.argv[2:]
cols = None
rows = []
for name in names:
    path = os.path.join(out, name, "compare.json")
    if not os.path.exists(path):
        continue
    rec = json.load(open(path))
    cells, best_model, best_peer = {}, None, None
    for m in rec["models"]:
        ll = m["log_likelihood"]
        if ll is None and m["model"] == "sde" and m["elbo"] is not None:
            ll = m["elbo"]  # its ELBO: a lower bound on the model's likelihood
            cells["sde"] = "%.2f (ELBO)" % ll
        elif ll is None:
            cells[m["model"]] = "untrusted"
        else:
            cells[m["model"]] = "%.2f" % ll
        if ll is not None and (best_model is None or ll > best_model):
            best_model = ll
    for b in rec["baselines"]:
        cells[b["model"]] = "%.2f" % b["log_likelihood"]
        best_peer = b["log_likelihood"] if best_peer is None else max(best_peer, b["log_likelihood"])
    if cols is None:
        cols = [m["model"] for m in rec["models"]] + [b["model"] for b in rec["baselines"]]
    margin = "%+.2f" % (best_model - best_peer) if best_model is not None and best_peer is not None else "-"
    rows.append((name, rec["n_train"], rec["n_val"], rec["n_eval"], cells, margin))
print("\n| data | train / val / test rows | " + " | ".join(cols) + " | best model - best baseline |")
print("|---|---|" + "---|" * len(cols) + "---|")
for name, nt, nv, ne, cells, margin in rows:
    print("| %s | %d / %d / %d | " % (name, nt, nv, ne) + " | ".join(cells.get(c, "-") for c in cols) +
          " | %s |" % margin)
PY
