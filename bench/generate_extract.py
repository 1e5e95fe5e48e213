#!/usr/bin/env python3
"""Writes a synthetic canonical extract of N rows with lat/lon locations in Blackpool,
Lancashire and Rochdale, for the ingestion benchmark. Usage: generate_extract.py N FILE"""
import random
import sys

rows, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261128)
# Boxes well inside each partnership, so every row is placed.
boxes = [(53.80, 53.83, -3.05, -3.02), (53.74, 53.78, -2.72, -2.66), (53.60, 53.63, -2.18, -2.13)]
kinds = ["incident", "referral", "missing_episode", "assessment", "intelligence"]
indicators = ["missing", "substance_misuse", "older_associate", "gifts_money", "online_contact", "hotel_taxi"]
with open(path, "w") as out:
    out.write("subject,record_kind,occurred_on,lat,lon,location_role,indicators,age,sex\n")
    for row in range(rows):
        south, north, west, east = boxes[row % 3]
        out.write(
            f"{rng.getrandbits(256):064x},{kinds[row % 5]},2024-{1 + row % 12:02d}-{1 + row % 28:02d},"
            f"{rng.uniform(south, north):.5f},{rng.uniform(west, east):.5f},incident,"
            f"{indicators[row % 6]};{indicators[(row + 2) % 6]},{10 + row % 8},{'FM'[row % 2]}\n"
        )
