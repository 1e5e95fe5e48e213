#!/usr/bin/env bash
# Audit-trail benchmark: the request rate of an authenticated read whose audit entry must be
# committed before the answer, with group commit (audit.group_commit = true: concurrent requests'
# entries share one transaction) against one commit per request (false). Each mode gets a fresh
# `atlas serve` with 2 workers (ATLAS__SERVER__WORKERS=2) and the rate limit out of the way; wrk
# (2 threads, $CONNECTIONS connections) sends GET /api/v1/partnerships/E10000017 with a
# partnership_analyst token for $WARMUP, then for $DURATION measured. Afterwards audit_log must
# hold one row per request answered (one curl, the warm-up and the measured run), plus those still
# in flight when each wrk run stopped (at most $CONNECTIONS each): wrk does not count them, but the
# server answers and audits them. "audit commits" counts the transactions that wrote the rows.
# Also prints the CPU seconds the server, PostgreSQL and wrk used during each measured run, and
# the whole machine's (2 cores: 2 CPU s per second), so that other load on the machine shows.
# Usage: bench/audit.sh   (PostgreSQL at $ADMIN_URL; release build; needs wrk:
# apt-get install -y wrk)
set -euo pipefail
DB=atlas_bench_audit
PORT=${PORT:-18200}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-5s}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
source "$(dirname "$0")/common.sh"
export ATLAS__SERVER__WORKERS=2 \
       ATLAS__SERVER__RATE_LIMIT_PER_SECOND=1000000 ATLAS__SERVER__RATE_LIMIT_BURST=1000000
import_partnerships E06000009 E08000005 E10000017
token=$(issue_token --sub bench-analyst --role partnership_analyst --partnership E10000017)
url="http://127.0.0.1:$PORT/api/v1/partnerships/E10000017"

# Audit rows, and the transactions that committed them (xmin: one per commit).
audited() { psql "$DATABASE_URL" -AtF' ' -c "SELECT count(*), count(DISTINCT xmin::text) FROM audit_log"; }
# CPU seconds (user + system) used so far by the given processes.
cpu() { cat "${@/#//proc/}" 2>/dev/null | awk -v hz="$(getconf CLK_TCK)" '{ s += $14 + $15 } END { printf "%.1f", s / hz }'; }
busy_cpu() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.1f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }
pg_cpu() { local pids; pids=$(pgrep -x postgres | sed 's|$|/stat|'); cpu $pids; }
field() { # wrk output file, pattern -> the figure after it
  awk -v p="$2" 'index($0, p) == 1 || index($0, " " p) { sub(".*" p "[ \t]*", ""); print $1; exit }' "$1"
}

measure() { # group_commit (true|false) -> one line of figures
  local mode=$1 out="$WORK/wrk-$1.txt" rows commits server_cpu pg_before wrk_cpu
  ATLAS__AUDIT__GROUP_COMMIT=$mode $atlas serve >/dev/null 2>&1 & server=$!
  until curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
  read -r rows commits < <(audited)
  curl -fs -o /dev/null -H "Authorization: Bearer $token" "$url"  # the token is accepted
  wrk -t2 -c"$CONNECTIONS" -d"$WARMUP" -H "Authorization: Bearer $token" "$url" > "$WORK/warmup-$mode.txt"
  server_cpu=$(cpu "$server/stat"); pg_before=$(pg_cpu); local busy; busy=$(busy_cpu)
  TIMEFORMAT='%U %S'
  wrk_cpu=$( { time wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency \
                 -H "Authorization: Bearer $token" "$url" > "$out"; } 2>&1 )
  server_cpu=$(echo "$(cpu "$server/stat") - $server_cpu" | bc)
  local pg_used; pg_used=$(echo "$(pg_cpu) - $pg_before" | bc); busy=$(echo "$(busy_cpu) - $busy" | bc)
  sleep 1  # let requests still in flight when wrk stopped finish
  stop_server
  local rows_after commits_after; read -r rows_after commits_after < <(audited)
  local sent=$(( 1 + $(awk '/requests in/ {print $1}' "$WORK/warmup-$mode.txt") + $(awk '/requests in/ {print $1}' "$out") ))
  local warm_errors errors
  warm_errors=$(field "$WORK/warmup-$mode.txt" "Non-2xx or 3xx responses:")
  errors=$(field "$out" "Non-2xx or 3xx responses:")
  errors=$(( ${warm_errors:-0} + ${errors:-0} ))
  # rps, requests in the measured run, p50, p99, requests answered in all, audit rows written, commits,
  # non-2xx answers, CPU s of server, PostgreSQL, wrk, the whole machine
  echo "$(field "$out" "Requests/sec:") $(awk '/requests in/ {print $1}' "$out") $(field "$out" "50%") \
        $(field "$out" "99%") $sent $((rows_after - rows)) $((commits_after - commits)) $errors $server_cpu $pg_used \
        $(echo "$wrk_cpu" | awk '{ print $1 + $2 }') $busy"
}

measure true > "$WORK/group.txt"
measure false > "$WORK/per-request.txt"
read -r g_rps g_n g_p50 g_p99 g_sent g_rows g_commits g_err g_scpu g_pcpu g_wcpu g_busy < "$WORK/group.txt"
read -r p_rps p_n p_p50 p_p99 p_sent p_rows p_commits p_err p_scpu p_pcpu p_wcpu p_busy < "$WORK/per-request.txt"

echo "GET /api/v1/partnerships/E10000017, $CONNECTIONS connections, 2 wrk threads, 2 server workers, $DURATION after $WARMUP warm-up"
printf '%-28s %10s %10s\n' "" "group" "per-request"
printf '%-28s %10s %10s\n' "requests/s" "$g_rps" "$p_rps"
printf '%-28s %10s %10s\n' "requests (measured run)" "$g_n" "$p_n"
printf '%-28s %10s %10s\n' "latency p50" "$g_p50" "$p_p50"
printf '%-28s %10s %10s\n' "latency p99" "$g_p99" "$p_p99"
printf '%-28s %10s %10s\n' "requests answered (all)" "$g_sent" "$p_sent"
printf '%-28s %10s %10s\n' "audit_log rows written" "$g_rows" "$p_rows"
printf '%-28s %10s %10s\n' "audit commits" "$g_commits" "$p_commits"
printf '%-28s %10s %10s\n' "non-2xx answers" "$g_err" "$p_err"
printf '%-28s %10s %10s\n' "CPU s, server (measured)" "$g_scpu" "$p_scpu"
printf '%-28s %10s %10s\n' "CPU s, PostgreSQL" "$g_pcpu" "$p_pcpu"
printf '%-28s %10s %10s\n' "CPU s, wrk" "$g_wcpu" "$p_wcpu"
printf '%-28s %10s %10s\n' "CPU s, whole machine" "$g_busy" "$p_busy"
grep -h "Socket errors" "$WORK"/wrk-*.txt "$WORK"/warmup-*.txt || true
echo "group / per-request requests/s: $(echo "scale=2; $g_rps / $p_rps" | bc)  (target >= 3)"
