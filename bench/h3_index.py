#!/usr/bin/env python3
"""The Python h3 package indexing the same million points as the Rust criterion benchmark
(crates/ingest/benches/indexing.rs) at resolution 9. Usage: python bench/h3_index.py
(in a venv with `pip install h3`)."""
import time

import h3

points = [(53.6 + (i % 1000) * 0.0004, -3.0 + (i // 1000) * 0.0008) for i in range(1_000_000)]
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    cells = [h3.latlng_to_cell(lat, lon, 9) for lat, lon in points]
    best = min(best, time.perf_counter() - start)
print(f"h3 {h3.__version__}: 1,000,000 points to resolution-9 cells in {best:.3f} s (best of 5)")
