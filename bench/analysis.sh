#!/usr/bin/env bash
# Grid and hotspot endpoints against a plain GROUP BY: with 1M case records in one partnership
# (Lancashire), the time of GET /api/v1/partnerships/E10000017/grid and …/hotspots for one year
# at resolution 8, cold (first request after the server starts: the records are loaded) and warm
# (the median of later requests), beside the median of psql running the plain
# `SELECT <res-8 parent>, count(*), count(DISTINCT subject) … GROUP BY` over the raw case
# records for the same year, in the same run. Then the cold load again in a new process, which
# reads the record snapshot the first process wrote (the cold start of #19).
# Usage: bench/analysis.sh   (PostgreSQL at $ADMIN_URL; release build; takes a few minutes)
set -euo pipefail
DB=atlas_bench_analysis
PORT=${PORT:-18193}
ROWS=${ROWS:-1000000}
source "$(dirname "$0")/common.sh"
export ATLAS__SERVER__RATE_LIMIT_PER_SECOND=100000 ATLAS__SERVER__RATE_LIMIT_BURST=100000 \
       ATLAS__INGEST__MAX_UPLOAD_BYTES=2000000000
import_partnerships E10000017
agency=$($atlas agency add --kind police --name "Bench Police" --partnership E10000017 2>/dev/null)
uploader=$(issue_token --sub bench-uploader --role agency_analyst --partnership E10000017 --agency "$agency")
analyst=$(issue_token --sub bench-analyst --role partnership_analyst --partnership E10000017)

# ROWS records in four towns of Lancashire over 2023 and 2024, 250k distinct children.
python3 - "$ROWS" "$WORK/extract.csv" <<'PY'
import random, sys
rows, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(20261128)
towns = [(53.74, 53.78, -2.72, -2.66), (54.03, 54.06, -2.82, -2.78),
         (53.78, 53.80, -2.26, -2.22), (53.64, 53.66, -2.64, -2.62)]
kinds = ["incident", "referral", "missing_episode", "assessment", "intelligence"]
indicators = ["missing", "substance_misuse", "older_associate", "gifts_money", "online_contact", "hotel_taxi"]
with open(path, "w") as out:
    out.write("subject,record_kind,occurred_on,lat,lon,indicators,age,sex\n")
    for row in range(rows):
        south, north, west, east = towns[row % 4]
        out.write(f"{rng.randrange(250_000):064x},{kinds[row % 5]},{2023 + row % 2}-{1 + row % 12:02d}-{1 + row % 28:02d},"
                  f"{rng.uniform(south, north):.5f},{rng.uniform(west, east):.5f},"
                  f"{indicators[row % 6]},{10 + row % 8},{'FM'[row % 2]}\n")
PY

start_server
curl -fs -o /dev/null -H "content-type: text/csv" -H "Authorization: Bearer $uploader" \
     -T "$WORK/extract.csv" -X POST "http://127.0.0.1:$PORT/api/v1/extracts"
stop_server
psql "$DATABASE_URL" -qc "VACUUM ANALYZE"
stored=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM case_records WHERE partnership_code = 'E10000017'")

PARENT8="((cell & ~(15::bigint << 52) & ~((1::bigint << 21) - 1)) | (8::bigint << 52) | ((1::bigint << 21) - 1))"
SQL="SELECT $PARENT8 AS cell, count(*), count(DISTINCT subject), count(DISTINCT agency_id), min(occurred_on), max(occurred_on)
     FROM case_records WHERE partnership_code = 'E10000017' AND occurred_on BETWEEN '2024-01-01' AND '2024-12-31' GROUP BY 1"
sql_times=$(for _ in 1 2 3 4 5; do
  psql "$DATABASE_URL" -qAt -c '\timing on' -c "$SQL" | awk '/^Time:/ {print $2 / 1000}'
done)
sql=$(echo "$sql_times" | median)

start_server
endpoint() { curl -fs -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $analyst" \
             "http://127.0.0.1:$PORT/api/v1/partnerships/E10000017/$1"; }
GRID="grid?resolution=8&from=2024-01-01&to=2024-12-31"
HOT="hotspots?resolution=8&from=2024-01-01&to=2024-12-31"
cold=$(endpoint "$GRID")
grid=$(for _ in 1 2 3 4 5 6 7; do endpoint "$GRID"; done | median)
hot=$(for _ in 1 2 3 4 5 6 7; do endpoint "$HOT"; done | median)
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
stop_server

# The first process wrote the records' snapshot after its load: a new process reads that.
for _ in $(seq 300); do
  [ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM record_snapshots WHERE partnership_code = 'E10000017'")" = 1 ] && break
  sleep 0.2
done
[ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM record_snapshots")" -ge 1 ] \
  || { echo "no record snapshot was written within a minute" >&2; exit 1; }
start_server
snapshot_cold=$(endpoint "$GRID")
snapshot_warm=$(for _ in 1 2 3 4 5; do endpoint "$GRID"; done | median)
stop_server

ratio() { echo "scale=3; $1 / $2" | bc; }
echo "case records in Lancashire:              $stored"
echo "psql GROUP BY, one year, res 8 (median): ${sql} s"
echo "grid endpoint, cold (loads the records): ${cold} s  ($(ratio "$cold" "$sql")x the GROUP BY)"
echo "grid endpoint, warm (median of 7):       ${grid} s  ($(ratio "$grid" "$sql")x the GROUP BY)"
echo "load row by row (cold less warm):        $(echo "$cold - $grid" | bc) s  ($(echo "scale=3; ($cold - $grid) * 1000000 / $stored" | bc) s per million records)"
echo "grid endpoint, cold in a new process:    ${snapshot_cold} s (reads the record snapshot)"
echo "load from the snapshot (cold less warm): $(echo "$snapshot_cold - $snapshot_warm" | bc) s  ($(echo "scale=3; ($snapshot_cold - $snapshot_warm) * 1000000 / $stored" | bc) s per million records)"
echo "hotspots endpoint, warm (median of 7):   ${hot} s  ($(ratio "$hot" "$sql")x the GROUP BY)"
echo "server peak RSS:                         $((peak_kb / 1024)) MiB"
