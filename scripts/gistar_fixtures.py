#!/usr/bin/env python3
"""Regenerates the Getis-Ord Gi* reference fixtures that atlas-analytics is checked against.

Each fixture is a study area of H3 cells (a hexagonal disk at resolution 8 around Blackpool), a
value per cell and a k-ring size; the expected z-scores and two-sided normal p-values come from
PySAL esda's G_Local(y, w, transform="B", star=True) on binary k-ring weights over the same cells,
and its permutation pseudo p-values (999 permutations, seed 12345) are kept for a statistical
comparison (random draws differ between numpy and Rust, so these cannot match exactly).

Usage (in a venv with `pip install h3 esda libpysal`):
    python scripts/gistar_fixtures.py crates/analytics/tests/fixtures
"""
import json
import random
import sys
from pathlib import Path

import esda
import h3
import libpysal
import numpy as np

CENTRE = h3.latlng_to_cell(53.8130, -3.0400, 8)


def study_area(radius):
    return sorted(h3.grid_disk(CENTRE, radius))


def weights(cells, k):
    inside = set(cells)
    neighbours = {c: [n for n in h3.grid_disk(c, k) if n != c and n in inside] for c in cells}
    return libpysal.weights.W(neighbours, silence_warnings=True)


def fixture(name, cells, values, k):
    y = np.asarray(values, dtype=float)
    result = esda.G_Local(y, weights(cells, k), transform="B", star=True, permutations=0)
    simulated = esda.G_Local(y, weights(cells, k), transform="B", star=True, permutations=999, seed=12345, n_jobs=1)
    return {
        "name": name,
        "k": k,
        "esda": esda.__version__,
        "cells": cells,
        "values": values,
        "z": [float(z) for z in result.Zs],
        "p_two_sided": [float(2 * p) for p in result.p_norm],
        "p_sim_999": [float(p) for p in simulated.p_sim],
    }


def main(directory):
    rng = random.Random(20261128)
    cells = study_area(8)  # 217 cells
    poisson = [float(v) for v in np.random.default_rng(1).poisson(2.0, len(cells))]
    planted = [float(rng.randint(0, 3)) for _ in cells]
    for cell in h3.grid_disk(CENTRE, 1):
        planted[cells.index(cell)] += 25.0
    sparse = [float(rng.choice([0, 0, 0, 0, 1, 2, 7])) for _ in cells]
    fixtures = [
        fixture("poisson_k1", cells, poisson, 1),
        fixture("planted_cluster_k1", cells, planted, 1),
        fixture("planted_cluster_k2", cells, planted, 2),
        fixture("mostly_zeros_k3", cells, sparse, 3),
    ]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for item in fixtures:
        (out / f"gistar_{item['name']}.json").write_text(json.dumps(item, indent=1) + "\n")
        print(f"wrote gistar_{item['name']}.json ({len(item['cells'])} cells, k={item['k']})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "crates/analytics/tests/fixtures")
