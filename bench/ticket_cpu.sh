#!/usr/bin/env bash
# CPU per new ticket (issue 36): correo/save with a new Message-ID per
# request against a fresh MariaDB store seeded as bench/run.sh seeds it
# (a department with its mailbox, eight operators), delivery off
# (outbox.inline_timeout_ms = 0, the outbox worker idle), after 5 s of
# unmeasured warm-up; the tickets counted in the store, the CPU of the server
# and of mariadbd read from /proc around the measured window.
#
# Usage: bench/ticket_cpu.sh [connections ...]   (default: 1 4 16 64)
#   BIN=path/to/helpdesk-server   the build to measure (default: the release build here;
#                                 give a baseline's binary to compare, run by run)
#   SECS=15                       the measured window
#   PERF=1                        also record a perf profile of the server (target/bench/perf-<c>.data)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BIN=${BIN:-$PWD/target/release/helpdesk-server}
SECS=${SECS:-15}
OUT=target/bench
mkdir -p "$OUT"
[ -x "$BIN" ] || { log "no server at $BIN: cargo build --release -p helpdesk-server"; exit 1; }
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y wrk >/dev/null; }
DB_PID=$(pgrep -xo mariadbd) || { log "MariaDB is not running"; exit 1; }
URL=mysql://root@127.0.0.1:3306/hd_ticket_cpu
count() { mariadb -uroot -h127.0.0.1 -N hd_ticket_cpu -e 'SELECT COUNT(*) FROM ticket'; }
save() { # connections seconds file
  BENCH_RUN="$1-$(date +%s%N)" wrk -t1 -c"$1" -d"$2s" --latency -s bench/save.lua -H 'Content-Type: application/json' \
    -H 'X-User-Consumo: bench' -H "X-User-Secret: $SECRET" http://127.0.0.1:18121/api/correo/save >"$3"
}
echo "| connections | new tickets/s | server CPU per ticket | MariaDB CPU per ticket | p99 |"
echo "|---|---|---|---|---|"
for c in "${@:-1 4 16 64}"; do
  for conns in $c; do  # "1 4" given as one word splits too
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_ticket_cpu; CREATE DATABASE hd_ticket_cpu CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    SECRET=$(seed "$URL")
    HELPDESK__SERVER__PORT=18121 HELPDESK__DATABASE__URL="$URL" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=warn \
      HELPDESK__OUTBOX__INLINE_TIMEOUT_MS=0 HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 "$BIN" >"$OUT/ticket_cpu-server.log" 2>&1 &
    PID=$!
    wait_ready 18121
    save "$conns" 5 /dev/null
    held=$(count); cpu=$(cpu_ms $PID); dbcpu=$(cpu_ms "$DB_PID")
    PERF_PID=
    if [ -n "${PERF:-}" ]; then
      perf record -F 499 -g -p $PID -o "$OUT/perf-$conns.data" -- sleep "$SECS" >/dev/null 2>&1 &
      PERF_PID=$!
    fi
    save "$conns" "$SECS" "$OUT/ticket_cpu-$conns.txt"
    [ -z "$PERF_PID" ] || wait "$PERF_PID"
    new=$(( $(count) - held )); s=$(( $(cpu_ms $PID) - cpu )); d=$(( $(cpu_ms "$DB_PID") - dbcpu ))
    kill $PID; wait $PID 2>/dev/null || true
    p99=$(awk '$1=="99%" {print $2}' "$OUT/ticket_cpu-$conns.txt")
    awk -v c="$conns" -v n="$new" -v s="$s" -v d="$d" -v secs="$SECS" -v p="$p99" \
      'BEGIN{ if (n > 0) printf "| %s | %.0f | %.3f ms | %.3f ms | %s |\n", c, n/secs, s/n, d/n, p; else printf "| %s | 0 | n/a | n/a | %s |\n", c, p }'
  done
done
mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_ticket_cpu'
