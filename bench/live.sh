#!/usr/bin/env bash
# The console's live channel: what 50 open pages cost the server and
# MariaDB. Eight operators signed in through the form; 25 pages on the queue
# ("Abiertos") and 25 on open tickets, each asking for its live part every
# 2 s with its fingerprint, as htmx does (bench/live_pages.py). Measured
# for SECS seconds each, in rounds that alternate the scenarios:
#   idle          the server with no page open (the floor)
#   live-quiet    50 pages, nothing changes (the answers are 204)
#   live-mail     50 pages, a new mail every 5 s (the queue pages get it)
#   reload-quiet  50 pages reloading the whole page every 2 s instead
#                 (what a poll without a fingerprint would cost)
# CPU is read from /proc for the server and mariadbd around each run and
# given per minute. Checked against the store: the presence table holds the
# 25 tickets' rows, and the tickets grew by the mails posted.
#
# Usage: bench/live.sh [seconds per run, default 60] [rounds, default 2] [tickets, default 20000]
# Prints a Markdown report and keeps it in target/bench/live.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
ROUNDS="${2:-2}"
N="${3:-20000}"
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh
# shellcheck source=bench/seed_tickets.sh
. bench/seed_tickets.sh

prepare_release

mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_live; CREATE DATABASE hd_bench_live CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
URL=mysql://root@127.0.0.1:3306/hd_bench_live
PORT=18087
sql() { mariadb -uroot -h127.0.0.1 -N hd_bench_live -e "$1"; }
log "seed $N tickets"
SECRET=$(seed "$URL")
mysql_seed_sql | mariadb -uroot -h127.0.0.1 hd_bench_live

BASE="http://127.0.0.1:$PORT"
HELPDESK__SERVER__PORT=$PORT HELPDESK__SERVER__PUBLIC_URL="$BASE" HELPDESK__DATABASE__URL="$URL" \
  HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=warn HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 \
  "$BIN" >"$OUT/live-server.log" 2>&1 &
SERVER=$!
pids+=("$SERVER")
wait_ready $PORT 12000

SESSIONS="$OUT/live-sessions.txt"; : >"$SESSIONS"
for i in 1 2 3 4 5 6 7 8; do
  console_session "$BASE" "op$i" "$OUT/live-op$i.cookies" >>"$SESSIONS"
done
TICKETS=$(sql "SELECT GROUP_CONCAT(id_ticket) FROM (SELECT id_ticket FROM ticket WHERE estado = 'abierto' ORDER BY id_ticket DESC LIMIT 25) t")
MARIADB=$(pidof mariadbd | awk '{print $1}')
TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

report=()
for round in $(seq 1 "$ROUNDS"); do
  for scenario in idle live-quiet reload-quiet live-mail; do
    HELD=$(sql 'SELECT COUNT(*) FROM ticket')
    s0=$(ticks "$SERVER"); m0=$(ticks "$MARIADB")
    case $scenario in
      idle) sleep "$SECS"; RESULT='{"pages": 0, "by_status": {}, "bytes": 0}' ;;
      live-quiet) RESULT=$(python3 bench/live_pages.py "$BASE" "$SECS" live "$SESSIONS" "$TICKETS" 0 "$SECRET" "$round") ;;
      reload-quiet) RESULT=$(python3 bench/live_pages.py "$BASE" "$SECS" reload "$SESSIONS" "$TICKETS" 0 "$SECRET" "$round") ;;
      live-mail) RESULT=$(python3 bench/live_pages.py "$BASE" "$SECS" live "$SESSIONS" "$TICKETS" 5 "$SECRET" "r$round-$(date +%s%N)") ;;
    esac
    s1=$(ticks "$SERVER"); m1=$(ticks "$MARIADB")
    MAILS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["by_status"].get("mails", 0))' "$RESULT")
    GREW=$(( $(sql 'SELECT COUNT(*) FROM ticket') - HELD ))
    [ "$GREW" = "$MAILS" ] || { log "$scenario: $MAILS mails posted, the store grew by $GREW tickets"; exit 1; }
    if [ "$scenario" != idle ]; then
      PRESENT=$(sql 'SELECT COUNT(DISTINCT fk_id_ticket) FROM presencia')
      [ "$PRESENT" -ge 25 ] || { log "$scenario: presence on $PRESENT tickets, not 25"; exit 1; }
    fi
    ROW=$(python3 - "$RESULT" "$SECS" "$TCK" "$s0" "$s1" "$m0" "$m1" <<'PY'
import json, sys
r, secs, tck = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
s0, s1, m0, m1 = map(int, sys.argv[4:8])
per_min = lambda a, b: (b - a) * 1000 / tck * 60 / secs
st = r["by_status"]
reqs = sum(v for k, v in st.items() if k != "mails")
print("| %d | %d | %s | %.0f | %.0f | %.0f |" % (
    r["pages"], reqs, ", ".join("%s: %d" % kv for kv in sorted(st.items())) or "-",
    r["bytes"] / 1024 / secs * 60, per_min(s0, s1), per_min(m0, m1)))
PY
)
    log "round $round, $scenario: $ROW"
    report+=("| $round | $scenario $ROW")
  done
done

{
  echo "Live channel, $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), MariaDB, $N tickets, $SECS s per run, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "| round | scenario | pages | requests | answers | KiB received per min | server CPU ms per min | MariaDB CPU ms per min |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${report[@]}"
} | tee "$OUT/live.md"
