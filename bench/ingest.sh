#!/usr/bin/env bash
# End-to-end ingestion benchmark: HTTP upload to committed rows, against PostgreSQL's own COPY of
# the same final rows into the same table with the same indexes, plus the server's peak memory
# at 100k and 1M rows. Usage: bench/ingest.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=atlas_bench_ingest
PORT=${PORT:-18190}
WORK=$(mktemp -d)
server=""
cargo build --release -q -p atlas-cli
atlas=target/release/atlas
export DATABASE_URL=${ADMIN_URL%/*}/$DB RUST_LOG=warn ATLAS__AUTH__JWKS_FILE=$WORK/jwks.json \
       ATLAS__INGEST__PSEUDONYM_KEY=$(printf 'ab%.0s' $(seq 32)) ATLAS__SERVER__PORT=$PORT
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
$atlas migrate >/dev/null
python3 - > "$WORK/boundaries.geojson" <<'PY'
codes = ("E06000009", "E08000005", "E10000017")
lines = [l.rstrip(",") for l in open("data/reference/utla_boundaries_england.geojson").read().splitlines()
         if any(f'"code":"{c}"' in l for c in codes)]
print('{"type":"FeatureCollection","features":[' + ",".join(lines) + "]}")
PY
$atlas reference import --boundaries "$WORK/boundaries.geojson" >/dev/null
agency=$($atlas agency add --kind police --name "Bench Police" \
         --partnership E06000009 --partnership E08000005 --partnership E10000017 2>/dev/null)
# A development key pair (the server trusts $WORK/jwks.json) and an analyst token for the agency.
$atlas token keygen --dir "$WORK" 2>/dev/null
token=$($atlas token issue --key "$WORK/dev-signing.pem" --sub bench-analyst --role agency_analyst \
        --partnership E10000017 --agency "$agency" --ttl 1h)

upload() { # rows -> prints seconds and peak RSS of a fresh server
  local rows=$1 file="$WORK/extract-$1.csv"
  python3 bench/generate_extract.py "$rows" "$file"
  $atlas serve >/dev/null 2>&1 & server=$!
  until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
  local start end
  start=$(date +%s.%N)
  curl -fs -o "$WORK/response.json" -H "content-type: text/csv" -H "Authorization: Bearer $token" \
       -T "$file" -X POST "http://127.0.0.1:$PORT/api/v1/extracts"
  end=$(date +%s.%N)
  local peak_kb
  peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
  kill $server; wait $server 2>/dev/null || true
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
