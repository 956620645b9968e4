#!/usr/bin/env bash
# The benchmark: release builds, the server on MariaDB and on SQLite, driven
# by wrk from a second process on loopback, next to the ceilings measured in
# the same run (a bare actix-web handler, Argon2 per core, MariaDB commits).
# Prints a Markdown report and keeps it in target/bench/report.md.
#
# Usage: bench/run.sh [seconds per measurement, default 10]
#   BASE=path/to/helpdesk-server  also CPU per new ticket at 1, 4, 16 and 64
#                                 connections beside that baseline build
#                                 (bench/ticket_cpu.sh, run by run)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
OUT=target/bench
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
. bench/lib.sh

command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y wrk >/dev/null; }
if ! mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1; then
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb -uroot -h127.0.0.1 -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
fi

log "release build"
cargo build --release -q -p helpdesk-server -p helpdesk-bench
BIN=$PWD/target/release/helpdesk-server
CORES=$(nproc)

rps() { sed -n 's/^Requests\/sec: *//p' "$1"; }
# Tickets the store holds.
rows_held() { # url table
  case $1 in
    mysql://*) mariadb -uroot -h127.0.0.1 -N "${1##*/}" -e "SELECT COUNT(*) FROM $2" ;;
    sqlite://*) sqlite3 "${1#sqlite://}" "SELECT COUNT(*) FROM $2" ;;
  esac
}
tickets_held() { rows_held "$1" ticket; }
pct() { awk -v p="$2" '$1==p {print $2}' "$1"; }
non2xx() { sed -n 's/^ *Non-2xx or 3xx responses: *//p' "$1"; }
pids=()
MARIADB_PID=$(pgrep -xo mariadbd || true)
MARIADB_NICE=$(sed -n 's/.* nice //p' "/proc/$MARIADB_PID/autogroup" 2>/dev/null || echo 0)
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  [ -w "/proc/$MARIADB_PID/autogroup" ] && echo "$MARIADB_NICE" >"/proc/$MARIADB_PID/autogroup" 2>/dev/null || true
}
trap cleanup EXIT



serve() { # port url
  HELPDESK__SERVER__PORT="$1" HELPDESK__DATABASE__URL="$2" HELPDESK__SEED__DEMO=false \
  HELPDESK__LOG__LEVEL=warn HELPDESK__OUTBOX__INLINE_TIMEOUT_MS=0 HELPDESK__OUTBOX__POLL_INTERVAL_MS=3600000 \
    "$BIN" >"$OUT/server-$1.log" 2>&1 &
  pids+=($!)
  echo $!
}

# Paced reads (bench/users-paced.lua) while four connections of logins keep
# every core hashing.
users_during_logins() { # name port secret
  drive "$1-logins" "$2" login.lua 4 "$3" /api/SSO/access &
  local login_wrk=$!
  sleep 1
  wrk -t1 -c2 -d"$((SECS - 2))s" --latency -s bench/users-paced.lua -H 'Content-Type: application/json' \
    -H 'X-User-Consumo: bench' -H "X-User-Secret: $3" "http://127.0.0.1:$2/api/UsuarioInterno/get" >"$OUT/$1.txt"
  wait "$login_wrk"
}

hdrs=()
drive() { # name port script connections secret
  wrk -t2 -c"$4" -d"${SECS}s" --latency -s "bench/$3" \
    -H 'Content-Type: application/json' -H 'X-User-Consumo: bench' -H "X-User-Secret: $5" \
    "http://127.0.0.1:$2${6:-/api/UsuarioInterno/get}" >"$OUT/$1.txt"
}

