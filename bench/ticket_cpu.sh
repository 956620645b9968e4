#!/usr/bin/env bash
# CPU per new ticket (issue 36): correo/save with a new Message-ID per
# request against a fresh MariaDB store seeded as bench/run.sh seeds it
# (a department with its mailbox, eight operators), delivery off
# (outbox.inline_timeout_ms = 0, the outbox worker idle), after 5 s of
# unmeasured warm-up; the tickets counted in the store, the CPU of the server
# and of mariadbd read from /proc around the measured window, and MariaDB's
# `Questions` (statements it ran) per ticket, and the times the server's
# threads went to sleep waiting (voluntary context switches, summed over its
# threads from /proc: each is a wake-up later) per ticket.
#
# Usage: bench/ticket_cpu.sh [connections ...]   (default: 1 4 16 64)
#   BIN=path/to/helpdesk-server   the build to measure (default: the release build here)
#   BASE=path/to/helpdesk-server  a baseline build: each round runs both, alternating
#                                 which goes first, and the table gives both medians
#                                 and the ratios
#   ROUNDS=3                      rounds per connection count (with BASE)
#   SECS=15                       the measured window
#   PERF=1                        also record a perf profile of the server (target/bench/perf-<c>.data)
#   DBPERF=1                      also record one of mariadbd (target/bench/perf-mariadbd-<c>.data)
#   STORE=sqlite                  the embedded SQLite store instead (a fresh file each run; the
#                                 MariaDB columns then read 0)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BIN=${BIN:-$PWD/target/release/helpdesk-server}
SECS=${SECS:-15}
ROUNDS=${ROUNDS:-3}
OUT=target/bench
mkdir -p "$OUT"
for b in "$BIN" ${BASE:+"$BASE"}; do
  [ -x "$b" ] || { log "no server at $b: cargo build --release -p helpdesk-server"; exit 1; }
done
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y wrk >/dev/null; }
DB_PID=$(pgrep -xo mariadbd) || { log "MariaDB is not running"; exit 1; }
if [ "${STORE:-}" = sqlite ]; then
  command -v sqlite3 >/dev/null || { log "installing sqlite3"; apt-get install -y sqlite3 >/dev/null; }
  DB_FILE=$PWD/$OUT/ticket_cpu.db
  URL=sqlite://$DB_FILE
  count() { sqlite3 "$DB_FILE" 'SELECT COUNT(*) FROM ticket'; }
  fresh_store() { rm -f "$DB_FILE" "$DB_FILE"-*; }
else
  URL=mysql://root@127.0.0.1:3306/hd_ticket_cpu
  count() { mariadb -uroot -h127.0.0.1 -N hd_ticket_cpu -e 'SELECT COUNT(*) FROM ticket'; }
  fresh_store() {
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_ticket_cpu; CREATE DATABASE hd_ticket_cpu CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
  }
fi
wakeups() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {n += $2} END {print n + 0}'; }
questions() { mariadb -uroot -h127.0.0.1 -N -e "SHOW GLOBAL STATUS LIKE 'Questions'" | awk '{print $2}'; }
save() { # connections seconds file
  BENCH_RUN="$1-$(date +%s%N)" wrk -t1 -c"$1" -d"$2s" --latency -s bench/save.lua -H 'Content-Type: application/json' \
    -H 'X-User-Consumo: bench' -H "X-User-Secret: $SECRET" http://127.0.0.1:18121/api/correo/save >"$3"
}

