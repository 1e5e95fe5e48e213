#!/usr/bin/env bash
# The hotspots endpoint beside PySAL esda on the largest study area: North Yorkshire (E06000065)
# at resolution 9 (88,496 cells), RECORDS synthetic records uploaded first (clustered in its
# towns, spread over the county). In the same run, on the same counts:
#   ours  GET /api/v1/partnerships/E06000065/hotspots?resolution=9&k=1&adjust=none&permutations=0
#         (Gi* on raw counts, randomisation p-values, false-discovery control, the JSON answer of
#         every cell), time to the last byte with curl, warm: best of five after a first request
#   esda  libpysal k-ring weights + G_Local(y, w, transform="B", star=True, permutations=0) on
#         the answer's own cell values (bench/gistar_esda.py), and the largest |z difference|
# and the same for the default (population-adjusted) hotspots, the same hotspots as GeoJSON, the
# grid and the emerging-hotspot answers at resolution 9 (no anchor).
# Usage: bench/hotspots.sh   (PostgreSQL at $ADMIN_URL; PYTHON with h3, esda, libpysal, numba:
#        python3 -m venv /tmp/h3venv && /tmp/h3venv/bin/pip install h3 esda libpysal numba)
set -euo pipefail
DB=atlas_bench_hotspots
PORT=${PORT:-18195}
RECORDS=${RECORDS:-200000}
PYTHON=${PYTHON:-/tmp/h3venv/bin/python}
CODE=E06000065
source "$(dirname "$0")/common.sh"
export ATLAS__SERVER__RATE_LIMIT_PER_SECOND=100000 ATLAS__SERVER__RATE_LIMIT_BURST=100000 \
       ATLAS__INGEST__MAX_UPLOAD_BYTES=2000000000
import_partnerships $CODE
agency=$($atlas agency add --kind police --name "Bench Police" --partnership $CODE 2>/dev/null)
uploader=$(issue_token --sub bench-uploader --role agency_analyst --partnership $CODE --agency "$agency")
analyst=$(issue_token --sub bench-analyst --role partnership_analyst --partnership $CODE)

# RECORDS records over 2024 at points inside the county (cells wholly inside its boundary at
# resolution 9): half around five towns, half anywhere.
psql "$DATABASE_URL" -Atc "SELECT cell FROM partnership_cells
                           WHERE partnership_code = '$CODE' AND resolution = 9 AND whole" > "$WORK/inside.txt"
"$PYTHON" - "$RECORDS" "$WORK/inside.txt" "$WORK/extract.csv" <<'PY'
import random, sys
import h3
rows, path = int(sys.argv[1]), sys.argv[3]
inside = [h3.int_to_str(int(line)) for line in open(sys.argv[2])]
known = set(inside)
rng = random.Random(20261130)
towns = [(53.99, -1.54), (54.28, -0.40), (54.34, -1.43), (53.96, -2.02), (54.49, -0.61)]
kinds = ["incident", "referral", "missing_episode", "assessment", "intelligence"]
indicators = ["missing", "substance_misuse", "older_associate", "gifts_money", "online_contact", "hotel_taxi"]
def point(row):
    while row % 2:
        lat, lon = towns[row % 5]
        lat, lon = rng.gauss(lat, 0.02), rng.gauss(lon, 0.03)
        if h3.latlng_to_cell(lat, lon, 9) in known:
            return lat, lon
    return h3.cell_to_latlng(inside[rng.randrange(len(inside))])
with open(path, "w") as out:
    out.write("subject,record_kind,occurred_on,lat,lon,indicators,age,sex\n")
    for row in range(rows):
        lat, lon = point(row)
        out.write(f"{rng.randrange(150_000):064x},{kinds[row % 5]},2024-{1 + row % 12:02d}-{1 + row % 28:02d},"
                  f"{lat:.6f},{lon:.6f},{indicators[row % 6]},{10 + row % 8},{'FM'[row % 2]}\n")
PY

