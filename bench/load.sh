#!/usr/bin/env bash
# Load test (issue #21): reads, analyses, comparisons and uploads at once against a release
# `atlas serve` on the demo's data, for $DURATION at $CONNECTIONS connections in all.
#
# `atlas demo` fills a database of its own (England's geography, seven agencies' synthetic
# extracts, sharing agreements, a release) and writes its users' tokens; it is then stopped and a
# fresh `atlas serve` runs on that database with the demo's settings (the development
# configuration, the demo's signing key trusted) and the per-caller rate limit out of the way. One oha process per request kind
# runs for the same $DURATION, so each kind has its own figures:
#   read        GET  /api/v1/partnerships/E10000017                      (Rochdale's analyst)
#   grid        GET  /api/v1/partnerships/E10000017/grid?resolution=8    (Lancashire's analyst)
#   hotspots    GET  …/E10000017/hotspots?resolution=8&value=subjects    (Lancashire's analyst)
#   comparison  GET  /api/v1/partnerships/E06000009/comparison           (Blackpool's analyst)
#   upload      POST /api/v1/extracts, Lancashire Constabulary's demo extract (its analyst)
# Uploads get 4 connections, ingest.max_concurrent_uploads: a fifth at once is answered 503 by
# design. The same extract each time is read and stored whole in its transaction, then answered
# 200 with the batch it repeats, so the data stays as the demo left it.
# Prints requests/s, p50 and p99 latency and the answers' status codes per kind (and each kind's
# p50 alone, one connection, beforehand), the 5xx the server counted (/metrics), its peak
# resident memory (VmHWM), the CPU seconds it, oha and the whole machine used, and the load average
# (other work on the machine shows there); exits 1 on any 5xx.
# Usage: bench/load.sh   (PostgreSQL at $ADMIN_URL; release build; needs oha:
# cargo install oha --locked)
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=atlas_bench_load
PORT=${PORT:-18210}
DURATION=${DURATION:-60s}
WORK=$(mktemp -d)
server=""
demo=""
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }
cargo build --release -q -p atlas-cli
atlas=target/release/atlas
export DATABASE_URL=${ADMIN_URL%/*}/$DB RUST_LOG=warn ATLAS__SERVER__PORT=$PORT
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
trap 'stop "$demo"; stop "$server"; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$WORK"' EXIT

$atlas demo --dir "$WORK/demo" --port "$PORT" > "$WORK/demo.log" 2>&1 & demo=$!
until grep -q "Press Ctrl-C to stop" "$WORK/demo.log"; do
  kill -0 "$demo" 2>/dev/null || { cat "$WORK/demo.log"; echo "the demo stopped before serving" >&2; exit 1; }
  sleep 1
done
stop "$demo"; demo=""
tokens=$WORK/demo/tokens
# The extracts are numbered in the order of the agencies' names: 2 is Lancashire Constabulary's.
extract=$WORK/demo/demo/extracts/agency-2.csv

ATLAS__AUTH__JWKS_FILE=$WORK/demo/keys/jwks.json \
ATLAS__SERVER__RATE_LIMIT_PER_SECOND=1000000 ATLAS__SERVER__RATE_LIMIT_BURST=1000000 \
  $atlas serve > "$WORK/serve.log" 2>&1 & server=$!
until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  kill -0 "$server" 2>/dev/null || { cat "$WORK/serve.log"; echo "the server stopped" >&2; exit 1; }
  sleep 0.2
done
base="http://127.0.0.1:$PORT/api/v1"

# kind connections token path [oha options…]
kinds=(
  "read 16 rochdale-analyst /partnerships/E10000017"
  "grid 14 lancashire-analyst /partnerships/E10000017/grid?resolution=8"
  "hotspots 14 lancashire-analyst /partnerships/E10000017/hotspots?resolution=8&value=subjects"
  "comparison 16 blackpool-analyst /partnerships/E06000009/comparison"
  "upload 4 lancashire-constabulary /extracts -m POST -T text/csv -D $extract"
)
# Each kind alone first, one connection (50 requests, uploads 10): its service time without
# queueing, and the records in the cache.
for kind in "${kinds[@]}"; do
  read -r name _ user path options <<< "$kind"
  # shellcheck disable=SC2086  # $options holds several words
  oha -n "$([ "$name" = upload ] && echo 10 || echo 50)" -c 1 --no-tui --output-format json \
    -H "Authorization: Bearer $(cat "$tokens/$user.jwt")" $options "$base$path" > "$WORK/$name-alone.json"
done
# CPU seconds (user + system) of a process so far, of this script's finished children (the oha
# runs) and of the whole machine (2 cores: 2 a second).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat"; }
children() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($16 + $17) / hz }' "/proc/$$/stat"; }  # oha, once waited for
busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.1f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
load_before=$(cut -d' ' -f1 /proc/loadavg)
server_cpu=$(cpu "$server"); oha_cpu=$(children); machine_cpu=$(busy); started=$(date +%s.%N)
for kind in "${kinds[@]}"; do
  read -r name connections user path options <<< "$kind"
  # shellcheck disable=SC2086
  oha -z "$DURATION" -w -c "$connections" --no-tui --output-format json \
    -H "Authorization: Bearer $(cat "$tokens/$user.jwt")" $options "$base$path" > "$WORK/$name.json" &
done
wait $(jobs -p | grep -vx "$server")
server_cpu=$(echo "$(cpu "$server") - $server_cpu" | bc); oha_cpu=$(echo "$(children) - $oha_cpu" | bc)
machine_cpu=$(echo "$(busy) - $machine_cpu" | bc)
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
load_after=$(cut -d' ' -f1 /proc/loadavg)
peak_kb=$(awk '/VmHWM/ {print $2}' "/proc/$server/status")
server_5xx=$(curl -fs "http://127.0.0.1:$PORT/metrics" \
  | awk '/^atlas_http_requests_total\{/ && /status="5/ { n += $NF } END { print n + 0 }')

echo "$DURATION, $(nproc) cores; p50 alone: one connection, nothing else running"
python3 - "$WORK" "${kinds[@]}" <<'PY'
import json, sys
work, kinds = sys.argv[1], [k.split()[:2] for k in sys.argv[2:]]
print(f"{'kind':<11} {'conns':>5} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'alone':>8}  statuses")
total, rate, failures = 0, 0.0, 0
for name, connections in kinds:
    result = json.load(open(f"{work}/{name}.json"))
    alone = json.load(open(f"{work}/{name}-alone.json"))
    codes = result["statusCodeDistribution"]
    count = sum(codes.values())
    total += count
    rate += result["summary"]["requestsPerSec"]
    failures += sum(n for code, n in codes.items() if code.startswith("5"))
    errors = result.get("errorDistribution") or {}
    latency = result["latencyPercentiles"]
    print(f"{name:<11} {connections:>5} {count:>9} {result['summary']['requestsPerSec']:>8.1f} "
          f"{latency['p50'] * 1000:>8.1f} {latency['p99'] * 1000:>8.1f} "
          f"{alone['latencyPercentiles']['p50'] * 1000:>8.1f}  "
          f"{dict(sorted(codes.items()))}{' errors: ' + str(errors) if errors else ''}")
print(f"all kinds: {total} requests, {rate:.1f} requests/s, 5xx answers: {failures}")
PY
echo "5xx counted by the server (/metrics):  $server_5xx"
echo "server peak RSS (VmHWM):               $((peak_kb / 1024)) MiB"
echo "CPU seconds, server / oha / machine:   $server_cpu / $oha_cpu / $machine_cpu in $(printf %.1f "$elapsed") s (at most $(nproc) a second)"
echo "machine load average (1 min):          $load_before before, $load_after after"
grep -i "panic\|error" "$WORK/serve.log" | head -5 || true
[ "$server_5xx" -eq 0 ]
