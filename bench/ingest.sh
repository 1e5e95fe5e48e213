#!/usr/bin/env bash
# End-to-end ingestion benchmark: HTTP upload to committed rows, against PostgreSQL's own COPY of
# the same final rows into the same table with the same indexes, plus the server's peak memory
# at 100k and 1M rows. Usage: bench/ingest.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
DB=atlas_bench_ingest
PORT=${PORT:-18190}
source "$(dirname "$0")/common.sh"
import_partnerships E06000009 E08000005 E10000017
agency=$($atlas agency add --kind police --name "Bench Police" \
         --partnership E06000009 --partnership E08000005 --partnership E10000017 2>/dev/null)
# An analyst token for the agency, signed with the key pair the server trusts.
token=$(issue_token --sub bench-analyst --role agency_analyst --partnership E10000017 --agency "$agency")

upload() { # rows -> prints seconds and peak RSS of a fresh server
  local rows=$1 file="$WORK/extract-$1.csv"
  python3 bench/generate_extract.py "$rows" "$file"
  start_server
  local start end
  start=$(date +%s.%N)
  curl -fs -o "$WORK/response.json" -H "content-type: text/csv" -H "Authorization: Bearer $token" \
       -T "$file" -X POST "http://127.0.0.1:$PORT/api/v1/extracts"
  end=$(date +%s.%N)
  local peak_kb
  peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  stop_server
  echo "$(echo "$end - $start" | bc) $peak_kb $(stat -c %s "$file")"
}

read -r small_s small_kb _ < <(upload 100000)
psql "$DATABASE_URL" -qc "TRUNCATE case_records, batch_partnerships, batch_rejections, batches CASCADE"
read -r big_s big_kb big_bytes < <(upload 1000000)
accepted=$(python3 -c "import json; print(json.load(open('$WORK/response.json'))['rows_accepted'])")

# The same final rows, loaded by PostgreSQL's own COPY into the same, emptied table.
psql "$DATABASE_URL" -qc "\copy (SELECT partnership_code, batch_id, agency_id, subject, record_kind, occurred_on, cell, location_role, indicators, age_band, sex FROM case_records) TO '$WORK/final.csv' CSV"
psql "$DATABASE_URL" -qc "TRUNCATE case_records"
start=$(date +%s.%N)
psql "$DATABASE_URL" -qc "\copy case_records (partnership_code, batch_id, agency_id, subject, record_kind, occurred_on, cell, location_role, indicators, age_band, sex) FROM '$WORK/final.csv' CSV"
end=$(date +%s.%N)
copy_s=$(echo "$end - $start" | bc)

rate() { echo "scale=0; $1 / $2" | bc; }
echo "rows accepted (1M upload):      $accepted"
echo "upload 1M rows end to end:      ${big_s} s  ($(rate 1000000 "$big_s") rows/s, $((big_bytes / 1048576)) MiB CSV)"
echo "psql \\copy of the final rows:   ${copy_s} s  ($(rate 1000000 "$copy_s") rows/s)"
echo "end-to-end / COPY throughput:   $(echo "scale=2; $copy_s / $big_s" | bc)"
echo "upload 100k rows end to end:    ${small_s} s  ($(rate 100000 "$small_s") rows/s)"
echo "server peak RSS, 100k upload:   $((small_kb / 1024)) MiB"
echo "server peak RSS, 1M upload:     $((big_kb / 1024)) MiB"