start_server
status=$(curl -s -o "$WORK/upload.json" -w '%{http_code}' -H "content-type: text/csv" \
         -H "Authorization: Bearer $uploader" -T "$WORK/extract.csv" -X POST \
         "http://127.0.0.1:$PORT/api/v1/extracts")
if [ "$status" != 201 ]; then echo "upload answered $status: $(head -c 600 "$WORK/upload.json")" >&2; exit 1; fi
accepted=$(python3 -c "import json; print(json.load(open('$WORK/upload.json'))['rows_accepted'])")

fetch() { # path-and-query file -> seconds to the last byte
  curl -fs -o "$2" -w '%{time_total}\n' -H "Authorization: Bearer $analyst" \
       "http://127.0.0.1:$PORT/api/v1/partnerships/$CODE/$1"
}
best_of_five() { # path-and-query -> the fastest of five requests after a first one
  fetch "$1" /dev/null >/dev/null
  for _ in 1 2 3 4 5; do fetch "$1" /dev/null; done | sort -n | head -n 1
}
PERIOD="from=2024-01-01&to=2024-12-31"
HOT="hotspots?resolution=9&k=1&adjust=none&permutations=0&$PERIOD"
fetch "$HOT" "$WORK/hotspots.json" >/dev/null
hot=$(best_of_five "$HOT")
adjusted=$(best_of_five "hotspots?resolution=9&$PERIOD")
grid=$(best_of_five "grid?resolution=9&$PERIOD")
emerging=$(best_of_five "emerging?resolution=9&adjust=none&$PERIOD")
geojson=$(best_of_five "$HOT&format=geojson")
bytes=$(stat -c %s "$WORK/hotspots.json")
stop_server

# esda on the answer's own cells and values, in the answer's order.
python3 - "$WORK/hotspots.json" "$WORK/input.csv" "$WORK/ours_z.txt" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as values, open(sys.argv[3], "w") as zs:
    values.write("cell,value\n")
    for cell in answer["cells"]:
        values.write(f"{cell['cell']},{cell['value']}\n")
        zs.write(f"{cell['z']!r}\n")
PY
"$PYTHON" bench/gistar_esda.py "$WORK/input.csv" "$WORK/esda.csv" 1 analytic > "$WORK/esda.json"
"$PYTHON" - "$WORK/esda.json" "$WORK/esda.csv" "$WORK/ours_z.txt" "$hot" "$grid" "$emerging" \
  "$bytes" "$accepted" "$adjusted" "$geojson" <<'PY'
import json, sys
timings = json.load(open(sys.argv[1]))
theirs = [float(line.split(",")[0]) for line in open(sys.argv[2])]
ours = [float(line) for line in open(sys.argv[3])]
hot, grid, emerging = (float(x) for x in sys.argv[4:7])
bytes_, accepted, adjusted = int(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9])
geojson = float(sys.argv[10])
assert len(theirs) == len(ours), (len(theirs), len(ours))
dz = max(abs(a - b) for a, b in zip(theirs, ours))
esda_s = timings["analytic_s"]
print(f"records accepted in North Yorkshire: {accepted}; study area at resolution 9: {timings['cells']} cells")
print(f"esda {timings['esda']} (numba {timings['numba'] or 'not installed'}): weights {timings['weights_s']:.2f} s "
      f"+ G_Local {timings['g_local_s']:.2f} s = {esda_s:.2f} s")
print(f"hotspots endpoint, warm, best of 5, to the last byte ({bytes_ / 1e6:.1f} MB): {hot:.3f} s "
      f"-> {esda_s / hot:.1f}x esda (target >= 50x); largest |z difference| {dz:.1e}")
print(f"hotspots endpoint by default (adjusted for population), warm, best of 5: {adjusted:.3f} s")
print(f"the same hotspots as GeoJSON (format=geojson), warm, best of 5: {geojson:.3f} s")
print(f"grid endpoint, resolution 9, warm, best of 5: {grid:.3f} s")
print(f"emerging endpoint, resolution 9, adjust=none, warm, best of 5: {emerging:.3f} s")
PY
