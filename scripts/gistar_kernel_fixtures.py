#!/usr/bin/env python3
"""Regenerates the distance-decay kernel Gi* fixture that atlas-analytics is checked against.

esda's G_Local binarises or row-standardises weights, so it cannot score kernel weights itself.
This script therefore computes the general Gi* of Ord and Getis (1995), star form,

    z_i = (sum_j w_ij x_j - mean * W_i) / (s * sqrt((n * S_i - W_i^2) / (n - 1))),

with numpy, independently of the Rust code, and first proves that implementation on binary
weights against esda's G_Local(transform="B", star=True) (it must agree within 1e-10 or the
script stops). Kernels, with d the grid distance and h = k + 1: triangular 1 - d/h, gaussian
exp(-(d/h)^2 / 2).

Usage (in a venv with `pip install h3 esda libpysal`):
    python scripts/gistar_kernel_fixtures.py crates/analytics/tests/fixtures/gistar_kernels.json
"""
import json
import math
import sys

import esda
import h3
import libpysal
import numpy as np

CENTRE = h3.latlng_to_cell(53.8130, -3.0400, 8)


def kernel_weight(kernel, d, k):
    ratio = d / (k + 1)
    if kernel == "uniform":
        return 1.0
    if kernel == "triangular":
        return 1.0 - ratio
    return math.exp(-0.5 * ratio * ratio)


def gi_star(cells, values, k, kernel):
    index = {cell: i for i, cell in enumerate(cells)}
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = x.mean()
    s = math.sqrt((x * x).mean() - mean * mean)
    z = []
    for cell in cells:
        w = np.zeros(n)
        for neighbour in h3.grid_disk(cell, k):
            if neighbour in index:
                w[index[neighbour]] = kernel_weight(kernel, h3.grid_distance(cell, neighbour), k)
        total, squares = w.sum(), (w * w).sum()
        spread = s * math.sqrt((n * squares - total * total) / (n - 1))
        z.append(float((w @ x - mean * total) / spread))
    return z


def main(path):
    rng = np.random.default_rng(7)
    cells = sorted(h3.grid_disk(CENTRE, 7))  # 169 cells
    values = [float(v) for v in rng.poisson(3.0, len(cells))]
    for cell in h3.grid_disk(CENTRE, 1):
        values[cells.index(cell)] += 15.0
    # Prove the implementation against esda on binary weights first.
    for k in (1, 2):
        inside = set(cells)
        neighbours = {c: [m for m in h3.grid_disk(c, k) if m != c and m in inside] for c in cells}
        w = libpysal.weights.W(neighbours, silence_warnings=True)
        reference = esda.G_Local(np.asarray(values), w, transform="B", star=True, permutations=0).Zs
        ours = gi_star(cells, values, k, "uniform")
        worst = max(abs(a - b) for a, b in zip(ours, reference))
        assert worst < 1e-10, f"numpy Gi* differs from esda by {worst} at k={k}"
    cases = [
        {"kernel": kernel, "k": k, "z": gi_star(cells, values, k, kernel)}
        for kernel in ("triangular", "gaussian")
        for k in (1, 2, 3)
    ]
    with open(path, "w") as out:
        json.dump({"esda_checked": esda.__version__, "cells": cells, "values": values, "cases": cases}, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
