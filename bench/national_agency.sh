#!/usr/bin/env bash
# An agency serving every partnership in England uploads a small extract and a larger one: time
# to the verdict and the server's peak memory, with all 153 boundaries and their resolution-9
# coverage (1.38 M cells) imported. Uploads read coverage a tile at a time and postcodes a
# district at a time (docs/operations.md, "Agencies serving many partnerships").
# Usage: bench/national_agency.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=atlas_bench_national
PORT=${PORT:-18191}
WORK=$(mktemp -d)
server=""
cargo build --release -q -p atlas-cli
atlas=target/release/atlas
export DATABASE_URL=${ADMIN_URL%/*}/$DB RUST_LOG=warn ATLAS__AUTH__JWKS_FILE=$WORK/jwks.json \
       ATLAS__INGEST__PSEUDONYM_KEY=$(printf 'ab%.0s' $(seq 32)) ATLAS__SERVER__PORT=$PORT
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
$atlas migrate >/dev/null
$atlas reference import --boundaries data/reference/utla_boundaries_england.geojson \
  --postcodes data/reference/onspd_sample_lancashire_cluster.csv >/dev/null
codes=$(psql "$DATABASE_URL" -Atc "SELECT string_agg('--partnership ' || code, ' ') FROM partnerships")
# shellcheck disable=SC2086
agency=$($atlas agency add --kind health --name "National Health Trust" $codes 2>/dev/null)
$atlas token keygen --dir "$WORK" 2>/dev/null
token=$($atlas token issue --key "$WORK/dev-signing.pem" --sub bench-analyst --role agency_analyst \
        --partnership E10000017 --agency "$agency" --ttl 1h)
cells=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM partnership_cells WHERE resolution = 9")

upload() { # rows -> prints seconds and peak RSS (KiB) of a fresh server
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
  server=""
  local accepted
  accepted=$(python3 -c "import json; print(json.load(open('$WORK/response.json'))['rows_accepted'])")
  echo "$(echo "$end - $start" | bc) $((peak_kb / 1024)) $accepted"
}

read -r ten_s ten_mb ten_ok < <(upload 10)
read -r big_s big_mb big_ok < <(upload 100000)
echo "partnerships served: 153; resolution-9 coverage rows: $cells"
echo "upload of 10 rows:      ${ten_s} s, server peak RSS ${ten_mb} MiB, ${ten_ok} accepted"
echo "upload of 100,000 rows: ${big_s} s, server peak RSS ${big_mb} MiB, ${big_ok} accepted"
