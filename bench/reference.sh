#!/usr/bin/env bash
# End-to-end figures for reference geography: import of England's 153 partnerships into a fresh
# database (tiling plus binary COPY), the no-op re-import, and the partnership endpoints.
# Usage: bench/reference.sh   (PostgreSQL at $ADMIN_URL; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=atlas_bench_reference
PORT=${PORT:-18180}
cargo build --release -q -p atlas-cli
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export DATABASE_URL=${ADMIN_URL%/*}/$DB RUST_LOG=warn
atlas=target/release/atlas
$atlas migrate >/dev/null
args=(reference import --boundaries data/reference/utla_boundaries_england.geojson
      --neighbours data/reference/utla_neighbours_england.csv)
seconds() { local start=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $start" | bc; }
echo "first import (153 partnerships, tiling + COPY): $(seconds $atlas "${args[@]}") s"
echo "re-import (nothing changes):                   $(seconds $atlas "${args[@]}") s"
ATLAS__SERVER__PORT=$PORT $atlas serve >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
for path in /api/v1/partnerships "/api/v1/partnerships/E10000017" "/api/v1/partnerships/E10000017?boundary=true"; do
  total=0
  for _ in $(seq 20); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT$path")
    total=$(echo "$total + $t" | bc)
  done
  echo "GET $path: mean of 20 = $(echo "scale=1; $total * 1000 / 20" | bc) ms"
done
