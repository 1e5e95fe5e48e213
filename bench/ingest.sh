#!/usr/bin/env bash
# End-to-end ingestion benchmark: HTTP upload to committed rows, against PostgreSQL's own COPY of
# the same final rows into the same table with the same partitions and indexes (as it is, and
# without its foreign keys and triggers), plus the server's peak memory at 100k and 1M rows. Usage: bench/ingest.sh   (PostgreSQL at $ADMIN_URL; release build)
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

# The same final rows, loaded by PostgreSQL's own COPY into the same, emptied table: first as it
# is, then with any foreign keys dropped and its own triggers disabled (the anchor of #19: the
# same table, partitions and indexes, nothing checked per row). Since migration 000027 the table
# has no foreign keys, so the two differ by its triggers only (none fire on INSERT).
COLUMNS="partnership_code, batch_id, agency_id, subject, record_kind, occurred_on, cell, location_role, indicators, age_band, sex, record_key"
psql "$DATABASE_URL" -qc "\copy (SELECT $COLUMNS FROM case_records) TO '$WORK/final.csv' CSV"
copy_into_emptied() { # -> seconds
  psql "$DATABASE_URL" -qc "TRUNCATE case_records"
  local start end
  start=$(date +%s.%N)
  psql "$DATABASE_URL" -qc "\copy case_records ($COLUMNS) FROM '$WORK/final.csv' CSV"
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
checked_s=$(copy_into_emptied)
drop_keys=$(psql "$DATABASE_URL" -Atc "SELECT string_agg(format('DROP CONSTRAINT %I', conname), ', ')
                                       FROM pg_constraint
                                       WHERE conrelid = 'case_records'::regclass AND contype = 'f'")
if [ -n "$drop_keys" ]; then psql "$DATABASE_URL" -qc "ALTER TABLE case_records $drop_keys"; fi
psql "$DATABASE_URL" -qc "ALTER TABLE case_records DISABLE TRIGGER USER"
copy_s=$(copy_into_emptied)

rate() { echo "scale=0; $1 / $2" | bc; }
echo "rows accepted (1M upload):      $accepted"
echo "upload 1M rows end to end:      ${big_s} s  ($(rate 1000000 "$big_s") rows/s, $((big_bytes / 1048576)) MiB CSV)"
echo "psql \\copy, table as it is:     ${checked_s} s  ($(rate 1000000 "$checked_s") rows/s)"
echo "psql \\copy, nothing per row:     ${copy_s} s  ($(rate 1000000 "$copy_s") rows/s)"
echo "end-to-end / COPY (as it is):   $(echo "scale=2; $checked_s / $big_s" | bc)"
echo "end-to-end / COPY (no checks):  $(echo "scale=2; $copy_s / $big_s" | bc)  (target >= 0.8)"
echo "upload 100k rows end to end:    ${small_s} s  ($(rate 100000 "$small_s") rows/s)"
echo "server peak RSS, 100k upload:   $((small_kb / 1024)) MiB"
echo "server peak RSS, 1M upload:     $((big_kb / 1024)) MiB"
