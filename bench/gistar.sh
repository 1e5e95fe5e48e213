#!/usr/bin/env bash
# Gi* against PySAL esda on a ~100k-cell study area: an H3 disk of radius 182 at resolution 8
# around Blackpool (53.8130, -3.0400; 99,919 cells), Poisson(2) counts with a planted cluster,
# k = 1, binary weights. Times, in the same run on the same input:
#   analytic        esda: libpysal k-ring weights + G_Local(y, w, transform="B", star=True,
#                   permutations=0)      ours: StudyArea::new + gi_star
#   99 permutations esda: G_Local(..., permutations=99) on the built weights (z and p_sim; the
#                   faster of n_jobs=1 and n_jobs=-1)      ours: gi_star + permutation_p(99)
# and the largest |z difference|. esda uses numba when it is installed (reported).
#
# Usage: bench/gistar.sh
#   PYTHON (default /tmp/h3venv/bin/python) needs h3, esda, libpysal, numpy and, for esda at
#   its best, numba: pip install h3 esda libpysal numpy numba
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/tmp/h3venv/bin/python}
OUT=${OUT:-target/gistar-bench}
mkdir -p "$OUT"

"$PYTHON" - "$OUT/input.csv" <<'PY'
import sys
import h3
import numpy as np
centre = h3.latlng_to_cell(53.8130, -3.0400, 8)
cells = sorted(h3.grid_disk(centre, 182))
rng = np.random.default_rng(20261128)
values = rng.poisson(2.0, len(cells)).astype(float)
position = {cell: i for i, cell in enumerate(cells)}
for cell in h3.grid_disk(centre, 2):
    values[position[cell]] += rng.poisson(10.0)
with open(sys.argv[1], "w") as out:
    out.write("cell,value\n")
    out.writelines(f"{c},{v:g}\n" for c, v in zip(cells, values))
PY

cargo build --release -q --example gistar_bench -p atlas-analytics
"$PYTHON" bench/gistar_esda.py "$OUT/input.csv" "$OUT/esda.csv" 1 >"$OUT/esda.json"
target/release/examples/gistar_bench "$OUT/input.csv" "$OUT/esda.csv" 1 >"$OUT/ours.json"

"$PYTHON" - "$OUT/esda.json" "$OUT/ours.json" <<'PY'
import json, sys
esda, ours = (json.load(open(path)) for path in sys.argv[1:])
serial, parallel = esda["permutations_99_n_jobs_1_s"], esda["permutations_99_n_jobs_-1_s"]
rows = [
    ("analytic", esda["analytic_s"], ours["analytic_s"]),
    ("99 permutations", min(serial, parallel), ours["permutations_99_s"]),
]
print(f"{ours['cells']} cells, k = 1; esda {esda['esda']} with numba {esda['numba'] or 'not installed'}; "
      f"ours: median of {ours['runs']} runs, {ours['threads']} threads")
print(f"esda: weights {esda['weights_s']:.2f} s + G_Local {esda['g_local_s']:.2f} s; "
      f"99 permutations n_jobs=1 {serial:.2f} s, n_jobs=-1 {parallel:.2f} s")
print(f"ours: permutation_p alone (neighbourhoods built) {ours['permutation_p_only_s'] * 1000:.1f} ms; "
      f"p_sim vs esda's: mean |dp| {ours['mean_abs_dp_sim']:.4f}, max {ours['max_abs_dp_sim']:.3f}")
print(f"| {'':15} | {'esda s':>7} | {'ours s':>7} | {'speed-up':>8} | {'max |dz|':>8} |")
for name, theirs, mine in rows:
    print(f"| {name:15} | {theirs:7.2f} | {mine:7.4f} | {theirs / mine:7.0f}x | {ours['max_abs_dz']:8.1e} |")
PY
