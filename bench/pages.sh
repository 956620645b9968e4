#!/usr/bin/env bash
# The console's pages under a full store: 100,000 tickets (bench/seed_tickets.sh),
# an operator signed in through the console's own form, then wrk at 4
# connections (each after an unmeasured 5 s) on the queue (the default view
# "Abiertos" with the seven views' counts, its second page, a priority filter,
# a search for a word in 20 % of the subjects)
# and a ticket's page (thread, service level, the requester's 19 other
# tickets, history). Every figure is checked against the store first: the
# queue shows 50 rows and "999+" for a view the store holds more than 999 of,
# the ticket's page shows the ticket's subject and the requester's others.
# Also the bytes of JavaScript and CSS a first visit transfers (gzip).
#
# Usage: bench/pages.sh [seconds per measurement, default 10] [tickets, default 100000]
# Prints a Markdown report and keeps it in target/bench/pages.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
N="${2:-100000}"
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh
# shellcheck source=bench/seed_tickets.sh
. bench/seed_tickets.sh

prepare_release

report=()
assets=""
MID=$((N / 2))
for backend in mysql sqlite; do
  if [ $backend = mysql ]; then
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench_pages; CREATE DATABASE hd_bench_pages CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    URL=mysql://root@127.0.0.1:3306/hd_bench_pages; PORT=18085
    sql() { mariadb -uroot -h127.0.0.1 -N hd_bench_pages -e "$1"; }
  else
    rm -rf "$OUT/pages-sqlite"; mkdir -p "$OUT/pages-sqlite"
    DB="$PWD/$OUT/pages-sqlite/helpdesk.db"; URL="sqlite://$DB"; PORT=18086
    sql() { sqlite3 "$DB" "$1"; }
  fi
  log "$backend: seed $N tickets"
  seed "$URL" >/dev/null
  if [ $backend = mysql ]; then mysql_seed_sql | mariadb -uroot -h127.0.0.1 hd_bench_pages; else sqlite_seed_sql | sqlite3 "$DB"; fi
  sql 'UPDATE indice_busqueda SET detalle_hasta = (SELECT MAX(id_detalle_ticket) FROM detalle_ticket)'
  HELD=$(sql 'SELECT COUNT(*) FROM ticket')
  OPEN=$(sql "SELECT COUNT(*) FROM ticket WHERE estado = 'abierto'")
  SUBJECT=$(sql "SELECT asunto FROM ticket WHERE id_ticket = $MID")
  REQUESTER=$(sql "SELECT solicitante FROM ticket WHERE id_ticket = $MID")
  THEIRS=$(sql "SELECT COUNT(*) FROM participante_ticket WHERE correo = '$REQUESTER'")
  log "$backend: $HELD tickets, $OPEN open; ticket $MID's requester takes part in $THEIRS"
  [ "$HELD" -ge "$N" ] && [ "$OPEN" -gt 999 ] && [ "$THEIRS" -gt 10 ] || { log "the store is not as seeded"; exit 1; }

  BASE="http://127.0.0.1:$PORT"
  HELPDESK__SERVER__PORT=$PORT HELPDESK__SERVER__PUBLIC_URL="$BASE" HELPDESK__DATABASE__URL="$URL" \
    HELPDESK__SEED__DEMO=false HELPDESK__LOG__LEVEL=warn HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 \
    "$BIN" >"$OUT/pages-server-$backend.log" 2>&1 &
  pids+=($!)
  wait_ready $PORT 12000

  # Signed in as a browser is: the form's token and cookie, then the session's cookie.
  SESSION=$(console_session "$BASE" op1 "$OUT/pages-$backend.cookies")
  [ -n "$SESSION" ] || { log "$backend: no session"; exit 1; }
  C=(-H "Cookie: consola_sesion=$SESSION")

  # What the measured pages answer, checked against the store.
  QUEUE=$(curl -sf "${C[@]}" "$BASE/consola/tickets")
  ROWS=$(grep -c '^<td><a id="t-[0-9]*" href="/consola/tickets/' <<<"$QUEUE" || true)
  grep -q 'Abiertos <span class="cuenta">(999+)</span>' <<<"$QUEUE" || { log "$backend: no 999+ count"; exit 1; }
  [ "$ROWS" = 50 ] || { log "$backend: the queue shows $ROWS rows"; exit 1; }
  NEXT=$(sed -n 's/.*href="\(\/consola\/tickets?vista=abiertos[^"]*desde=[^"]*\)".*/\1/p' <<<"$QUEUE" | head -1 | sed 's/&amp;/\&/g')
  [ -n "$NEXT" ] || { log "$backend: no next page"; exit 1; }
  SECOND=$(curl -sf "${C[@]}" "$BASE$NEXT" | grep -c '^<td><a id="t-[0-9]*" href="/consola/tickets/' || true)
  [ "$SECOND" = 50 ] || { log "$backend: the second page shows $SECOND rows"; exit 1; }
  TICKET=$(curl -sf "${C[@]}" "$BASE/consola/tickets/$MID")
  grep -qF "<bdi>$SUBJECT</bdi>" <<<"$TICKET" || { log "$backend: ticket $MID's page lacks its subject"; exit 1; }
  OTHERS=$(grep -o '<li><a href="/consola/tickets/[0-9]*">' <<<"$TICKET" | wc -l)
  [ "$OTHERS" = 10 ] || { log "$backend: ticket $MID's page lists $OTHERS other tickets"; exit 1; }

  FOUND=$(curl -sf "${C[@]}" "$BASE/consola/tickets?q=factura" | grep -c '^<td><a id="t-[0-9]*" href="/consola/tickets/' || true)
  [ "$FOUND" = 50 ] || { log "$backend: the search shows $FOUND rows"; exit 1; }

  for what in queue queue-page-2 queue-filtered queue-search ticket; do
    case $what in
      queue) P="/consola/tickets" ;;
      queue-page-2) P="$NEXT" ;;
      queue-filtered) P="/consola/tickets?vista=abiertos&prioridad=alta" ;;
      queue-search) P="/consola/tickets?q=factura" ;;
      ticket) P="/consola/tickets/$MID" ;;
    esac
    log "$backend: $what, 4 connections, $SECS s"
    ROW=$(measure_4 "$OUT/pages-$backend-$what.txt" "$SECS" "$BASE$P" "${C[@]}")
    report+=("| $backend | $what | $HELD | $ROW |")
  done

  if [ -z "$assets" ]; then
    # A first visit's JavaScript and CSS, as a browser taking gzip gets them.
    total=0
    for href in $(grep -o '/consola/static/[^"]*' <<<"$QUEUE" | sort -u); do
      bytes=$(curl -sf -H 'Accept-Encoding: gzip' -o /dev/null -w '%{size_download}' "$BASE$href")
      raw=$(curl -sf -o /dev/null -w '%{size_download}' "$BASE$href")
      assets+="| ${href##*/} | $raw | $bytes |"$'\n'
      total=$((total + bytes))
    done
    assets+="| total | | $total |"
  fi
  kill "${pids[-1]}" 2>/dev/null || true
done

{
  echo "Console pages, $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $SECS s each, 4 connections, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "| backend | page | tickets held | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s\n' "${report[@]}"
  echo
  echo "| asset | bytes | transferred (gzip) |"
  echo "|---|---|---|"
  printf '%s\n' "$assets"
} | tee "$OUT/pages.md"
