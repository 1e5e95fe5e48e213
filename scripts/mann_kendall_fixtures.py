#!/usr/bin/env python3
"""Regenerates the Mann-Kendall reference fixture that atlas-analytics' trend test is checked
against: several series (rising, falling, flat, tied, noisy, short) with pymannkendall's
original_test S, z and two-sided p.

Usage (in a venv with `pip install pymannkendall`):
    python scripts/mann_kendall_fixtures.py crates/analytics/tests/fixtures/mann_kendall.json
"""
import json
import sys

import numpy as np
import pymannkendall as mk


def main(path):
    rng = np.random.default_rng(20261128)
    series = {
        "rising": [float(v) for v in range(12)],
        "falling_with_noise": [float(20 - v + rng.normal(0, 2)) for v in range(16)],
        "flat_noise": [float(v) for v in rng.normal(0, 1, 24)],
        "ties": [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 1.0, 4.0, 4.0, 5.0, 5.0, 5.0],
        "zero_scores_then_rise": [0.0] * 8 + [1.5, 2.5, 3.0, 4.2],
        "weekly_counts": [float(v) for v in rng.poisson(3.0, 52)],
        "short": [2.0, 1.0, 3.0, 5.0],
    }
    fixtures = []
    for name, values in series.items():
        result = mk.original_test(values)
        fixtures.append({
            "name": name,
            "series": values,
            "s": float(result.s),
            "z": float(result.z),
            "p": float(result.p),
        })
    with open(path, "w") as out:
        json.dump({"pymannkendall": mk.__version__, "fixtures": fixtures}, out, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
