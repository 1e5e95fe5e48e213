#!/usr/bin/env bash
# The long-line upload attack (issue #21): a gzip extract (about 260 KB) whose second line is
# 256 MiB long, uploaded by a valid agency analyst to a fresh release `atlas serve`, once and then
# four at once. Prints each answer's status and time, and the server's peak resident memory
# (VmHWM) at rest, after the one upload and after the four: the reader refuses the line after its
# first 64 KiB, so memory should not grow with the line.
# Usage: bench/hostile.sh   (PostgreSQL at $ADMIN_URL; release build)
set -euo pipefail
DB=atlas_bench_hostile
PORT=${PORT:-18220}
source "$(dirname "$0")/common.sh"
import_partnerships E06000009
agency=$($atlas agency add --kind police --name "Bench Police" --partnership E06000009 2>/dev/null)
token=$(issue_token --sub bench-analyst --role agency_analyst --partnership E06000009 --agency "$agency")

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

start_server
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
