#!/usr/bin/env bash
# schemathesis — a real client of the service's own OpenAPI document — against the demo, once
# for each role's token: every generated request (examples, coverage and fuzzing phases) must be
# answered without a 5xx or a dropped connection, and every answer must conform to the document's
# schema for its status. Called by .ci/run; installs schemathesis from
# PyPI into target/schemathesis-venv the first time.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'schemathesis>=4.32,<5'
fi

dir=$(mktemp -d)
database="atlas_schemathesis_$$"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database" \
  cargo run --quiet -p atlas-cli -- demo --dir "$dir" --port "$port" >"$dir/demo.log" 2>&1 &
demo=$!
cleanup() {
  kill "$demo" 2>/dev/null || true
  wait "$demo" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

for _ in $(seq 1 600); do
  grep -q "Press Ctrl-C to stop" "$dir/demo.log" && break
  kill -0 "$demo" 2>/dev/null || { cat "$dir/demo.log"; echo "the demo stopped before serving"; exit 1; }
  sleep 1
done
grep -q "Press Ctrl-C to stop" "$dir/demo.log" || { cat "$dir/demo.log"; echo "the demo did not start in 10 minutes"; exit 1; }

# One user of each role: partnership analyst, partner viewer, agency analyst, admin, auditor,
# board member; and no token at all.
for user in lancashire-analyst blackpool-viewer lancashire-constabulary admin auditor lancashire-board ""; do
  if [ -n "$user" ]; then
    auth=(-H "Authorization: Bearer $(cat "$dir/tokens/$user.jwt")")
  else
    auth=()
  fi
  echo "schemathesis as ${user:-an anonymous caller}"
  "$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/v1/openapi.json" "${auth[@]}" \
    --checks not_a_server_error,response_schema_conformance --phases examples,coverage,fuzzing --max-examples 15 \
    --seed 20261129 --no-color >"$dir/schemathesis.log" 2>&1 \
    || { cat "$dir/schemathesis.log"; echo "schemathesis found failures as ${user:-an anonymous caller}"; exit 1; }
  grep -E "generated|passed" "$dir/schemathesis.log" | tail -n 1
done
