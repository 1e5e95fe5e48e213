#!/usr/bin/env bash
# The long-line upload attack (issue #21): a gzip extract (about 260 KB) whose second line is
# 256 MiB long, uploaded by a valid agency analyst to a fresh release `atlas serve`, once and then
# four at once. Prints each answer's status and time, and the server's peak resident memory
# (VmHWM) at rest, after the one upload and after the four: the reader refuses the line after its
# first 64 KiB, so memory should not grow with the line.
# Usage: bench/hostile.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=atlas_bench_hostile
PORT=${PORT:-18220}
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
lines = [l.rstrip(",") for l in open("data/reference/utla_boundaries_england.geojson").read().splitlines()
         if '"code":"E06000009"' in l]
print('{"type":"FeatureCollection","features":[' + ",".join(lines) + "]}")
PY
$atlas reference import --boundaries "$WORK/boundaries.geojson" >/dev/null
agency=$($atlas agency add --kind police --name "Bench Police" --partnership E06000009 2>/dev/null)
$atlas token keygen --dir "$WORK" 2>/dev/null
token=$($atlas token issue --key "$WORK/dev-signing.pem" --sub bench-analyst --role agency_analyst \
        --partnership E06000009 --agency "$agency" --ttl 1h)

# The header, then one line of 256 MiB.
python3 - "$WORK/long-line.csv.gz" <<'PY'
import gzip, sys
with gzip.open(sys.argv[1], "wb", compresslevel=9) as out:
    out.write(b"subject,record_kind,occurred_on,lat,lon,indicators,age,sex\n")
    chunk = b"a" * (1 << 20)
    for _ in range(256):
        out.write(chunk)
    out.write(b"\n")
PY

$atlas serve >/dev/null 2>&1 & server=$!
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
peak() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$server/status"; }
attack() { curl -s -o /dev/null -w '%{http_code} %{time_total}s\n' -X POST -T "$WORK/long-line.csv.gz" \
             -H "content-type: text/csv" -H "content-encoding: gzip" -H "Authorization: Bearer $token" \
             "http://127.0.0.1:$PORT/api/v1/extracts"; }
curl -fs -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$PORT/api/v1/partnerships"
at_rest=$(peak)
one=$(attack)
after_one=$(peak)
four=$(for _ in 1 2 3 4; do attack & done; wait)
after_four=$(peak)
echo "gzip upload:                     $(stat -c %s "$WORK/long-line.csv.gz") bytes, one line of 256 MiB"
echo "one upload:                      $one"
echo "four at once:                    $(echo "$four" | tr '\n' ' ')"
echo "server peak RSS at rest:         $at_rest MiB"
echo "server peak RSS after one:       $after_one MiB"
echo "server peak RSS after four:      $after_four MiB"
