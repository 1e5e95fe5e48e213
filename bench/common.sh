# Sourced by the bench scripts, after they set DB (a database of their own, made afresh) and
# PORT (the bench server's). Builds atlas for release, makes DB with the schema, a signing key
# pair the server trusts ($key) and a work directory ($WORK), and on exit stops the server and
# drops DB and $WORK. Scripts export further ATLAS__* settings before start_server.
#
# Provides: $atlas, $WORK, $key, start_server, stop_server, import_partnerships CODE...,
# issue_token ARGS... (`atlas token issue` with $key), median (of numbers on stdin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$(mktemp -d)
server=""
trap 'rm -rf "$WORK"' EXIT
cargo build --release -q -p atlas-cli
atlas=target/release/atlas
export DATABASE_URL=${ADMIN_URL%/*}/$DB RUST_LOG=warn ATLAS__SERVER__PORT=$PORT \
       ATLAS__AUTH__JWKS_FILE=$WORK/keys/jwks.json \
       ATLAS__INGEST__PSEUDONYM_KEY=$(printf 'ab%.0s' $(seq 32))

stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'stop_server; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT
$atlas migrate >/dev/null
$atlas token keygen --dir "$WORK/keys" 2>/dev/null
key="$WORK/keys/dev-signing.pem"

# Starts `atlas serve` with the environment as it is, and waits until it is ready.
start_server() {
  $atlas serve >/dev/null 2>&1 & server=$!
  until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do
    kill -0 "$server" 2>/dev/null || { echo "atlas serve stopped before it was ready" >&2; exit 1; }
    sleep 0.2
  done
}

# Imports the boundaries of the partnerships with the GSS codes given, from the reference data.
import_partnerships() {
  python3 - "$@" > "$WORK/boundaries.geojson" <<'PY'
import sys
codes = sys.argv[1:]
lines = [l.rstrip(",") for l in open("data/reference/utla_boundaries_england.geojson").read().splitlines()
         if any(f'"code":"{c}"' in l for c in codes)]
print('{"type":"FeatureCollection","features":[' + ",".join(lines) + "]}")
PY
  $atlas reference import --boundaries "$WORK/boundaries.geojson" >/dev/null
}

# A bearer token signed with $key, valid for $TOKEN_TTL (two hours unless set):
# issue_token --sub S --role R ...
issue_token() {
  $atlas token issue --key "$key" --ttl "${TOKEN_TTL:-2h}" "$@"
}

# The median of the numbers on stdin, one per line.
median() {
  sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}