log "ceilings"
ARGON=$(target/release/argon2_rate "$SECS")
ARGON_ALL=$(target/release/argon2_rate "$SECS" "$CORES")
log "argon2: $ARGON /s on one core, $ARGON_ALL /s on $CORES"
mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench; CREATE DATABASE hd_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
DB_CPU0=$(cpu_ms "$MARIADB_PID")
COMMITS=$(target/release/mysql_commits mysql://root@127.0.0.1:3306/hd_bench "$SECS" 4)
# MariaDB's CPU per commit (its whole process over the window).
COMMIT_CPU=$(awk -v c="$(( $(cpu_ms "$MARIADB_PID") - DB_CPU0 ))" -v n="$COMMITS" -v s="$SECS" 'BEGIN{printf "%.2f", c / (n * s)}')
target/release/bare 18090 "$CORES" >/dev/null 2>&1 & pids+=($!)
BARE_PID=$!
sleep 0.5
BARE_CPU0=$(cpu_ms "$BARE_PID")
wrk -t2 -c4 -d"${SECS}s" --latency -s bench/bare.lua http://127.0.0.1:18090/json >"$OUT/bare.txt"
BARE=$(rps "$OUT/bare.txt")
BARE_CPU=$(awk -v c="$(( $(cpu_ms "$BARE_PID") - BARE_CPU0 ))" -v n="$BARE" -v s="$SECS" 'BEGIN{printf "%.3f", c / (n * s)}')
wrk -t2 -c64 -d"${SECS}s" --latency -s bench/bare.lua http://127.0.0.1:18090/json >"$OUT/bare-64.txt"
BARE64=$(rps "$OUT/bare-64.txt")
log "commits: $COMMITS /s; bare handler: $BARE req/s"

log "start to /ready on a fresh SQLite file"
rm -rf "$OUT/ready" && mkdir -p "$OUT/ready"
t0=$(date +%s%N)
(cd "$OUT/ready" && HELPDESK__SERVER__PORT=18099 HELPDESK__LOG__LEVEL=warn HELPDESK__SEED__DEMO=false exec "$BIN") >/dev/null 2>&1 &
READY_PID=$!
pids+=($READY_PID)
wait_ready 18099
READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
kill "$READY_PID"

declare -A R
for backend in mysql sqlite; do
  if [ $backend = mysql ]; then
    mariadb -uroot -h127.0.0.1 -e 'DROP DATABASE IF EXISTS hd_bench; CREATE DATABASE hd_bench CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
    URL=mysql://root@127.0.0.1:3306/hd_bench; PORT=18081
  else
    rm -rf "$OUT/sqlite"; mkdir -p "$OUT/sqlite"; URL="sqlite://$PWD/$OUT/sqlite/helpdesk.db"; PORT=18082
  fi
  log "$backend: seed and serve"
  SECRET=$(seed "$URL")
  PID=$(serve $PORT "$URL")
  wait_ready $PORT
  log "$backend: UsuarioInterno/get"
  drive "$backend-users" $PORT users.lua 4 "$SECRET"
  # The same user asked for every time: the answers come from memory
  # (server.directory_cache_ms), the bitácora rows do not; counted.
  audited=$(rows_held "$URL" bitacora_log)
  drive "$backend-users-64" $PORT users.lua 64 "$SECRET"
  R[$backend-users-64-rows]=$(( $(rows_held "$URL" bitacora_log) - audited ))
  # One database round trip and nothing else (no bitácora, no consumer):
  # what a request costs that only asks the database one thing.
  wrk -t2 -c4 -d"${SECS}s" --latency "http://127.0.0.1:$PORT/ready" >"$OUT/$backend-ready.txt"
  # A fresh database is slower for its first few thousand tickets (InnoDB
  # keeps growing its new tablespaces): warm it up, unmeasured, so the
  # figures are those of a store that is in use.
  log "$backend: correo/save warm-up ($((SECS / 2)) s, not measured)"
  BENCH_RUN="warm$(date +%s%N)" wrk -t2 -c4 -d"$((SECS / 2))s" -s bench/save.lua -H 'Content-Type: application/json' \
    -H 'X-User-Consumo: bench' -H "X-User-Secret: $SECRET" "http://127.0.0.1:$PORT/api/correo/save" \
    >"$OUT/$backend-save-warmup.txt"
  for c in 4 16; do
    log "$backend: correo/save at $c connections"
    # Counted in the store: new tickets over the window, and the CPU the
    # server (and MariaDB) spent per new ticket.
    held=$(tickets_held "$URL"); cpu=$(cpu_ms "$PID"); dbcpu=$(cpu_ms "$MARIADB_PID")
    BENCH_RUN="$c-$(date +%s%N)" drive "$backend-save-$c" $PORT save.lua $c "$SECRET" /api/correo/save
    new=$(( $(tickets_held "$URL") - held ))
    R[$backend-save-$c-held]=$held
    R[$backend-save-$c-new]=$(awk -v n="$new" -v s="$SECS" 'BEGIN{printf "%.0f", n / s}')
    R[$backend-save-$c-cpu]=$(awk -v c="$(( $(cpu_ms "$PID") - cpu ))" -v n="$new" 'BEGIN{ if (n > 0) printf "%.2f", c / n; else print "n/a" }')
    R[$backend-save-$c-dbcpu]=$(awk -v c="$(( $(cpu_ms "$MARIADB_PID") - dbcpu ))" -v n="$new" 'BEGIN{ if (n > 0) printf "%.2f", c / n; else print "n/a" }')
  done
  log "$backend: SSO/access saturating the CPU"
  drive "$backend-login" $PORT login.lua 4 "$SECRET" /api/SSO/access
  log "$backend: UsuarioInterno/get at a light pace while logins saturate the CPU"
  users_during_logins "$backend-users-during-login" $PORT "$SECRET"
  if [ $backend = mysql ] && [ -w "/proc/$MARIADB_PID/autogroup" ]; then
    # MariaDB runs in another scheduling group (here an autogroup; a systemd
    # service in production), so the hashing threads' SCHED_IDLE cannot yield
    # to it: give its group priority, as a deployment would (CPUWeight=).
    log "$backend: the same, with MariaDB's scheduling group favoured (nice -10)"
    echo -10 >"/proc/$MARIADB_PID/autogroup"
    users_during_logins "$backend-users-during-login-dbfirst" $PORT "$SECRET"
    echo "$MARIADB_NICE" >"/proc/$MARIADB_PID/autogroup"
  fi
  R[$backend-rss]=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
  kill "$PID"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f %%", 100 * a / b; else print "n/a" }'; }
{
  echo "# Benchmark report"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p')), ${SECS} s per measurement, \`bench/run.sh $SECS\`."
  echo
  echo "## Ceilings measured in this run"
  echo
  echo "| ceiling | value |"
  echo "|---|---|"
  echo "| bare actix-web JSON handler, 4 connections | $BARE req/s (p50 $(pct "$OUT/bare.txt" 50%), p99 $(pct "$OUT/bare.txt" 99%)) |"
  echo "| Argon2id verifications, one core | $ARGON /s (bound for $CORES cores: $(awk -v a="$ARGON" -v c="$CORES" 'BEGIN{printf "%.1f", a*c}') /s; measured on $CORES threads at once: $ARGON_ALL /s) |"
  echo "| MariaDB single-row commits, 4 connections | $COMMITS /s ($COMMIT_CPU ms of MariaDB CPU each) |"
  echo "| bare actix-web JSON handler, 64 connections | $BARE64 req/s (p99 $(pct "$OUT/bare-64.txt" 99%)) |"
  echo "| bare handler CPU per request | $BARE_CPU ms |"
  echo
  echo "## Results"
  echo
  echo "| measurement | MariaDB | SQLite |"
  echo "|---|---|---|"
  for c in 4 16; do
    m="$OUT/mysql-save-$c.txt"; s="$OUT/sqlite-save-$c.txt"
    echo "| correo/save new tickets/s counted in the store, $c connections | ${R[mysql-save-$c-new]} (wrk: $(rps "$m") req/s; p50 $(pct "$m" 50%), p99 $(pct "$m" 99%); $(ratio "${R[mysql-save-$c-new]}" "$COMMITS") of commits/s; store held ${R[mysql-save-$c-held]}) | ${R[sqlite-save-$c-new]} (wrk: $(rps "$s") req/s; p50 $(pct "$s" 50%), p99 $(pct "$s" 99%); store held ${R[sqlite-save-$c-held]}) |"
    echo "| CPU per new ticket, $c connections: server / MariaDB | ${R[mysql-save-$c-cpu]} ms / ${R[mysql-save-$c-dbcpu]} ms | ${R[sqlite-save-$c-cpu]} ms / – |"
  done
  m="$OUT/mysql-users.txt"; s="$OUT/sqlite-users.txt"
  echo "| UsuarioInterno/get req/s, audited, 4 connections | $(rps "$m") ($(ratio "$(rps "$m")" "$BARE") of bare; p99 $(pct "$m" 99%)) | $(rps "$s") ($(ratio "$(rps "$s")" "$BARE") of bare; p99 $(pct "$s" 99%)) |"
  m="$OUT/mysql-users-64.txt"; s="$OUT/sqlite-users-64.txt"
  echo "| UsuarioInterno/get req/s, audited, 64 connections | $(rps "$m") ($(ratio "$(rps "$m")" "$BARE64") of bare at 64; p99 $(pct "$m" 99%); bitácora rows written: $(awk -v n="${R[mysql-users-64-rows]}" -v s="$SECS" 'BEGIN{printf "%.0f", n / s}') /s) | $(rps "$s") ($(ratio "$(rps "$s")" "$BARE64") of bare at 64; p99 $(pct "$s" 99%); bitácora rows: $(awk -v n="${R[sqlite-users-64-rows]}" -v s="$SECS" 'BEGIN{printf "%.0f", n / s}') /s) |"
  m="$OUT/mysql-users.txt"; s="$OUT/sqlite-users.txt"
  mr="$OUT/mysql-ready.txt"; sr="$OUT/sqlite-ready.txt"
  echo "| /ready req/s (one database round trip, nothing else), 4 connections | $(rps "$mr") ($(ratio "$(rps "$mr")" "$BARE") of bare; users read = $(ratio "$(rps "$m")" "$(rps "$mr")") of it) | $(rps "$sr") ($(ratio "$(rps "$sr")" "$BARE") of bare; users read = $(ratio "$(rps "$s")" "$(rps "$sr")") of it) |"
  bound=$(awk -v a="$ARGON" -v c="$CORES" 'BEGIN{print a*c}')
  m="$OUT/mysql-login.txt"; s="$OUT/sqlite-login.txt"
  echo "| SSO/access logins/s, 4 connections | $(rps "$m") ($(ratio "$(rps "$m")" "$bound") of the Argon2 bound) | $(rps "$s") ($(ratio "$(rps "$s")" "$bound") of the Argon2 bound) |"
  m="$OUT/mysql-users-during-login.txt"; s="$OUT/sqlite-users-during-login.txt"
  echo "| UsuarioInterno/get p99 at ~200 req/s while logins saturate the CPU | $(pct "$m" 99%) | $(pct "$s" 99%) |"
  m="$OUT/mysql-users-during-login-dbfirst.txt"
  [ -f "$m" ] && echo "| the same, MariaDB's scheduling group favoured (nice -10) | $(pct "$m" 99%) | |"
  echo "| peak RSS of the server | $(( ${R[mysql-rss]} / 1024 )) MiB | $(( ${R[sqlite-rss]} / 1024 )) MiB |"
  echo "| start to /ready, fresh SQLite file (migrations included) | | $READY_MS ms |"
  for f in "$OUT"/*-save-*.txt "$OUT"/*-users.txt "$OUT"/*-login.txt; do
    n=$(non2xx "$f")
    if [ -n "$n" ]; then echo; echo "Warning: $(basename "$f" .txt): $n non-2xx answers."; fi
  done
  if [ -n "${BASE:-}" ]; then
    echo
    echo "## CPU per new ticket on MariaDB beside the baseline ($BASE)"
    echo
    echo "\`BASE=$BASE bench/ticket_cpu.sh 1 4 16 64\`: each round both builds, alternating which goes first; medians."
    echo
    BIN=$BIN BASE=$BASE bench/ticket_cpu.sh 1 4 16 64
  fi
} | tee "$OUT/report.md"
