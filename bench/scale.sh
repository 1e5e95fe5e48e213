#!/usr/bin/env bash
# National scale: RECORDS case records (default 5 M) spread over PARTNERSHIPS partnerships
# (default 30: the partnership with most land neighbours in England, its neighbours, then others),
# uploaded by one agency serving them all. Measures the cold load of each partnership's records
# (the first grid request after start, less the warm grid), the server's memory per cached
# record, warm grid latency, and the comparison of the partnership with most neighbours cold
# (its members loaded) and warm. Usage: bench/scale.sh   (PostgreSQL at $ADMIN_URL; release
# build; takes some minutes). Figures go to docs/performance.md with the date and this command.
set -euo pipefail
DB=atlas_bench_scale
PORT=${PORT:-18194}
RECORDS=${RECORDS:-5000000}
PARTNERSHIPS=${PARTNERSHIPS:-30}
TOKEN_TTL=4h
source "$(dirname "$0")/common.sh"
export ATLAS__SERVER__RATE_LIMIT_PER_SECOND=100000 ATLAS__SERVER__RATE_LIMIT_BURST=100000 \
       ATLAS__INGEST__MAX_UPLOAD_BYTES=4000000000 ATLAS__INGEST__BODY_DEADLINE_SECS=7200 \
       ATLAS__PROBLEM_PROFILES__SCHEDULE=false
$atlas reference import --boundaries data/reference/utla_boundaries_england.geojson \
  --neighbours data/reference/utla_neighbours_england.csv >/dev/null

# The partnership with most neighbours, its neighbours, then others by code, up to PARTNERSHIPS.
centre=$(psql "$DATABASE_URL" -Atc "SELECT partnership_code FROM partnership_neighbours
                                    GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
psql "$DATABASE_URL" -Atc "
  SELECT code FROM (
    SELECT '$centre' AS code, 0 AS rank
    UNION SELECT neighbour_code, 1 FROM partnership_neighbours WHERE partnership_code = '$centre'
    UNION SELECT code, 2 FROM partnerships) chosen
  GROUP BY code ORDER BY min(rank), code LIMIT $PARTNERSHIPS" > "$WORK/partnerships.txt"
flags=$(sed 's/^/--partnership /' "$WORK/partnerships.txt" | tr '\n' ' ')
# shellcheck disable=SC2086
agency=$($atlas agency add --kind health --name "Bench Trust" $flags 2>/dev/null)
uploader=$(issue_token --sub bench-uploader --role agency_analyst --partnership "$centre" --agency "$agency")
analyst=$(issue_token --sub bench-analyst --role partnership_analyst --partnership "$centre")

# RECORDS rows at LSOA reference points of the chosen partnerships, 2023 and 2024, one child in
# four seen again.
python3 - "$RECORDS" "$WORK/partnerships.txt" "$WORK/extract.csv" <<'PY'
import csv, random, sys
rows, chosen, path = int(sys.argv[1]), set(open(sys.argv[2]).read().split()), sys.argv[3]
points = [(float(r["lat"]), float(r["lon"])) for r in csv.DictReader(open("data/reference/lsoa_centroids_england.csv"))
          if r["utla_code"] in chosen]
rng = random.Random(20261130)
kinds = ["incident", "referral", "missing_episode", "assessment", "intelligence"]
with open(path, "w") as out:
    out.write("subject,record_kind,occurred_on,lat,lon,age,sex\n")
    for row in range(rows):
        lat, lon = points[rng.randrange(len(points))]
        out.write(f"{rng.randrange(rows * 3 // 4):064x},{kinds[row % 5]},{2023 + row % 2}-{1 + row % 12:02d}-{1 + row % 28:02d},"
                  f"{lat + rng.uniform(-0.002, 0.002):.5f},{lon + rng.uniform(-0.002, 0.002):.5f},{10 + row % 8},{'FM'[row % 2]}\n")
PY

rss_kb() { awk '/VmRSS/ {print $2}' /proc/$server/status; }
start_server
started=$(date +%s.%N)
status=$(curl -s -o "$WORK/upload.json" -w '%{http_code}' -H "content-type: text/csv" \
         -H "Authorization: Bearer $uploader" -T "$WORK/extract.csv" -X POST \
         "http://127.0.0.1:$PORT/api/v1/extracts")
if [ "$status" != 201 ]; then echo "upload answered $status: $(head -c 600 "$WORK/upload.json")" >&2; exit 1; fi
uploaded=$(echo "$(date +%s.%N) - $started" | bc)
stop_server
psql "$DATABASE_URL" -qc "VACUUM ANALYZE"
stored=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM case_records")

get() { curl -fs -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer ${token:-$analyst}" \
        "http://127.0.0.1:$PORT/api/v1/partnerships/$1"; }
GRID="grid?resolution=8&from=2024-01-01&to=2024-12-31"

# Cold loads: each partnership's first grid, less its warm grid; memory after all are cached.
start_server
base_kb=$(rss_kb)
total_cold=0; total_warm=0
while read -r code; do
  token=$(issue_token --sub "analyst-$code" --role partnership_analyst --partnership "$code")
  cold=$(get "$code/$GRID")
  warm=$(for _ in 1 2 3; do get "$code/$GRID"; done | median)
  total_cold=$(echo "$total_cold + $cold" | bc); total_warm=$(echo "$total_warm + $warm" | bc)
done < "$WORK/partnerships.txt"
token=""
cached_kb=$(rss_kb)
grid_warm=$(for _ in 1 2 3 4 5; do get "$centre/$GRID"; done | median)
stop_server

# The comparison of the partnership with most neighbours: cold (a fresh server, loading every
# member row by row: the snapshots the loads above wrote are deleted first) and warm.
psql "$DATABASE_URL" -qc "DELETE FROM record_snapshots"
start_server
comparison_cold=$(get "$centre/comparison")
comparison_warm=$(for _ in 1 2 3 4 5; do get "$centre/comparison"; done | median)
stop_server

members=$(psql "$DATABASE_URL" -Atc "SELECT count(*) + 1 FROM partnership_neighbours WHERE partnership_code = '$centre'")
load=$(echo "$total_cold - $total_warm" | bc)
echo "case records stored:                  $stored in $PARTNERSHIPS partnerships"
echo "upload of all records (one request):  ${uploaded} s"
echo "cold load, all partnerships:          ${load} s  ($(echo "scale=3; $load * 1000000 / $stored" | bc) s per million records)"
echo "server memory for the cached records: $(( (cached_kb - base_kb) / 1024 )) MiB  ($(echo "scale=1; ($cached_kb - $base_kb) * 1024 / $stored" | bc) bytes per record)"
echo "grid of $centre, warm (median of 5):  ${grid_warm} s"
echo "comparison of $centre ($members members), cold: ${comparison_cold} s; warm (median of 5): ${comparison_warm} s"