# measure BINARY CONNECTIONS: one run on a fresh store; prints
# "tickets/s server-ms mariadb-ms p99 statements wake-ups" per ticket.
measure() {
  local bin=$1 conns=$2 held cpu dbcpu q new s d p99 qs w ws
  fresh_store
  BIN=$bin SECRET=$(BIN=$bin seed "$URL")
  HELPDESK__SERVER__PORT=18121 HELPDESK__DATABASE__URL="$URL" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=warn \
    HELPDESK__OUTBOX__INLINE_TIMEOUT_MS=0 HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 "$bin" >"$OUT/ticket_cpu-server.log" 2>&1 &
  PID=$!
  wait_ready 18121
  save "$conns" 5 /dev/null
  held=$(count); cpu=$(cpu_ms $PID); dbcpu=$(cpu_ms "$DB_PID"); q=$(questions); w=$(wakeups $PID)
  PERF_PID=
  if [ -n "${PERF:-}" ]; then
    perf record -F 499 -g -p $PID -o "$OUT/perf-$conns.data" -- sleep "$SECS" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  DBPERF_PID=
  if [ -n "${DBPERF:-}" ]; then
    perf record -F 999 -g -p "$DB_PID" -o "$OUT/perf-mariadbd-$conns.data" -- sleep "$SECS" >/dev/null 2>&1 &
    DBPERF_PID=$!
  fi
  save "$conns" "$SECS" "$OUT/ticket_cpu-$conns.txt"
  [ -z "$PERF_PID" ] || wait "$PERF_PID"
  [ -z "$DBPERF_PID" ] || wait "$DBPERF_PID"
  new=$(( $(count) - held )); s=$(( $(cpu_ms $PID) - cpu )); d=$(( $(cpu_ms "$DB_PID") - dbcpu )); qs=$(( $(questions) - q )); ws=$(( $(wakeups $PID) - w ))
  kill $PID; wait $PID 2>/dev/null || true
  p99=$(awk '$1=="99%" {print $2}' "$OUT/ticket_cpu-$conns.txt")
  awk -v n="$new" -v s="$s" -v d="$d" -v secs="$SECS" -v p="$p99" -v q="$qs" -v w="$ws" \
    'BEGIN{ if (n > 0) printf "%.0f %.3f %.3f %s %.1f %.1f\n", n/secs, s/n, d/n, p, q/n, w/n; else printf "0 n/a n/a %s n/a n/a\n", p }'
}

# median of the numbers on stdin (p99s like "3.41ms" are read in ms).
median() {
  awk '{ v=$1; if (v ~ /us$/) v=v/1000; else if (v ~ /ms$/) v=v+0; else if (v ~ /s$/) v=v*1000; print v+0 }' |
    sort -g | awk '{a[NR]=$1} END{ if (NR==0) print "n/a"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}
col() { awk -v c="$1" '{print $c}' "$2" | median; }

if [ -z "${BASE:-}" ]; then
  echo "| connections | new tickets/s | server CPU per ticket | MariaDB CPU per ticket | p99 | statements per ticket | server wake-ups per ticket |"
  echo "|---|---|---|---|---|---|---|"
else
  echo "| connections | build | new tickets/s | server CPU per ticket | MariaDB CPU per ticket | p99 (ms) | statements per ticket | server wake-ups per ticket |"
  echo "|---|---|---|---|---|---|---|---|"
fi
for c in "${@:-1 4 16 64}"; do
  for conns in $c; do  # "1 4" given as one word splits too
    if [ -z "${BASE:-}" ]; then
      read -r tps s d p q w < <(measure "$BIN" "$conns")
      echo "| $conns | $tps | $s ms | $d ms | $p | $q | $w |"
      continue
    fi
    : >"$OUT/ab-base-$conns.txt"; : >"$OUT/ab-new-$conns.txt"
    for r in $(seq 1 "$ROUNDS"); do
      if [ $((r % 2)) = 1 ]; then order="base new"; else order="new base"; fi
      for which in $order; do
        if [ "$which" = base ]; then b=$BASE; else b=$BIN; fi
        line=$(measure "$b" "$conns")
        log "$conns connections, round $r, $which: $line"
        echo "$line" >>"$OUT/ab-$which-$conns.txt"
      done
    done
    for which in base new; do
      f="$OUT/ab-$which-$conns.txt"
      echo "| $conns | $which | $(col 1 "$f") | $(col 2 "$f") ms | $(col 3 "$f") ms | $(col 4 "$f") | $(col 5 "$f") | $(col 6 "$f") |"
    done
    awk -v bt="$(col 1 "$OUT/ab-base-$conns.txt")" -v nt="$(col 1 "$OUT/ab-new-$conns.txt")" \
      -v bs="$(col 2 "$OUT/ab-base-$conns.txt")" -v ns="$(col 2 "$OUT/ab-new-$conns.txt")" \
      -v bd="$(col 3 "$OUT/ab-base-$conns.txt")" -v nd="$(col 3 "$OUT/ab-new-$conns.txt")" -v c="$conns" \
      'function r(n, b) { return b > 0 ? sprintf("%.2fx", n / b) : "n/a" }
       BEGIN{ printf "| %s | new ÷ base | %s | %s | %s | | | |\n", c, r(nt, bt), r(ns, bs), r(nd, bd) }'
  done
done
if [ "${STORE:-}" = sqlite ]; then rm -f "$DB_FILE" "$DB_FILE"-*; else mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_ticket_cpu'; fi
