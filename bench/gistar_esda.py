#!/usr/bin/env python3
"""PySAL esda's side of the Gi* benchmark (bench/gistar.sh runs it; see there for the command).

Reads a CSV of `cell,value` rows (H3 cells as hex strings, header line first), builds binary
k-ring weights exactly as scripts/gistar_fixtures.py does (each cell's k-ring within the study
area, itself excluded; G_Local's star=True adds it back) and times:

  analytic      libpysal weights construction + G_Local(y, w, transform="B", star=True,
                permutations=0)
  permutations  G_Local(y, w, transform="B", star=True, permutations=99, seed=12345) on the
                weights already built, once with n_jobs=1 and once with n_jobs=-1 (all cores)

esda runs its conditional randomisation through numba when numba is installed; the numba
functions are compiled on a small warm-up area first so compilation is not timed. Writes
`z,p_sim` lines (the analytic z-score and the n_jobs=1 run's pseudo p-value, in the CSV's order)
to OUT and a JSON line of timings to stdout.

With `analytic` after K only the analytic run is timed (p_sim is written as nan); bench/hotspots.sh
uses it beside the hotspots endpoint.

Usage: python bench/gistar_esda.py INPUT.csv OUT [K [analytic]]
"""
import json
import sys
import time

import esda
import h3
import libpysal
import numpy as np

try:
    import numba

    NUMBA = numba.__version__
except ImportError:
    NUMBA = None


def read(path):
    cells, values = [], []
    with open(path) as handle:
        next(handle)
        for line in handle:
            cell, value = line.strip().split(",")
            cells.append(cell)
            values.append(float(value))
    return cells, np.asarray(values, dtype=float)


def weights(cells, k):
    inside = set(cells)
    neighbours = {c: [n for n in h3.grid_disk(c, k) if n != c and n in inside] for c in cells}
    return libpysal.weights.W(neighbours, silence_warnings=True)


def g_local(y, w, permutations, n_jobs=1):
    return esda.G_Local(
        y, w, transform="B", star=True, permutations=permutations, seed=12345, n_jobs=n_jobs
    )


def main(path, out, k, permutations=True):
    cells, y = read(path)
    # Warm-up: numba compiles crand's kernels on first use; keep that out of the timings.
    small = sorted(h3.grid_disk(cells[len(cells) // 2], 4))
    for n_jobs in (1, -1):
        g_local(np.arange(len(small), dtype=float), weights(small, k), 9, n_jobs)

    start = time.perf_counter()
    w = weights(cells, k)
    built = time.perf_counter()
    analytic = g_local(y, w, 0)
    done = time.perf_counter()
    timings = {
        "cells": len(cells),
        "k": k,
        "esda": esda.__version__,
        "numba": NUMBA,
        "weights_s": built - start,
        "g_local_s": done - built,
        "analytic_s": done - start,
    }
    p_sim = np.full(len(cells), np.nan)
    for n_jobs in (1, -1) if permutations else ():
        start = time.perf_counter()
        simulated = g_local(y, w, 99, n_jobs)
        timings[f"permutations_99_n_jobs_{n_jobs}_s"] = time.perf_counter() - start
        # The simulation's own z-scores must match the analytic ones.
        assert np.allclose(simulated.Zs, analytic.Zs, rtol=0, atol=1e-12)
        if n_jobs == 1:
            p_sim = simulated.p_sim
    with open(out, "w") as handle:
        handle.writelines(f"{z!r},{p!r}\n" for z, p in zip(analytic.Zs.tolist(), p_sim.tolist()))
    print(json.dumps(timings))


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]) if len(sys.argv) > 3 else 1,
        permutations=len(sys.argv) <= 4 or sys.argv[4] != "analytic",
    )
