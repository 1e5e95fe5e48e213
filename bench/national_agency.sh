#!/usr/bin/env bash
# An agency serving every partnership in England uploads a small extract and a larger one: time
# to the verdict and the server's peak memory, with all 153 boundaries and their resolution-9
# coverage (1.38 M cells) imported. Uploads read coverage a tile at a time and postcodes a
# district at a time (docs/operations.md, "Agencies serving many partnerships").
# Usage: bench/national_agency.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
DB=atlas_bench_national
PORT=${PORT:-18191}
source "$(dirname "$0")/common.sh"
$atlas reference import --boundaries data/reference/utla_boundaries_england.geojson \
  --postcodes data/reference/onspd_sample_lancashire_cluster.csv >/dev/null
codes=$(psql "$DATABASE_URL" -Atc "SELECT string_agg('--partnership ' || code, ' ') FROM partnerships")
# shellcheck disable=SC2086
agency=$($atlas agency add --kind health --name "National Health Trust" $codes 2>/dev/null)
token=$(issue_token --sub bench-analyst --role agency_analyst --partnership E10000017 --agency "$agency")
cells=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM partnership_cells WHERE resolution = 9")

upload() { # rows -> prints seconds and peak RSS (KiB) of a fresh server
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
  local accepted
  accepted=$(python3 -c "import json; print(json.load(open('$WORK/response.json'))['rows_accepted'])")
  echo "$(echo "$end - $start" | bc) $((peak_kb / 1024)) $accepted"
}

read -r ten_s ten_mb ten_ok < <(upload 10)
read -r big_s big_mb big_ok < <(upload 100000)
echo "partnerships served: 153; resolution-9 coverage rows: $cells"
echo "upload of 10 rows:      ${ten_s} s, server peak RSS ${ten_mb} MiB, ${ten_ok} accepted"
echo "upload of 100,000 rows: ${big_s} s, server peak RSS ${big_mb} MiB, ${big_ok} accepted"
