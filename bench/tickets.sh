#!/usr/bin/env bash
# The ticket list under a full store: 100,000 tickets (one message each,
# 1 % of them mentioning "tóner", 20 % "factura"), written straight into the
# database, then `GET /api/tickets` (first page of 20), a `texto=toner` and a
# `texto=factura` search driven by
# wrk at 4 connections (each after an unmeasured 5 s), as an operator (consumer credentials + bearer token,
# bitácora on). Every figure is checked against the store: the page really
# holds 20 tickets, the search really finds the tickets the store holds.
#
# Usage: bench/tickets.sh [seconds per measurement, default 10] [tickets, default 100000]
# Prints a Markdown report and keeps it in target/bench/tickets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
N="${2:-100000}"
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh

prepare_release



# shellcheck source=bench/seed_tickets.sh
. bench/seed_tickets.sh

report=()
for backend in mysql sqlite; do
  if [ $backend = mysql ]; then
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_tickets; CREATE DATABASE hd_bench_tickets CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    URL=mysql://root@127.0.0.1:3306/hd_bench_tickets; PORT=18083
  else
    rm -rf "$OUT/tickets-sqlite"; mkdir -p "$OUT/tickets-sqlite"
    DB="$PWD/$OUT/tickets-sqlite/helpdesk.db"; URL="sqlite://$DB"; PORT=18084
  fi
  log "$backend: seed $N tickets"
  SECRET=$(seed "$URL")
  t0=$(date +%s)
  if [ $backend = mysql ]; then
    mysql_seed_sql | mariadb -uroot -h127.0.0.1 hd_bench_tickets
    # Written behind the server's back: the search index takes them as
    # messages stored before it existed (indexed at the server's start).
    mariadb -uroot -h127.0.0.1 hd_bench_tickets -e \
      'UPDATE indice_busqueda SET detalle_hasta = (SELECT MAX(id_detalle_ticket) FROM detalle_ticket)' 
    HELD=$(mariadb -uroot -h127.0.0.1 -N hd_bench_tickets -e 'SELECT COUNT(*) FROM ticket')
    TONER=$(mariadb -uroot -h127.0.0.1 -N hd_bench_tickets -e "SELECT COUNT(*) FROM detalle_ticket WHERE cuerpo LIKE '%tóner%'")
  else
    sqlite_seed_sql | sqlite3 "$DB"
    sqlite3 "$DB" 'UPDATE indice_busqueda SET detalle_hasta = (SELECT MAX(id_detalle_ticket) FROM detalle_ticket)' 
    HELD=$(sqlite3 "$DB" 'SELECT COUNT(*) FROM ticket')
    TONER=$(sqlite3 "$DB" "SELECT COUNT(*) FROM detalle_ticket WHERE cuerpo LIKE '%tóner%'")
  fi
  log "$backend: $HELD tickets ($TONER mention tóner) in $(( $(date +%s) - t0 )) s"
  [ "$HELD" -ge "$N" ] || { log "the store holds $HELD tickets, not $N"; exit 1; }

  HELPDESK__SERVER__PORT=$PORT HELPDESK__DATABASE__URL="$URL" HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=warn \
    HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 "$BIN" >"$OUT/tickets-server-$backend.log" 2>&1 &
  pids+=($!)
  t0=$(date +%s)
  # The start indexes the seeded messages for the search (up to 10 min).
  wait_ready $PORT 12000
  log "$backend: ready, search index built, in $(( $(date +%s) - t0 )) s"
  TOKEN=$(curl -sf -H 'Content-Type: application/json' -H 'X-User-Consumo: bench' -H "X-User-Secret: $SECRET" \
    -d '{"product":"mesa","usuario":"op1","password":"Bench-clave-2026","modo":"normal"}' \
    "http://127.0.0.1:$PORT/api/SSO/access" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
  H=(-H 'X-User-Consumo: bench' -H "X-User-Secret: $SECRET" -H "Authorization: Bearer $TOKEN")
  # What the measured requests answer, checked against the store.
  PAGE=$(curl -sf "${H[@]}" "http://127.0.0.1:$PORT/api/tickets?limite=20" |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(len(d["tickets"]), d["siguiente"] is not None)')
  [ "$PAGE" = "20 True" ] || { log "$backend: first page answered $PAGE"; exit 1; }
  FOUND=0; CURSOR=""
  while :; do
    # Every page of the search, counted: it must find what the store holds.
    R=$(curl -sf "${H[@]}" "http://127.0.0.1:$PORT/api/tickets?texto=toner&limite=100${CURSOR:+&cursor=$CURSOR}" |
      python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(len(d["tickets"]), d["siguiente"] or "")')
    FOUND=$((FOUND + ${R%% *})); CURSOR="${R#* }"
    [ -n "$CURSOR" ] || break
  done
  [ "$FOUND" -eq "$TONER" ] || { log "$backend: the search found $FOUND tickets, the store holds $TONER"; exit 1; }
  # A common word (in 20 % of the subjects) finds a full first page.
  COMMON=$(curl -sf "${H[@]}" "http://127.0.0.1:$PORT/api/tickets?texto=factura&limite=20" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["tickets"]))')
  [ "$COMMON" = 20 ] || { log "$backend: the common-word search answered $COMMON tickets"; exit 1; }
  for what in first-page search search-common; do
    case $what in
      first-page) Q="limite=20" ;;
      search) Q="texto=toner&limite=20" ;;
      search-common) Q="texto=factura&limite=20" ;;
    esac
    log "$backend: $what, 4 connections, $SECS s"
    ROW=$(measure_4 "$OUT/tickets-$backend-$what.txt" "$SECS" "http://127.0.0.1:$PORT/api/tickets?$Q" "${H[@]}")
    report+=("| $backend | $what ($Q) | $HELD | $ROW |")
  done
  kill "${pids[-1]}" 2>/dev/null || true
done

{
  echo "Ticket list, $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $SECS s each, 4 connections, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "| backend | request | tickets held | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${report[@]}"
} | tee "$OUT/tickets.md"
